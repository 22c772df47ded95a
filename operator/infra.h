/* infra.h - what a SalesPipeline runs on besides its workers (issue 6): Strimzi Kafka
 * (build_kafka.c), Valkey in KubeVirt VMs (build_valkey.c, cloudinit.c) and the Grafana
 * dashboards (build_grafana.c), and the readiness read back from each (infra_status.c).
 *
 * Builders follow build.h's contract: a complete desired object as a new cJSON tree (NULL on
 * out-of-memory), pure functions of their inputs, so that a repeated apply changes nothing.
 * The one input that is not in the spec is the Valkey password: the reconcile reads it from
 * the Secret it generated once (valkey_password_*), never a new one per reconcile. */
#ifndef OP_INFRA_H
#define OP_INFRA_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "kube.h"
#include "pipeline.h"

#define INFRA_KAFKA_PORT 9092
#define INFRA_VALKEY_PORT 6379
#define INFRA_VALKEY_SECRET_KEY "password"
#define INFRA_CLOUDINIT_KEY "userdata"       /* the key KubeVirt reads from a secretRef */
#define INFRA_DATA_DISK_SERIAL "valkeydata"  /* /dev/disk/by-id/virtio-valkeydata in the guest */
#define INFRA_PASSWORD_LEN 64                /* hex characters (32 random bytes) */
#define INFRA_GRAFANA_LABEL "grafana_dashboard"     /* the Grafana chart sidecar's defaults */
#define INFRA_DATASOURCE_LABEL "grafana_datasource"
/* The data namespace's Pod Security level: what KubeVirt's virt-launcher pods need (KubeVirt
 * refuses a VM in any other: "it needs a privileged namespace to run"). */
#define INFRA_DATA_NS_LEVEL "privileged"
/* On a data namespace the operator made: the workers' namespace whose pipelines it serves. */
#define INFRA_WORKERS_NS_LABEL "sales.blackfriday.dev/workers-namespace"

enum valkey_role { VALKEY_PRIMARY, VALKEY_REPLICA };

/* ---------------------------------------------------------------- names */

/* A Secret (type Opaque) holding one key, in the pipeline's namespace or in `ns`; NULL on
 * out-of-memory. */
cJSON *infra_secret(const struct pipeline *p, const char *name, const char *component,
                    const char *key, const char *value);
cJSON *infra_secret_in(const struct pipeline *p, const char *ns, const char *name,
                       const char *component, const char *key, const char *value);

/* The Strimzi Kafka of a managed cluster: named like the pipeline (pipeline_kafka_bootstrap). */
const char *infra_kafka_cluster(const struct pipeline *p);
void infra_nodepool_name(const struct pipeline *p, char *buf, size_t cap);
/* VM names: <name>-valkey-primary, <name>-valkey-replica-<i> (i from 1). */
void infra_vm_name(const struct pipeline *p, enum valkey_role role, int index, char *buf,
                   size_t cap);
/* Services: <name>-valkey-primary (writes), <name>-valkey-replica (reads; Grafana). */
void infra_valkey_service_name(const struct pipeline *p, enum valkey_role role, char *buf,
                               size_t cap);
/* A Service's DNS name, <service>.<data namespace>.svc.cluster.local: what the workers, Grafana
 * and the replicas dial (the VMs live in their own namespace, spec.valkey.namespace). */
void infra_valkey_host(const struct pipeline *p, enum valkey_role role, char *buf, size_t cap);
/* redis://<primary host>:6379, the consumer's VALKEY_URL. */
void infra_valkey_url(const struct pipeline *p, char *buf, size_t cap);
/* The Secret holding the password: spec.valkey.passwordSecret, else <name>-valkey (ours). */
void infra_password_secret(const struct pipeline *p, char *buf, size_t cap);
bool infra_password_secret_owned(const struct pipeline *p);
/* Number of replica VMs: spec.valkey.replicas - 1. */
int infra_valkey_replicas(const struct pipeline *p);

/* ---------------------------------------------------------------- build_kafka.c */

cJSON *build_kafka(const struct pipeline *p);          /* only when spec.kafka.managed */
cJSON *build_kafka_nodepool(const struct pipeline *p); /* idem */
cJSON *build_kafka_topic(const struct pipeline *p);    /* always */

/* ---------------------------------------------------------------- valkey_password.c */

/* A new random password (RAND_bytes), INFRA_PASSWORD_LEN hex characters. 0 or -1. */
int valkey_password_generate(char out[INFRA_PASSWORD_LEN + 1]);
/* The password in a Secret object (data.password, base64). 0, or -1 when absent/invalid. */
int valkey_password_read(const cJSON *secret, char *out, size_t cap);
/* A fingerprint of the password, keyed with the pipeline's uid (HMAC-SHA256, 16 hex digits):
 * put on the consumer's pod template, so a new password rolls the consumers, while the
 * annotation tells nothing usable about the password itself. 0 or -1. */
int valkey_password_hash(const struct pipeline *p, const char *password, char out[17]);
/* The pipeline's password: read from its Secret, or (our own Secret only, and only when the
 * API server says it does not exist) a new one, with *generated set: the caller applies the
 * Secret before anything that uses it. 0, or -1 with `err` set. */
int valkey_password_fetch(struct kube_client *kc, const struct pipeline *p, char *out, size_t cap,
                          bool *generated, char *err, size_t errcap);

/* ---------------------------------------------------------------- build_valkey.c */

cJSON *build_valkey_secret(const struct pipeline *p, const char *password);
cJSON *build_valkey_cloudinit_secret(const struct pipeline *p, enum valkey_role role,
                                     const char *password);
cJSON *build_valkey_pvc(const struct pipeline *p);     /* only with spec.valkey.persistence */
cJSON *build_valkey_vm(const struct pipeline *p, enum valkey_role role, int index,
                       const char *password);
cJSON *build_valkey_service(const struct pipeline *p, enum valkey_role role);
/* <name>-pull: the copy of spec.imagePullSecret in the data namespace, from which KubeVirt
 * pulls the containerDisk (a Secret is read in the VM's own namespace). */
void infra_pull_secret_copy_name(const struct pipeline *p, char *buf, size_t cap);
/* That copy, made from the live Secret `source` of the pipeline's namespace (type and data). */
cJSON *build_valkey_pull_secret(const struct pipeline *p, const cJSON *source);
/* The data namespace (cluster-scoped, no owner): Pod Security level INFRA_DATA_NS_LEVEL. */
cJSON *build_data_namespace(const struct pipeline *p);

/* ---------------------------------------------------------------- cloudinit.c */

/* valkey.conf for the role (a new string, NULL on out-of-memory). */
char *cloudinit_valkey_conf(const struct pipeline *p, enum valkey_role role, const char *password);
/* The whole #cloud-config user data for the role's VMs (a new string). */
char *cloudinit_render(const struct pipeline *p, enum valkey_role role, const char *password);
/* Bytes of a Kubernetes quantity ("1Gi", "512M", "1.5Gi", "1073741824"); 0 or -1. */
int infra_quantity_bytes(const char *q, unsigned long long *out);
/* Whole CPUs of a quantity, rounded up ("500m" -> 1, "2" -> 2); at least 1. */
int infra_quantity_cpus(const char *q);

/* ---------------------------------------------------------------- build_grafana.c */

/* The MISSION.md dashboard over Valkey (Redis data source plugin) as Grafana JSON. */
cJSON *grafana_sales_dashboard(const struct pipeline *p);
/* The pipeline-health dashboard over Prometheus. */
cJSON *grafana_health_dashboard(const struct pipeline *p);
/* ConfigMaps <name>-dashboard-sales and <name>-dashboard-health for the sidecar. */
cJSON *build_grafana_dashboard(const struct pipeline *p, bool health);
/* Secret <name>-grafana-datasource (label grafana_datasource): the Valkey replica as a
 * redis-datasource, with the password (so it is a Secret, not a ConfigMap). */
cJSON *build_grafana_datasource(const struct pipeline *p, const char *password);
/* Grafana uids: stable, <= 40 characters. */
void grafana_uid(const struct pipeline *p, const char *suffix, char *buf, size_t cap);

/* ---------------------------------------------------------------- infra_status.c */

struct part_status {
    bool known;          /* the object was seen */
    bool ready;
    bool restart_required;  /* VirtualMachine: KubeVirt waits for a restart to apply the spec */
    char message[256];   /* why not ready (the owner's own condition text when it has one) */
};

/* Strimzi Kafka / KafkaTopic: condition Ready=True for the current generation. */
void infra_read_strimzi(const cJSON *obj, struct part_status *s);
/* KafkaNodePool: status.replicas (or nodeIds) reach spec.replicas. */
void infra_read_nodepool(const cJSON *obj, struct part_status *s);
/* VirtualMachine: status.ready and printableStatus Running (and Ready condition if any). */
void infra_read_vm(const cJSON *obj, struct part_status *s);

#endif
