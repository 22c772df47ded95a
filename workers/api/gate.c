/* gate.c - the api's product catalog check. See gate.h. */
#include "gate.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "log.h"
#include "metrics.h"

#define BACKOFF_FIRST_S 0.5
#define BACKOFF_MAX_S 30.0

struct api_gate {
    struct api_client *client;
    int enabled; /* a catalog artifact is configured */
    char *artifact;
    long refresh_s;

    pthread_rwlock_t lock;      /* guards `catalog` */
    struct sp_catalog *catalog; /* NULL until the first pull succeeds */

    pthread_mutex_t wake_lock; /* guards the next two, with `wake` */
    pthread_cond_t wake;
    int refresh_asked, stopping;
    pthread_t thread;
    int thread_started;
    struct sp_oci_client *oci; /* the catalog thread's */

    pthread_mutex_t error_lock; /* guards last_error, read by /readyz */
    char last_error[512];

    struct sp_metric *products, *pulls_ok, *pulls_failed, *unknown_product, *wrong_category;
};

/* ---------------------------------------------------------------- the check, per sale */

static void refuse(struct sp_rest_call *call, const char *field, const char *reason)
{
    char body[320];
    struct sp_sale_error e = {.field = field, .reason = reason};
    size_t n = sp_sale_error_json(&e, body, sizeof body);
    sp_rest_complete(call, 400, body, n);
}

void api_gate_forward(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                      void *arg)
{
    struct api_gate *g = arg;
    if (!g->enabled) {
        api_client_send(sale, sale_id, call, g->client);
        return;
    }
    char reason[160];
    const char *field = NULL;
    pthread_rwlock_rdlock(&g->lock);
    const struct sp_catalog_product *p = sp_catalog_find(g->catalog, sale->producto_id);
    int loaded = g->catalog != NULL;
    if (loaded && !p) {
        field = "producto_id";
        snprintf(reason, sizeof reason, "is not in the product catalog");
    } else if (loaded && p->categoria != sale->categoria) {
        field = "categoria";
        snprintf(reason, sizeof reason, "is %s for this product in the catalog",
                 sp_category_name(p->categoria));
    }
    pthread_rwlock_unlock(&g->lock);
    if (!loaded) {
        /* Not ready yet (/readyz says so): the sale may well be valid, so not a 400. */
        char body[160];
        size_t n = sp_rest_error_json(body, sizeof body, "the product catalog is not loaded yet");
        sp_rest_complete(call, 503, body, n);
    } else if (field) {
        sp_counter_add(p ? g->wrong_category : g->unknown_product, 1);
        refuse(call, field, reason);
    } else {
        api_client_send(sale, sale_id, call, g->client);
    }
}

int api_gate_ready(void *arg, char *why, size_t cap)
{
    struct api_gate *g = arg;
    if (g->enabled) {
        pthread_rwlock_rdlock(&g->lock);
        int loaded = g->catalog != NULL;
        pthread_rwlock_unlock(&g->lock);
        if (!loaded) {
            pthread_mutex_lock(&g->error_lock);
            /* The error names the artifact; /readyz has room for about 250 characters. */
            snprintf(why, cap, "product catalog not loaded yet%s%s", *g->last_error ? ": " : "",
                     g->last_error);
            pthread_mutex_unlock(&g->error_lock);
            return 0;
        }
    }
    return api_client_ready(g->client, why, cap);
}

/* ---------------------------------------------------------------- the catalog thread */

/* Keeps `fresh` if its content differs from the catalog in use; frees the one not kept. */
static void install(struct api_gate *g, struct sp_catalog *fresh)
{
    pthread_rwlock_wrlock(&g->lock);
    struct sp_catalog *old = g->catalog;
    int same = old && !strcmp(sp_catalog_digest(old), sp_catalog_digest(fresh));
    if (!same)
        g->catalog = fresh;
    pthread_rwlock_unlock(&g->lock);
    if (same) {
        sp_debug("catalog_unchanged", "%s: %s", g->artifact, sp_catalog_digest(fresh));
        sp_catalog_free(fresh);
        return;
    }
    sp_gauge_set(g->products, (int64_t)sp_catalog_count(fresh));
    sp_info(old ? "catalog_replaced" : "catalog_loaded", "%s: %zu products, layer %s", g->artifact,
            sp_catalog_count(fresh), sp_catalog_digest(fresh));
    sp_catalog_free(old);
}

/* One pull. Returns 0 on success. */
static int pull_once(struct api_gate *g)
{
    char err[512];
    struct sp_catalog *fresh = sp_catalog_pull(g->oci, g->artifact, err, sizeof err);
    pthread_mutex_lock(&g->error_lock);
    snprintf(g->last_error, sizeof g->last_error, "%s", fresh ? "" : err);
    pthread_mutex_unlock(&g->error_lock);
    if (!fresh) {
        sp_counter_add(g->pulls_failed, 1);
        sp_warn("catalog_pull_failed", "%s", err);
        return -1;
    }
    sp_counter_add(g->pulls_ok, 1);
    install(g, fresh);
    return 0;
}

/* Waits until `seconds` pass (< 0: forever), a refresh is asked or we stop. 1 when stopping. */
static int wait_for(struct api_gate *g, double seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (seconds >= 0) {
        until.tv_sec += (time_t)seconds;
        until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&g->wake_lock);
    int rc = 0;
    while (!g->stopping && !g->refresh_asked && rc != ETIMEDOUT)
        rc = seconds < 0 ? pthread_cond_wait(&g->wake, &g->wake_lock)
                         : pthread_cond_timedwait(&g->wake, &g->wake_lock, &until);
    g->refresh_asked = 0;
    int stopping = g->stopping;
    pthread_mutex_unlock(&g->wake_lock);
    return stopping;
}

static void *catalog_main(void *arg)
{
    struct api_gate *g = arg;
    double backoff = BACKOFF_FIRST_S;
    for (;;) {
        double next;
        if (pull_once(g) == 0) {
            backoff = BACKOFF_FIRST_S;
            next = g->refresh_s > 0 ? (double)g->refresh_s : -1.0;
        } else {
            /* Retry sooner than the next refresh, never more often than the back-off says. */
            next = g->refresh_s > 0 && (double)g->refresh_s < backoff ? (double)g->refresh_s
                                                                      : backoff;
            backoff = backoff * 2 < BACKOFF_MAX_S ? backoff * 2 : BACKOFF_MAX_S;
        }
        if (wait_for(g, next))
            return NULL;
    }
}

/* ---------------------------------------------------------------- life cycle */

static void register_metrics(struct api_gate *g)
{
    g->products = sp_gauge_new("sp_catalog_products", NULL,
                               "Products in the catalog in use (0 while none is loaded).");
    g->pulls_ok = sp_counter_new("sp_catalog_pulls_total", "result=\"ok\"",
                                 "Catalog pulls from the registry, by result.");
    g->pulls_failed = sp_counter_new("sp_catalog_pulls_total", "result=\"error\"",
                                     "Catalog pulls from the registry, by result.");
    g->unknown_product = sp_counter_new("sp_catalog_refused_total", "field=\"producto_id\"",
                                        "Sales refused by the catalog check, by field.");
    g->wrong_category = sp_counter_new("sp_catalog_refused_total", "field=\"categoria\"",
                                       "Sales refused by the catalog check, by field.");
}

struct api_gate *api_gate_start(const struct api_gate_config *cfg, struct api_client *client)
{
    struct api_gate *g = calloc(1, sizeof *g);
    if (!g) {
        sp_error("gate_oom", "cannot allocate the catalog gate");
        return NULL;
    }
    g->client = client;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* A swap must not wait behind a stream of readers. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&g->wake_lock, NULL);
    pthread_mutex_init(&g->error_lock, NULL);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    if (!cfg->artifact || !*cfg->artifact)
        return g;

    g->enabled = 1;
    g->refresh_s = cfg->refresh_s;
    register_metrics(g);
    char err[512];
    struct sp_oci_ref ref;
    struct sp_oci_options o = {
        .ca_file = cfg->ca_file, .auth_file = cfg->auth_file, .timeout_ms = cfg->timeout_ms};
    if (!(g->artifact = strdup(cfg->artifact))) {
        sp_error("gate_oom", "cannot allocate the catalog gate");
        goto fail;
    }
    if (sp_oci_ref_parse(cfg->artifact, &ref, err, sizeof err) < 0) {
        sp_error("bad_catalog_artifact", "%s", err);
        goto fail;
    }
    if (!(g->oci = sp_oci_client_new(&o, err, sizeof err))) {
        sp_error("gate_oom", "%s", err);
        goto fail;
    }
    if (pthread_create(&g->thread, NULL, catalog_main, g) != 0) {
        sp_error("gate_thread", "cannot start the catalog thread");
        goto fail;
    }
    g->thread_started = 1;
    sp_info("catalog_configured", "pulling %s (refresh every %ld s and on SIGHUP)", g->artifact,
            g->refresh_s);
    return g;
fail:
    api_gate_free(g);
    return NULL;
}

void api_gate_refresh(struct api_gate *g)
{
    if (!g->enabled) {
        sp_info("catalog_refresh_ignored", "SIGHUP: no catalog artifact is configured");
        return;
    }
    sp_info("catalog_refresh", "SIGHUP: pulling %s again", g->artifact);
    pthread_mutex_lock(&g->wake_lock);
    g->refresh_asked = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->wake_lock);
}

void api_gate_free(struct api_gate *g)
{
    if (!g)
        return;
    if (g->thread_started) {
        sp_oci_client_cancel(g->oci); /* a pull under way ends now */
        pthread_mutex_lock(&g->wake_lock);
        g->stopping = 1;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->wake_lock);
        pthread_join(g->thread, NULL);
    }
    sp_oci_client_free(g->oci);
    sp_catalog_free(g->catalog);
    free(g->artifact);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->error_lock);
    pthread_mutex_destroy(&g->wake_lock);
    pthread_rwlock_destroy(&g->lock);
    free(g);
}
