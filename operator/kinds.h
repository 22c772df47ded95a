/* kinds.h - the object kinds the operator reads and writes, with their REST paths.
 *
 * One row per kind: adding an owned kind is a row here, a builder (build_<kind>.c) and a line
 * in desired.c. The Strimzi and KubeVirt kinds are "optional": their CRDs come with those
 * operators, so a cluster without them is reported, not fatal, to the informers. */
#ifndef OP_KINDS_H
#define OP_KINDS_H

#include <stdbool.h>
#include <stddef.h>

enum kind_id {
    KIND_PIPELINE, /* the custom resource itself: watched, never applied */
    KIND_CONFIGMAP,
    KIND_SERVICE,
    KIND_DEPLOYMENT,
    KIND_HPA,
    KIND_INGRESS,
    KIND_NETPOL,
    KIND_SECRET,
    KIND_PVC,
    KIND_KAFKA,
    KIND_KAFKA_NODEPOOL,
    KIND_KAFKA_TOPIC,
    KIND_VM,
    KIND_COUNT
};

struct kind_info {
    const char *kind;        /* "Deployment" */
    const char *api_version; /* "apps/v1" */
    const char *prefix;      /* "/apis/apps/v1" */
    const char *plural;      /* "deployments" */
    bool owned;              /* created by the operator, watched by label, owner-mapped */
    bool metadata_only;      /* watch as PartialObjectMetadata: we only need owner and name */
    bool optional;           /* served only once another operator installed its CRD */
};

extern const struct kind_info kinds[KIND_COUNT];

#define OP_GROUP "sales.blackfriday.dev"
#define OP_API_VERSION OP_GROUP "/v1alpha1"
#define OP_KIND "SalesPipeline"
#define OP_FIELD_MANAGER "salespipeline-operator"
#define OP_MANAGED_BY OP_FIELD_MANAGER
/* Selector that every owned object matches (set by build_meta.c). */
#define OP_OWNED_SELECTOR "app.kubernetes.io/managed-by=" OP_MANAGED_BY
/* Objects outside the pipeline's namespace (the Valkey VMs' data namespace) cannot carry an
 * owner reference to it: they carry the pipeline's namespace in this label (and its name in
 * app.kubernetes.io/instance), and the pipeline this finalizer, under which the operator
 * deletes them before the pipeline goes. */
#define OP_PIPELINE_NS_LABEL OP_GROUP "/pipeline-namespace"
#define OP_INSTANCE_LABEL "app.kubernetes.io/instance"
#define OP_FINALIZER OP_GROUP "/data-namespace"

/* Writes the collection path of `k` in `ns` (all namespaces when ns is NULL or "") and, when
 * `name` is set, the object's path. Returns the length, or -1 if `cap` is too small. */
int kinds_path(char *buf, size_t cap, enum kind_id k, const char *ns, const char *name);

/* The kind whose "kind" field and apiVersion match; KIND_COUNT if none. */
enum kind_id kinds_find(const char *api_version, const char *kind);

#endif
