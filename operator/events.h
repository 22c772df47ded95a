/* events.h - core/v1 Events about a SalesPipeline: what the operator changed, and errors.
 *
 * Posting is best effort: a failure is logged, never returned (an Event must not fail a
 * reconcile). The same (object, reason, message) is posted at most once per
 * EVENTS_DEDUP_SECONDS so that a failure retried with back-off cannot flood the namespace. */
#ifndef OP_EVENTS_H
#define OP_EVENTS_H

#include "kube.h"

#define EVENTS_DEDUP_SECONDS 300.0

struct event_ref {
    const char *ns, *name, *uid; /* the SalesPipeline */
};

struct events;

/* `instance` (the operator's identity) must outlive the recorder. */
struct events *events_new(const char *instance);
void events_free(struct events *ev);

void events_emit(struct events *ev, struct kube_client *kc, const struct event_ref *ref,
                 const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Events posted (for /metrics). */
unsigned long events_posted(struct events *ev);

#endif
