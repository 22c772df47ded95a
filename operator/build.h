/* build.h - one builder per owned kind, each in its own file (build_<kind>.c), each returning
 * the complete desired object as a new cJSON tree (NULL on out-of-memory) ready for
 * server-side apply: apiVersion, kind, metadata (name, namespace, app.kubernetes.io labels,
 * controller owner reference) and the fields the operator owns, nothing else.
 *
 * Builders are pure functions of the pipeline: same spec, same bytes, so that a repeated apply
 * changes nothing. */
#ifndef OP_BUILD_H
#define OP_BUILD_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "component.h"
#include "infra.h"
#include "jb.h"
#include "kinds.h"
#include "pipeline.h"

#define BUILD_PASSWORD_HASH_ANNOTATION OP_GROUP "/valkey-password-hash"
#define BUILD_CONTAINER_UID 65532 /* "nonroot" of distroless images */
/* Where the api finds the registry's credentials (the imagePullSecret's .dockerconfigjson) and
 * CA (spec.catalog.caConfigMap's ca.crt) to pull the catalog artifact. */
#define BUILD_REGISTRY_AUTH_DIR "/var/run/secrets/salespipeline/registry-auth"
#define BUILD_REGISTRY_CA_DIR "/var/run/salespipeline/registry-ca"
/* SIGTERM to an api or bridge pod: how long it stays in lame duck (not ready, still answering,
 * closing connections) before its intake stops: the time for the Service's endpoints, kube-proxy
 * and an ingress controller to stop sending it new connections (SHUTDOWN_DELAY_MS). */
#define BUILD_SHUTDOWN_DELAY_MS 5000
/* The writers' and the consumer's CA of an external Kafka (spec.kafka.security.caConfigMap). */
#define BUILD_KAFKA_CA_DIR "/var/run/salespipeline/kafka-ca"

/* build_meta.c: the skeleton shared by every kind. `component` ("api", "writer-a"; NULL for
 * pipeline-wide objects) and `app` (the image name, "writer") label the object. */
cJSON *build_object(struct jb *b, const struct pipeline *p, enum kind_id kind, const char *name,
                    const char *component, const char *app);
/* The same in namespace `ns`. Outside the pipeline's namespace an owner reference would not
 * hold (the garbage collector treats a cross-namespace owner as absent and deletes the
 * object): such objects carry OP_PIPELINE_NS_LABEL instead (kinds.h). */
cJSON *build_object_in(struct jb *b, const struct pipeline *p, enum kind_id kind, const char *ns,
                       const char *name, const char *component, const char *app);
/* Whether a live object (or its metadata) carries the controller reference build_object writes
 * for the pipeline of `uid`: the objects the operator made, as opposed to the user's. */
bool build_controlled_by(const cJSON *obj, const char *uid);
/* The labels that select a component's pods (stable: Deployment selectors are immutable). */
void build_selector_labels(struct jb *b, cJSON *dst, const struct pipeline *p,
                           const char *component, const char *app);
/* All labels: selector labels plus part-of, managed-by and version. */
void build_labels(struct jb *b, cJSON *dst, const struct pipeline *p, const char *component,
                  const char *app);

/* build_deployment.c. `password_hash` (valkey_password_hash) goes on the pod template of the
 * components that read the Valkey password, so that a new password restarts them. */
cJSON *build_deployment(const struct pipeline *p, const struct component *c,
                        const char *password_hash);
/* build_service.c: ClusterIP, or headless for writer groups. */
cJSON *build_service(const struct pipeline *p, const struct component *c);
/* build_hpa.c: autoscaling/v2 for the api Deployment. */
cJSON *build_hpa(const struct pipeline *p);
/* build_ingress.c: NGINX Ingress, path /ventas to the api Service. */
cJSON *build_ingress(const struct pipeline *p);
/* build_netpol.c: one NetworkPolicy per target, with spec.networkPolicies. Valkey's is put in
 * spec.valkey.namespace, the namespace of the Valkey VMs; the consumer's egress points there. */
enum netpol_target {
    NETPOL_API,
    NETPOL_BRIDGE,
    NETPOL_WRITERS,
    NETPOL_CONSUMER,
    NETPOL_VALKEY,
    NETPOL_COUNT
};
cJSON *build_netpol(const struct pipeline *p, enum netpol_target t);

/* build_kafka.c: Strimzi objects (docs/operator-infra.md). */
cJSON *build_kafka(const struct pipeline *p);          /* only when spec.kafka.managed */
cJSON *build_kafka_nodepool(const struct pipeline *p); /* idem */
cJSON *build_kafka_topic(const struct pipeline *p);    /* always */

/* build_valkey.c: the Valkey VMs, their disk, Services and Secrets. `password` is the
 * pipeline's (valkey_password.h). */
cJSON *build_valkey_secret(const struct pipeline *p, const char *password);
cJSON *build_valkey_cloudinit_secret(const struct pipeline *p, enum valkey_role role,
                                     const char *password);
cJSON *build_valkey_pvc(const struct pipeline *p); /* only with spec.valkey.persistence */
cJSON *build_valkey_vm(const struct pipeline *p, enum valkey_role role, int index,
                       const char *password);
cJSON *build_valkey_service(const struct pipeline *p, enum valkey_role role);
/* The copy of spec.imagePullSecret in the data namespace (infra_pull_secret_copy_name), made
 * from the live Secret `source` of the pipeline's namespace (type and data). */
cJSON *build_valkey_pull_secret(const struct pipeline *p, const cJSON *source);
/* The data namespace (cluster-scoped, no owner): Pod Security level INFRA_DATA_NS_LEVEL. */
cJSON *build_data_namespace(const struct pipeline *p);

/* build_grafana.c: ConfigMaps <name>-dashboard-sales and <name>-dashboard-health for the
 * Grafana chart's sidecar (the dashboards themselves: grafana.h), and Secret
 * <name>-grafana-datasource (label grafana_datasource): the Valkey replica as a
 * redis-datasource, with the password (so it is a Secret, not a ConfigMap). */
cJSON *build_grafana_dashboard(const struct pipeline *p, bool health);
cJSON *build_grafana_datasource(const struct pipeline *p, const char *password);

#endif
