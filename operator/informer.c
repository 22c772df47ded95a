/* informer.c - list + watch loop. See informer.h. */
#include "informer.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Small pages: a page of 100 SalesPipelines is 1.3 MB of JSON, five times that as a cJSON
 * tree, and the six informers list at the same moment at start-up. */
#define LIST_PAGE 25
#define BACKOFF_MIN 0.5
#define BACKOFF_MAX 30.0
#define THREAD_STACK (256 * 1024)

struct watch_state {
    struct informer *inf;
    bool gone; /* 410: the resourceVersion expired, list again */
    bool got_event;
    char error[256];
};

static void sleep_unless_stopped(const atomic_bool *stop, double seconds)
{
    for (double t = 0; t < seconds && !atomic_load(stop); t += 0.1)
        usleep(100000);
}

static const char *rv_of(const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));
}

/* Collection path plus query: "?<query>&labelSelector=...". */
static int build_path(struct informer *inf, char *buf, size_t cap, const char *query)
{
    char sel[512] = "";
    int n = kinds_path(buf, cap, inf->kind, inf->ns, NULL);
    if (n < 0 || (inf->label_selector && kube_escape(sel, sizeof sel, inf->label_selector) < 0))
        return -1;
    int m = snprintf(buf + n, cap - (size_t)n, "?%s%s%s", query, *sel ? "&labelSelector=" : "",
                     sel);
    return m < 0 || (size_t)m >= cap - (size_t)n ? -1 : 0;
}

static int list_page(struct informer *inf, char *cont, size_t cont_cap, char *err, size_t errcap)
{
    char query[1200], esc[1024] = "", path[2048];
    long status;
    if (*cont && kube_escape(esc, sizeof esc, cont) < 0)
        return -1;
    snprintf(query, sizeof query, "limit=%d%s%s", LIST_PAGE, *esc ? "&continue=" : "", esc);
    if (build_path(inf, path, sizeof path, query) < 0) {
        snprintf(err, errcap, "list path too long");
        return -1;
    }
    cJSON *list = kube_call(&inf->kc, "GET", path,
                            kinds[inf->kind].metadata_only ? KUBE_ACCEPT_META_LIST : NULL, NULL,
                            NULL, &status, err, errcap);
    inf->absent = !list && status == 404 && kinds[inf->kind].optional;
    if (!list)
        return -1;
    const cJSON *item, *md = cJSON_GetObjectItemCaseSensitive(list, "metadata");
    cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive(list, "items"))
        inf->on_event(inf->kind, INFORMER_LISTED, item, inf->arg);
    const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "continue"));
    snprintf(cont, cont_cap, "%s", next ? next : "");
    if (!*cont)
        snprintf(inf->rv, sizeof inf->rv, "%s", rv_of(list) ? rv_of(list) : "");
    cJSON_Delete(list);
    return 0;
}

/* Lists every page; on success inf->rv is the list's resourceVersion. */
static int list_all(struct informer *inf, char *err, size_t errcap)
{
    char cont[1024] = "";
    inf->rv[0] = '\0';
    do {
        if (list_page(inf, cont, sizeof cont, err, errcap) < 0)
            return -1;
    } while (*cont && !atomic_load(inf->stop));
    if (!*inf->rv) {
        snprintf(err, errcap, "list without a resourceVersion");
        return -1;
    }
    return 0;
}

static enum informer_event event_type(const char *type, bool *known)
{
    *known = true;
    if (!strcmp(type, "ADDED"))
        return INFORMER_ADDED;
    if (!strcmp(type, "MODIFIED"))
        return INFORMER_MODIFIED;
    if (!strcmp(type, "DELETED"))
        return INFORMER_DELETED;
    *known = false;
    return INFORMER_ADDED;
}

static int on_watch_line(const char *line, size_t len, void *arg)
{
    struct watch_state *ws = arg;
    struct informer *inf = ws->inf;
    cJSON *ev = cJSON_ParseWithLength(line, len);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    int rc = 0;
    bool known;
    if (!type || !cJSON_IsObject(obj)) {
        snprintf(ws->error, sizeof ws->error, "malformed watch event");
        rc = -1;
    } else if (!strcmp(type, "ERROR")) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        ws->gone = cJSON_IsNumber(code) && code->valueint == 410;
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "message"));
        snprintf(ws->error, sizeof ws->error, "watch error: %s", msg ? msg : "(no message)");
        rc = -1;
    } else {
        const char *rv = rv_of(obj);
        if (rv)
            snprintf(inf->rv, sizeof inf->rv, "%s", rv);
        enum informer_event e = event_type(type, &known);
        if (known) { /* BOOKMARK only moves the resume point */
            ws->got_event = true;
            sp_counter_add(inf->events, 1);
            inf->on_event(inf->kind, e, obj, inf->arg);
        }
    }
    cJSON_Delete(ev);
    return rc;
}

/* One watch request. Returns 0 when it ended normally; -1 on error (ws->gone for 410). */
static int watch_once(struct informer *inf, struct watch_state *ws, unsigned *seed, char *err,
                      size_t errcap)
{
    char query[256], path[2048];
    long status, timeout = inf->watch_timeout + (long)(rand_r(seed) % (inf->watch_timeout / 5 + 1));
    snprintf(query, sizeof query,
             "watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%ld", inf->rv,
             timeout);
    if (build_path(inf, path, sizeof path, query) < 0) {
        snprintf(err, errcap, "watch path too long");
        return -1;
    }
    int rc = kube_stream(&inf->kc, path, kinds[inf->kind].metadata_only ? KUBE_ACCEPT_META : NULL,
                         timeout + 30, on_watch_line, ws, &status, err, errcap);
    if (status == 410)
        ws->gone = true;
    if (*ws->error)
        snprintf(err, errcap, "%s", ws->error);
    return rc;
}

static double backoff_next(double b, unsigned *seed)
{
    b = b * 2 > BACKOFF_MAX ? BACKOFF_MAX : b * 2;
    return b * (0.8 + 0.4 * (rand_r(seed) % 1000) / 1000.0);
}

static void *informer_main(void *arg)
{
    struct informer *inf = arg;
    char err[KUBE_ERR_MAX];
    double backoff = BACKOFF_MIN;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)inf->kind * 7919u;
    bool first = true;
    double listed_at = 0;
    while (!atomic_load(inf->stop)) {
        if (inf->resync > 0 && listed_at > 0 && sp_now() - listed_at > inf->resync)
            inf->rv[0] = '\0'; /* periodic relist: catches what a 410 gap may have hidden */
        if (!*inf->rv) {
            if (list_all(inf, err, sizeof err) < 0) {
                if (atomic_load(inf->stop))
                    break;
                if (inf->absent) {
                    /* Strimzi or KubeVirt not installed (yet): nothing of this kind can exist,
                     * so the informer counts as synced; the reconciles report the missing kind. */
                    if (!atomic_exchange(&inf->synced, true))
                        sp_warn("kind_not_served",
                                "%s: not served by the API server (is its "
                                "operator installed?); checking again every %.0f s",
                                kinds[inf->kind].plural, BACKOFF_MAX);
                    sleep_unless_stopped(inf->stop, BACKOFF_MAX);
                    continue;
                }
                sp_warn("list_failed", "%s: %s; retrying in %.1f s", kinds[inf->kind].plural, err,
                        backoff);
                sleep_unless_stopped(inf->stop, backoff);
                backoff = backoff_next(backoff, &seed);
                continue;
            }
            if (!atomic_load(&inf->synced))
                sp_info("informer_synced", "%s listed at resourceVersion %s",
                        kinds[inf->kind].plural, inf->rv);
            else
                sp_counter_add(inf->relists, 1);
            atomic_store(&inf->synced, true);
            listed_at = sp_now();
            malloc_trim(0); /* hand the pages' memory back rather than keep it in the heap */
        }
        if (!first)
            sp_counter_add(inf->restarts, 1);
        first = false;
        struct watch_state ws = {.inf = inf};
        int rc = watch_once(inf, &ws, &seed, err, sizeof err);
        if (atomic_load(inf->stop))
            break;
        if (ws.got_event)
            backoff = BACKOFF_MIN;
        if (ws.gone) {
            sp_info("watch_expired", "%s: %s; listing again", kinds[inf->kind].plural, err);
            inf->rv[0] = '\0';
        } else if (rc < 0) {
            sp_warn("watch_failed", "%s: %s; retrying in %.1f s", kinds[inf->kind].plural, err,
                    backoff);
            sleep_unless_stopped(inf->stop, backoff);
            backoff = backoff_next(backoff, &seed);
        } else {
            backoff = BACKOFF_MIN; /* the server ended the watch at timeoutSeconds: resume */
        }
    }
    return NULL;
}

int informer_start(struct informer *inf)
{
    pthread_attr_t attr;
    if (kube_client_init(&inf->kc, inf->cfg, inf->stop) < 0) {
        sp_error("informer_failed", "%s: cannot set up curl", kinds[inf->kind].plural);
        return -1;
    }
    inf->rv[0] = '\0';
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    int rc = pthread_create(&inf->thread, &attr, informer_main, inf);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        sp_error("informer_failed", "%s: cannot start a thread", kinds[inf->kind].plural);
        kube_client_free(&inf->kc);
        return -1;
    }
    inf->started = true;
    return 0;
}

void informer_join(struct informer *inf)
{
    if (!inf->started)
        return;
    pthread_join(inf->thread, NULL);
    kube_client_free(&inf->kc);
    inf->started = false;
}
