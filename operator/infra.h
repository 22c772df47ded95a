/* infra.h - the names of what a SalesPipeline runs on besides its workers (issue 6): Strimzi
 * Kafka, Valkey in KubeVirt VMs and their Secrets, Services and ports (infra.c). The builders of
 * those objects are in build.h; the Valkey password in valkey_password.h; the VMs' cloud-init
 * in cloudinit.h; the Grafana dashboards in grafana.h; the readiness read back in
 * infra_status.h. docs/operator-infra.md describes all of it. */
#ifndef OP_INFRA_H
#define OP_INFRA_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

#define INFRA_KAFKA_PORT 9092
#define INFRA_VALKEY_PORT 6379
#define INFRA_VALKEY_SECRET_KEY "password"
#define INFRA_CLOUDINIT_KEY "userdata"          /* the key KubeVirt reads from a secretRef */
#define INFRA_DATA_DISK_SERIAL "valkeydata"     /* /dev/disk/by-id/virtio-valkeydata in the guest */
#define INFRA_PASSWORD_LEN 64                   /* hex characters (32 random bytes) */
#define INFRA_GRAFANA_LABEL "grafana_dashboard" /* the Grafana chart sidecar's defaults */
#define INFRA_DATASOURCE_LABEL "grafana_datasource"
/* The data namespace's Pod Security level: what KubeVirt's virt-launcher pods need (KubeVirt
 * refuses a VM in any other: "it needs a privileged namespace to run"). */
#define INFRA_DATA_NS_LEVEL "privileged"
/* On a data namespace the operator made: the workers' namespace whose pipelines it serves. */
#define INFRA_WORKERS_NS_LABEL "sales.blackfriday.dev/workers-namespace"

enum valkey_role { VALKEY_PRIMARY, VALKEY_REPLICA };

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
/* redis://<primary host>:6379, the consumer's VALKEY_URL; an external Valkey's spec.valkey.url. */
void infra_valkey_url(const struct pipeline *p, char *buf, size_t cap);
/* <name>-pull: the copy of spec.imagePullSecret in the data namespace, from which KubeVirt
 * pulls the containerDisk (a Secret is read in the VM's own namespace). */
void infra_pull_secret_copy_name(const struct pipeline *p, char *buf, size_t cap);
/* The Secret holding the password: spec.valkey.passwordSecret, else <name>-valkey (ours: the
 * VMs always have a password). An external Valkey (spec.valkey.url) has one only when
 * passwordSecret names it; without, the consumer and Grafana connect without AUTH. */
void infra_password_secret(const struct pipeline *p, char *buf, size_t cap);
bool infra_password_secret_owned(const struct pipeline *p);
bool infra_valkey_has_password(const struct pipeline *p);
/* Number of replica VMs: spec.valkey.replicas - 1. */
int infra_valkey_replicas(const struct pipeline *p);

#endif
