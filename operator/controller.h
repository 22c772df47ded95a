/* controller.h - the operator's moving parts, wired together (controller-runtime's manager):
 *
 *   one informer thread per kind (SalesPipeline + each owned kind, the latter by label)
 *     -> event handler: SalesPipeline events give their own key (only when the spec changed:
 *        generation != status.observedGeneration); owned objects' events give their
 *        controller owner's key, so drift on any owned object reconciles its pipeline
 *     -> work queue (dedup, back-off)
 *     -> `workers` reconcile threads, each with its own API client, which only take keys
 *        while this process holds the Lease (and whose writes are refused otherwise).
 *
 * Threads: informers (KIND_COUNT, plus one per owned kind in the data namespace of a
 * namespaced operator), workers (1 by default), lease (1), the admin HTTP
 * daemon (libmicrohttpd's), and main, which waits for SIGTERM. */
#ifndef OP_CONTROLLER_H
#define OP_CONTROLLER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "events.h"
#include "informer.h"
#include "kinds.h"
#include "lease.h"
#include "metrics.h"
#include "seen.h"
#include "workqueue.h"

#define CONTROLLER_WORKERS_MAX 16

struct controller {
    /* settings */
    struct kube_config *cfg;
    const char *watch_ns; /* "" for all namespaces */
    const char *data_ns;  /* with watch_ns: the one data namespace (reconcile.h) */
    const char *identity;
    long workers;
    long watch_timeout;
    double resync;
    long max_keys;
    struct lease *lease; /* NULL without leader election */
    /* state */
    atomic_bool stop;
    struct wq *queue;
    struct events *events;
    struct seen *seen;
    struct informer informers[KIND_COUNT];
    struct informer data_informers[KIND_COUNT]; /* owned kinds in data_ns, when set */
    pthread_t threads[CONTROLLER_WORKERS_MAX];
    int n_threads;
    struct {
        struct sp_metric *ok, *error, *invalid, *latency, *dropped, *applies, *changes;
    } m;
};

/* Creates the queue, starts informers and workers. Returns 0 or -1 (logged; call
 * controller_stop() to undo what started). */
int controller_start(struct controller *c);
/* True once every informer has listed. */
bool controller_synced(struct controller *c);
/* Stops intake, lets in-flight reconciles finish and joins every thread. The lease (if any)
 * is stopped by the caller after this, so that it is held until the last write. */
void controller_stop(struct controller *c);
/* Frees the queue and friends (after the admin server, which reads the queue depth, stopped). */
void controller_free(struct controller *c);

#endif
