/* informer.h - LIST then WATCH one kind, forever, on its own thread.
 *
 * Lists in pages, then watches from the list's resourceVersion with bookmarks, resuming from
 * the last resourceVersion seen after every disconnect; "410 Gone" (the version expired)
 * means list again. Transport errors back off exponentially (0.5 s .. 30 s, jittered).
 * With `resync` set it also lists again periodically (at the next watch restart), so that an
 * event lost in a 410 gap is made up for. Every object seen, listed or watched, goes to `on_event`; no objects are kept (the
 * reconcile reads what it needs from the API server), so memory does not grow with the
 * cluster. */
#ifndef OP_INFORMER_H
#define OP_INFORMER_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kinds.h"
#include "kube.h"
#include "metrics.h"

enum informer_event { INFORMER_LISTED, INFORMER_ADDED, INFORMER_MODIFIED, INFORMER_DELETED };

/* Called on the informer's thread; `obj` is valid only during the call. */
typedef void informer_fn(enum kind_id kind, enum informer_event ev, const cJSON *obj, void *arg);

struct informer {
    /* settings */
    enum kind_id kind;
    const char *ns;             /* NULL or "": all namespaces */
    const char *label_selector; /* NULL: none */
    long watch_timeout;         /* server-side timeoutSeconds (jittered +0..20%) */
    double resync;              /* list again after this many seconds (0: never) */
    informer_fn *on_event;
    void *arg;
    const atomic_bool *stop;
    struct kube_config *cfg;
    /* state */
    struct kube_client kc;
    pthread_t thread;
    bool started;
    atomic_bool synced;         /* the first list completed (or an optional kind is absent) */
    bool absent;                /* the last list said 404: an optional kind's CRD is missing */
    char rv[64];                /* resume point; "" = list first */
    struct sp_metric *restarts; /* watch (re)starts after the first */
    struct sp_metric *relists;
    struct sp_metric *events;
};

/* Starts the thread. Returns 0, or -1 (logged). */
int informer_start(struct informer *inf);
/* Joins the thread (set *stop first) and frees its client. */
void informer_join(struct informer *inf);

#endif
