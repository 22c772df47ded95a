/* status.h - a pipeline's status from what the reconcile saw.
 *
 * The documented contract (also in the report / ARCHITECTURE):
 *   observedGeneration  the generation whose objects were all applied successfully
 *   components[]        per component: its Deployment's replicas, readyReplicas,
 *                       updatedReplicas, and ready = the Deployment has observed its latest
 *                       spec and every wanted replica is updated and ready
 *   Ready        True  AllComponentsReady        the four parts below True, no reconcile error
 *                False ComponentsNotReady        message: "waiting for:" the workers not ready
 *                                                ("name ready/wanted"), then the other parts'
 *                                                own messages
 *                False ReconcileFailed / InvalidSpec
 *   WorkersReady True  AllComponentsReady        every Deployment rolled out
 *                False ComponentsNotReady        "waiting for: name ready/wanted ..."
 *   KafkaReady   True  KafkaReady                Strimzi: the Kafka and KafkaTopic have Ready=True
 *                                                for their generation and the node pool all its
 *                                                nodes (only the topic with spec.kafka.clusterRef)
 *                True  ExternalKafka             spec.kafka.bootstrapServers: nothing to wait for
 *                                                (the writers' readiness checks the brokers)
 *                False KafkaNotReady             the first part that is not, in Strimzi's words
 *   ValkeyReady  True  ValkeyReady               KubeVirt: every VM ready and Running; the message
 *                                                says when a VM waits for a restart to apply
 *                                                the spec (RestartRequired)
 *                True  ExternalValkey            spec.valkey.url: nothing to wait for (the
 *                                                consumer's readiness checks it)
 *                False ValkeyNotReady            the first VM that is not ("Starting", ...)
 *   DashboardReady True  DashboardsPublished     both dashboard ConfigMaps and the data source
 *                                                Secret applied (for the Grafana sidecars)
 *                False DashboardsNotPublished    one of them failed to apply
 *   Progressing  True  RollingOut                a component is not ready yet
 *                True  Reconciling               the latest generation is not applied yet
 *                False Complete                  everything ready
 *                False ProgressDeadlineExceeded  a Deployment gave up
 *   Degraded     True  ReconcileFailed           applying failed (message: the error)
 *                True  InvalidSpec               the spec cannot be used (message: the field)
 *                True  DeploymentFailed          a Deployment reports ProgressDeadlineExceeded
 *                                                or ReplicaFailure
 *                False AsExpected
 *   api                 from the api's HorizontalPodAutoscaler: currentReplicas, desiredReplicas
 *                       (absent until the HPA could compute one: it needs the metrics API),
 *                       cpuUtilization (% of the pods' CPU request), cpu ("45%/30%": current
 *                       against the target), lastScaleTime; absent until the HPA has a status
 * lastTransitionTime changes only when a condition's status changes. */
#ifndef OP_STATUS_H
#define OP_STATUS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "component.h"
#include "infra_status.h"
#include "pipeline.h"

struct comp_status {
    char name[32];
    char deployment[128];
    long replicas, ready, updated;
    bool known; /* we have the Deployment's status */
    bool is_ready;
    bool failed; /* ProgressDeadlineExceeded or ReplicaFailure */
    char failure[256];
};

/* The api's autoscaling, from its HPA's status (status.api; `kubectl get sp` columns). */
struct hpa_status {
    bool known;            /* the HPA has a status with a current replica count */
    long current, desired; /* currentReplicas, desiredReplicas (-1: none computed yet) */
    long cpu;              /* current average CPU utilisation (%), -1 before metrics */
    char last_scale[40];   /* lastScaleTime, or "" */
};

struct status_input {
    const struct pipeline *p;
    struct hpa_status api;
    long observed_generation; /* what to report (the old value after a failure) */
    struct comp_status comps[COMPONENTS_MAX];
    int n_comps;
    char ingress_address[256];
    struct part_status kafka;  /* Kafka, node pool and topic together (status_merge_part) */
    struct part_status valkey; /* every VM together */
    bool dashboards;           /* dashboards and data source applied */
    const char *error;         /* reconcile error, or NULL */
    bool invalid_spec;         /* error is a spec problem (terminal) */
};

/* Reads a HorizontalPodAutoscaler (autoscaling/v2, as returned by apply) into `hs`. */
void status_read_hpa(const cJSON *hpa, struct hpa_status *hs);
/* Reads a Deployment object (as returned by apply or GET) into `cs`. */
void status_read_deployment(const cJSON *deploy, struct comp_status *cs);
/* Folds one object's readiness into a part: ready only if every object is; the first
 * object that is not gives the message; a pending VM restart is noted either way. */
void status_merge_part(struct part_status *part, const struct part_status *one);
/* The first load balancer IP or host name of an Ingress; "" if none. */
void status_read_ingress(const cJSON *ingress, char *addr, size_t cap);

/* The status apply body {apiVersion, kind, metadata{name,namespace}, status}. `current` is the
 * object's present status (may be NULL): its lastTransitionTimes are kept where a condition's
 * status did not change. `now` is an RFC 3339 time. NULL on out-of-memory. */
cJSON *status_build(const struct status_input *in, const cJSON *current, const char *now);

/* Whether `built` (from status_build) says the same as the object's `current` status. */
bool status_same(const cJSON *built, const cJSON *current);

/* Formats the current UTC time as RFC 3339 (seconds) or, with micro, a MicroTime. */
void status_now(char *buf, size_t cap, bool micro);

#endif
