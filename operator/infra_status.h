/* infra_status.h - readiness of the infrastructure objects, read from their status. */
#ifndef OP_INFRA_STATUS_H
#define OP_INFRA_STATUS_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct part_status {
    bool known; /* the object was seen */
    bool ready;
    bool restart_required; /* VirtualMachine: KubeVirt waits for a restart to apply the spec */
    char message[256];     /* why not ready (the owner's own condition text when it has one) */
};

/* Strimzi Kafka / KafkaTopic: condition Ready=True for the current generation. */
void infra_read_strimzi(const cJSON *obj, struct part_status *s);
/* KafkaNodePool: status.replicas (or nodeIds) reach spec.replicas. */
void infra_read_nodepool(const cJSON *obj, struct part_status *s);
/* VirtualMachine: status.ready and printableStatus Running (and Ready condition if any). */
void infra_read_vm(const cJSON *obj, struct part_status *s);

#endif
