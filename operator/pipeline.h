/* pipeline.h - a SalesPipeline's metadata and spec, parsed from its JSON into fixed buffers.
 *
 * The API server has already defaulted and validated the object (crds/); the parser still
 * fills the same defaults for any field that is missing (an older CRD, a hand-made test
 * object) and refuses values that do not fit, naming the field. */
#ifndef OP_PIPELINE_H
#define OP_PIPELINE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define PL_WRITERS_MAX 8
#define PL_QTY_MAX 17 /* a quantity such as "500m", "128Mi" */

struct pl_resources {
    char req_cpu[PL_QTY_MAX], req_mem[PL_QTY_MAX], lim_cpu[PL_QTY_MAX], lim_mem[PL_QTY_MAX];
};

/* One direction of the api HPA's spec.behavior (autoscaling/v2 HPAScalingRules). */
#define PL_SCALING_POLICIES_MAX 4
struct pl_scaling_policy {
    char type[8]; /* Pods, Percent */
    int value, period_s;
};
struct pl_scaling {
    int window_s;   /* stabilizationWindowSeconds */
    char select[9]; /* selectPolicy: Max, Min, Disabled */
    int n_policies;
    struct pl_scaling_policy policies[PL_SCALING_POLICIES_MAX];
};

struct pl_writer {
    char name[21];
    int replicas;
    struct pl_resources res;
};

struct pipeline {
    /* metadata */
    char ns[64], name[64], uid[64];
    long generation;
    /* spec */
    char registry[201], version[129], pull_secret[254], log_level[8];
    struct {
        bool enabled;
        char class_name[64], host[254];
    } ingress;
    struct {
        bool enabled;
        char ingress_ns[64], monitoring_ns[64];
    } netpol;
    struct {
        int min_replicas, max_replicas, cpu_target, timeout_ms;
        struct pl_resources res;
        struct pl_scaling scale_up, scale_down; /* spec.api.behavior */
    } api;
    struct {
        int replicas;
        struct pl_resources res;
    } bridge, consumer;
    struct pl_writer writers[PL_WRITERS_MAX];
    int n_writers;
    struct {
        bool managed;
        char cluster_ref[64], topic[201], storage[PL_QTY_MAX];
        /* an external Kafka: its bootstrap servers, and how to reach them */
        char bootstrap_servers[1001];
        struct {
            char protocol[16], sasl_mechanism[16], credentials_secret[254], ca_configmap[254];
        } security;
        int brokers, partitions, topic_replicas, retention_hours;
    } kafka;
    struct {
        int replicas;
        char cpu[PL_QTY_MAX], memory[PL_QTY_MAX], storage[PL_QTY_MAX], password_secret[254];
        /* containerDisk image of the VMs; spec "" means <registry>/valkey-vm:<version> */
        char image[401];
        /* where the VMs, their Services, Secrets and disk live: spec "" means <ns>-data;
         * "" with an external Valkey (url), which has no VMs */
        char ns[64];
        char url[301]; /* an external Valkey primary, redis://host:port[/db]; "" for VMs */
        long ttl_seconds;
        bool persistence, wait_for_replica;
    } valkey;
    char carnet[17];
    char catalog[401];    /* spec.catalog.artifact: the api's CATALOG_ARTIFACT */
    char catalog_ca[254]; /* spec.catalog.caConfigMap: a ConfigMap with the registry's ca.crt */
};

/* Fills `p` from a SalesPipeline object. Returns 0, or -1 with `err` naming the bad field. */
int pipeline_parse(const cJSON *obj, struct pipeline *p, char *err, size_t errcap);

/* The dashboard category of a carnet (by its last digit); "" for an empty carnet. */
const char *pipeline_category(const char *carnet);

/* Object names: "<name>-<suffix>". Returns buf. */
char *pipeline_object_name(const struct pipeline *p, const char *suffix, char *buf, size_t cap);

/* The Kafka bootstrap address: spec.kafka.bootstrapServers for an external Kafka, else
 * "<cluster>-kafka-bootstrap.<ns>.svc:9092", where the cluster is spec.kafka.clusterRef, or,
 * when managed, the Strimzi Kafka named like the pipeline. */
void pipeline_kafka_bootstrap(const struct pipeline *p, char *buf, size_t cap);

/* Where the pipeline's Kafka and Valkey come from: an existing service the spec names
 * (spec.kafka.bootstrapServers, spec.valkey.url) instead of what the operator makes (Strimzi,
 * KubeVirt VMs). The operator then makes nothing for it, and only points the workers at it. */
bool pipeline_kafka_external(const struct pipeline *p);
bool pipeline_valkey_external(const struct pipeline *p);
/* A SASL protocol (sasl_plaintext, sasl_ssl) / a TLS one (ssl, sasl_ssl) to an external Kafka. */
bool pipeline_kafka_sasl(const struct pipeline *p);
bool pipeline_kafka_tls(const struct pipeline *p);

#endif
