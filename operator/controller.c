/* controller.c - informers -> handler -> queue -> workers. See controller.h. */
#include "controller.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reconcile.h"

#define WORKER_STACK (512 * 1024)
#define BACKOFF_BASE 0.5
#define BACKOFF_MAX 300.0

static const char *str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The SalesPipeline that controls `obj` (owner reference with controller=true), or NULL. */
static const char *controller_owner(const cJSON *md)
{
    const cJSON *ref;
    cJSON_ArrayForEach (ref, cJSON_GetObjectItemCaseSensitive(md, "ownerReferences")) {
        const char *api = str(ref, "apiVersion"), *kind = str(ref, "kind");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")) && api && kind &&
            !strcmp(kind, OP_KIND) && !strncmp(api, OP_GROUP "/", strlen(OP_GROUP) + 1))
            return str(ref, "name");
    }
    return NULL;
}

/* The SalesPipeline an object outside its namespace belongs to (the data namespace's objects
 * carry its namespace and name as labels: owner references cannot cross namespaces). */
static const char *labelled_owner(const cJSON *md, const char **ns)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    *ns = str(labels, OP_PIPELINE_NS_LABEL);
    return *ns ? str(labels, OP_INSTANCE_LABEL) : NULL;
}

/* Whether a SalesPipeline event asks for work: its spec is not reconciled yet, or it is being
 * deleted and the finalizer waits for us. Our own status writes (observedGeneration ==
 * generation) and other metadata-only edits are skipped. */
static bool spec_pending(const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    if (cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp"))
        return true;
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    const cJSON *obs = cJSON_GetObjectItemCaseSensitive(st, "observedGeneration");
    return !cJSON_IsNumber(gen) || !cJSON_IsNumber(obs) || gen->valuedouble != obs->valuedouble;
}

static void on_event(enum kind_id kind, enum informer_event ev, const cJSON *obj, void *arg)
{
    struct controller *c = arg;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const char *ns = str(md, "namespace"), *name;
    char key[WQ_KEY_MAX];
    if (kind == KIND_PIPELINE) {
        /* Gone: the garbage collector follows owner references, and the finalizer already
         * cleaned up the data namespace. */
        if (ev == INFORMER_DELETED || (ev == INFORMER_MODIFIED && !spec_pending(obj)))
            return;
        name = str(md, "name");
    } else if (!(name = controller_owner(md))) {
        name = labelled_owner(md, &ns);
    }
    if (!ns || !name)
        return;
    snprintf(key, sizeof key, "%s/%s", ns, name);
    if (wq_add(c->queue, key) < 0) {
        sp_counter_add(c->m.dropped, 1);
        sp_warn("queue_full", "dropped %s: %zu keys queued", key, wq_size(c->queue));
    }
}

static void handle_result(struct controller *c, const char *key, enum rec_result res,
                          const char *err, double took)
{
    double delay = 0;
    sp_histogram_observe(c->m.latency, took);
    switch (res) {
    case REC_OK:
        sp_counter_add(c->m.ok, 1);
        wq_forget(c->queue, key);
        sp_debug("reconciled", "%s in %.3f s", key, took);
        break;
    case REC_INVALID:
        sp_counter_add(c->m.invalid, 1);
        wq_forget(c->queue, key);
        sp_warn("reconcile_invalid", "%s: %s (not retried until the spec changes)", key, err);
        break;
    case REC_ERROR:
        sp_counter_add(c->m.error, 1);
        wq_add_rate_limited(c->queue, key, &delay);
        sp_warn("reconcile_failed", "%s: %s; retry in %.1f s", key, err, delay);
        break;
    }
}

static void *worker_main(void *arg)
{
    struct controller *c = arg;
    struct kube_client kc;
    char key[WQ_KEY_MAX], err[KUBE_ERR_MAX + 128];
    if (kube_client_init(&kc, c->cfg, NULL) < 0) {
        sp_error("worker_failed", "cannot set up curl");
        return NULL;
    }
    kc.write_gate = c->lease ? &c->lease->leading : NULL;
    struct reconciler r = {.kc = &kc,
                           .events = c->events,
                           .seen = c->seen,
                           .applies = c->m.applies,
                           .changes = c->m.changes,
                           .data_ns = c->data_ns && *c->data_ns ? c->data_ns : NULL};
    while (!atomic_load(&c->stop)) {
        if (c->lease && !lease_wait_leading(c->lease, &c->stop))
            break;
        if (!wq_get(c->queue, key))
            break;
        char *slash = strchr(key, '/');
        if (slash) {
            *slash = '\0';
            double t0 = sp_now();
            err[0] = '\0';
            enum rec_result res = reconcile_pipeline(&r, key, slash + 1, err, sizeof err);
            *slash = '/';
            handle_result(c, key, res, err, sp_now() - t0);
        }
        wq_done(c->queue, key);
        /* Give the freed pages back after every reconcile, not only when a burst is over: a
         * cold start is one long burst, and its freed holes would set the peak. A few hundred
         * microseconds against a reconcile's tens of milliseconds. */
        malloc_trim(0);
    }
    kube_client_free(&kc);
    return NULL;
}

static void register_metrics(struct controller *c)
{
    static const char *restarts_help = "Watches started again after the first, per kind";
    c->m.ok = sp_counter_new("sp_operator_reconciles_total", "result=\"success\"",
                             "Reconciles by result");
    c->m.error = sp_counter_new("sp_operator_reconciles_total", "result=\"error\"",
                                "Reconciles by result");
    c->m.invalid = sp_counter_new("sp_operator_reconciles_total", "result=\"invalid\"",
                                  "Reconciles by result");
    c->m.latency = sp_histogram_new("sp_operator_reconcile_duration_seconds", NULL,
                                    "Time to reconcile one SalesPipeline");
    c->m.dropped = sp_counter_new("sp_operator_queue_dropped_total", NULL,
                                  "Keys not queued because the queue was full");
    c->m.applies = sp_counter_new("sp_operator_applies_total", NULL, "Objects server-side applied");
    c->m.changes = sp_counter_new("sp_operator_changes_total", NULL,
                                  "Owned objects created, changed or deleted");
    for (int k = 0; k < KIND_COUNT; k++) {
        static char labels[KIND_COUNT][64];
        snprintf(labels[k], sizeof labels[k], "kind=\"%s\"", kinds[k].plural);
        c->informers[k].restarts = sp_counter_new("sp_operator_watch_restarts_total", labels[k],
                                                  restarts_help);
        c->informers[k].relists = sp_counter_new(
            "sp_operator_relists_total", labels[k],
            "Lists after the first (410 Gone or resync), per kind");
        c->informers[k].events = sp_counter_new("sp_operator_watch_events_total", labels[k],
                                                "Watch events received, per kind");
    }
}

static double queue_depth(void *arg)
{
    return (double)wq_depth(arg);
}

/* Whether kind k is watched in the data namespace too: an owned kind, in a namespaced operator.
 * From the configuration alone, so /readyz (another thread) needs no informer state for it. */
static bool watches_data(const struct controller *c, int k)
{
    return kinds[k].owned && c->data_ns && *c->data_ns;
}

/* Every kind in the watched namespace (all when none); a namespaced operator also watches its
 * data namespace for the owned kinds (their events map to pipelines by label). */
static int start_informers(struct controller *c)
{
    for (int i = 0; i < 2 * KIND_COUNT; i++) {
        int k = i % KIND_COUNT;
        bool data = i >= KIND_COUNT;
        if (data && !watches_data(c, k))
            continue;
        struct informer *inf = data ? &c->data_informers[k] : &c->informers[k];
        if (data) { /* the same counters as the kind's informer in the watched namespace */
            inf->restarts = c->informers[k].restarts;
            inf->relists = c->informers[k].relists;
            inf->events = c->informers[k].events;
        }
        inf->kind = (enum kind_id)k;
        inf->ns = data ? c->data_ns : c->watch_ns;
        inf->label_selector = kinds[k].owned ? OP_OWNED_SELECTOR : NULL;
        inf->watch_timeout = c->watch_timeout;
        inf->resync = k == KIND_PIPELINE ? c->resync : 0;
        inf->on_event = on_event;
        inf->arg = c;
        inf->stop = &c->stop;
        inf->cfg = c->cfg;
        if (informer_start(inf) < 0)
            return -1;
    }
    return 0;
}

static int start_workers(struct controller *c)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    int rc = 0;
    for (long i = 0; i < c->workers && rc == 0; i++) {
        rc = pthread_create(&c->threads[c->n_threads], &attr, worker_main, c);
        if (rc == 0)
            c->n_threads++;
        else
            sp_error("worker_failed", "cannot start worker thread %ld", i);
    }
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

int controller_start(struct controller *c)
{
    atomic_store(&c->stop, false);
    if (c->workers < 1 || c->workers > CONTROLLER_WORKERS_MAX) {
        sp_error("controller_failed", "workers must be 1..%d", CONTROLLER_WORKERS_MAX);
        return -1;
    }
    c->queue = wq_new((size_t)c->max_keys, BACKOFF_BASE, BACKOFF_MAX);
    c->events = events_new(c->identity);
    c->seen = seen_new((size_t)c->max_keys);
    if (!c->queue || !c->events || !c->seen) {
        sp_error("controller_failed", "out of memory");
        return -1;
    }
    register_metrics(c);
    sp_gauge_fn_new("sp_operator_queue_depth", NULL, "Keys ready to reconcile", queue_depth,
                    c->queue);
    return start_informers(c) < 0 || start_workers(c) < 0 ? -1 : 0;
}

bool controller_synced(struct controller *c)
{
    for (int k = 0; k < KIND_COUNT; k++)
        if (!atomic_load(&c->informers[k].synced) ||
            (watches_data(c, k) && !atomic_load(&c->data_informers[k].synced)))
            return false;
    return true;
}

void controller_stop(struct controller *c)
{
    atomic_store(&c->stop, true);
    if (c->queue)
        wq_shutdown(c->queue);
    if (c->lease)
        lease_wake(c->lease);
    for (int i = 0; i < c->n_threads; i++)
        pthread_join(c->threads[i], NULL);
    c->n_threads = 0;
    for (int k = 0; k < KIND_COUNT; k++) {
        informer_join(&c->informers[k]);
        informer_join(&c->data_informers[k]);
    }
}

void controller_free(struct controller *c)
{
    wq_free(c->queue);
    events_free(c->events);
    seen_free(c->seen);
    c->queue = NULL;
    c->events = NULL;
    c->seen = NULL;
}
