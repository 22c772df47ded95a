/* desired.h - everything a pipeline should own, built from its spec in apply order: the Valkey
 * Secrets (password first: everything after uses it), the Strimzi
 * objects, per component its Service and Deployment, the api's HPA and Ingress, the
 * NetworkPolicies, the Valkey PVC, VMs and Services, then the Grafana dashboards and data
 * source (build.h). The Valkey objects (cloud-init Secrets, PVC, VMs, Services, their
 * NetworkPolicy) are in the data namespace (spec.valkey.namespace), everything else in the
 * pipeline's. An external Kafka (spec.kafka.bootstrapServers) or Valkey (spec.valkey.url)
 * gets none of its objects. */
#ifndef OP_DESIRED_H
#define OP_DESIRED_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "build.h"
#include "component.h"
#include "kinds.h"
#include "pipeline.h"

#define DESIRED_DASHBOARD (-2)
#define VALKEY_VMS_MAX 5 /* spec.valkey.replicas' maximum in the CRD */
#define DESIRED_MAX (3 + 3 + 2 * COMPONENTS_MAX + 2 + NETPOL_COUNT + 1 + VALKEY_VMS_MAX + 2 + 3 + 1)

struct desired_obj {
    enum kind_id kind;
    const char *ns;   /* metadata.namespace inside obj: the pipeline's, or the data namespace */
    const char *name; /* metadata.name inside obj */
    cJSON *obj;
    int comp; /* index in comps[] for Deployments, DESIRED_DASHBOARD for the
                         * Grafana objects, else -1 */
};

struct desired {
    struct component comps[COMPONENTS_MAX];
    int n_comps;
    struct desired_obj objs[DESIRED_MAX];
    int n;
};

/* `password` is the Valkey password (valkey_password_fetch). Returns 0, or -1 on
 * out-of-memory (nothing to free then). */
int desired_build(const struct pipeline *p, const char *password, struct desired *d);
void desired_free(struct desired *d);
/* Appends an object built from what only a cluster has (the pull Secret's copy); takes `obj`
 * (freed on failure, as a NULL obj is a failure). 0 or -1. */
int desired_add(struct desired *d, enum kind_id kind, cJSON *obj);
/* Whether the set holds an object of `kind` called `name` in namespace `ns`. */
bool desired_has(const struct desired *d, enum kind_id kind, const char *ns, const char *name);

#endif
