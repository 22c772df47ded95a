/* data_namespace.h - the namespace of a pipeline's Valkey VMs (spec.valkey.namespace, default
 * <ns>-data), and the finalizer that cleans it up.
 *
 * KubeVirt's virt-launcher pods need the privileged Pod Security level, which the workers'
 * namespace must not get; so the VMs, their Services, cloud-init Secrets and data disk live in
 * a namespace of their own. The operator creates it (labelled privileged, managed by us, and
 * with the workers' namespace it serves) or uses an existing one that already enforces
 * privileged; it never relabels a namespace it did not make.
 *
 * Owner references cannot cross namespaces, so the objects there carry labels instead
 * (OP_PIPELINE_NS_LABEL + app.kubernetes.io/instance), and the SalesPipeline carries
 * OP_FINALIZER: when it is deleted, the operator deletes those objects, then the namespace if it
 * made it and nothing else of ours lives there, then removes the finalizer. */
#ifndef OP_DATA_NAMESPACE_H
#define OP_DATA_NAMESPACE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "kube.h"
#include "pipeline.h"

/* Makes the data namespace when it is missing, re-applies ours (labels restored), checks
 * someone else's. 0 (*created set when it was made now), or -1 with `why` saying what is
 * wrong in words a user can act on. */
int data_ns_ensure(struct kube_client *kc, const struct pipeline *p, bool *created, char *why,
                   size_t cap);

/* Deletes the data namespaces the operator made for p's namespace, except `keep` (NULL: none),
 * in which no object of ours is left (objects already being deleted do not count). Returns
 * how many it deleted, or -1 with `err` set. */
int data_ns_collect(struct kube_client *kc, const struct pipeline *p, const char *keep, char *err,
                    size_t cap);

/* Whether the SalesPipeline object carries OP_FINALIZER. */
bool pipeline_has_finalizer(const cJSON *obj);
/* Adds or removes OP_FINALIZER (a merge patch conditioned on the object's resourceVersion,
 * other finalizers kept). 0, or -1 with `err` set (409: the object changed, retry). */
int pipeline_set_finalizer(struct kube_client *kc, const cJSON *obj, bool present, char *err,
                           size_t cap);

#endif
