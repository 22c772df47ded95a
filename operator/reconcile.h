/* reconcile.h - one SalesPipeline brought to its spec: level-based and idempotent.
 *
 * Told only which pipeline (namespace, name), it reads the object, builds every owned object
 * from the spec (desired.c), server-side applies each one (our field manager, force), deletes
 * owned objects the spec no longer wants (only when the generation changed since the last
 * successful reconcile: the set depends on the spec alone), and writes the status last
 * (status.c), skipping the write when nothing changed. It keeps no memory between calls
 * except seen.c's fingerprints, which only word Events. */
#ifndef OP_RECONCILE_H
#define OP_RECONCILE_H

#include <stddef.h>

#include "events.h"
#include "kube.h"
#include "metrics.h"
#include "seen.h"

enum rec_result {
    REC_OK,      /* at the spec (or the pipeline is gone) */
    REC_ERROR,   /* retry with back-off */
    REC_INVALID, /* the spec cannot be used: no retry until it changes */
};

struct reconciler {
    struct kube_client *kc; /* write-gated by the lease */
    struct events *events;
    struct seen *seen;
    struct sp_metric *applies; /* objects applied */
    struct sp_metric *changes; /* objects created, changed or deleted */
    /* A namespaced operator's one data namespace: pipelines must keep their Valkey VMs there
     * (spec.valkey.namespace), objects elsewhere are never listed, and namespaces are never
     * created or deleted (the install made it). NULL: cluster-wide. */
    const char *data_ns;
};

enum rec_result reconcile_pipeline(struct reconciler *r, const char *ns, const char *name,
                                   char *err, size_t errcap);

#endif
