/* build_kafka.c - Strimzi (kafka.strimzi.io/v1, Strimzi >= 1.0: KRaft only, brokers and
 * controllers from KafkaNodePools, so no strimzi.io/kraft or node-pools annotations).
 *
 * A managed cluster is a Kafka named like the pipeline with one KafkaNodePool of
 * spec.kafka.brokers nodes that are both broker and controller, a plain listener on 9092
 * (the workers' bootstrap address: pipeline_kafka_bootstrap) and the Topic Operator; a
 * KafkaTopic is written in every case, labelled for the managed cluster or for
 * spec.kafka.clusterRef. */
#include "build.h"
#include "infra.h"

#include <stdio.h>

static cJSON *labels_of(cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"),
                                            "labels");
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* Broker defaults that a one-broker cluster cannot meet otherwise (internal topics with
 * replication 3). With 3+ brokers: replication 3, min ISR 2, the usual safe pair. */
static void broker_config(struct jb *b, cJSON *cfg, int brokers)
{
    int rf = min_int(3, brokers), isr = min_int(2, brokers);
    jb_int(b, cfg, "offsets.topic.replication.factor", rf);
    jb_int(b, cfg, "transaction.state.log.replication.factor", rf);
    jb_int(b, cfg, "transaction.state.log.min.isr", isr);
    jb_int(b, cfg, "default.replication.factor", rf);
    jb_int(b, cfg, "min.insync.replicas", isr);
    jb_bool(b, cfg, "auto.create.topics.enable", false); /* the KafkaTopic is the contract */
}

cJSON *build_kafka(const struct pipeline *p)
{
    struct jb b = {0};
    cJSON *o = build_object(&b, p, KIND_KAFKA, p->name, "kafka", "kafka");
    cJSON *spec = jb_obj(&b, o, "spec"), *kafka = jb_obj(&b, spec, "kafka");
    cJSON *l = jb_obj(&b, jb_arr(&b, kafka, "listeners"), NULL);
    jb_str(&b, l, "name", "plain");
    jb_int(&b, l, "port", INFRA_KAFKA_PORT);
    jb_str(&b, l, "type", "internal");
    jb_bool(&b, l, "tls", false);
    broker_config(&b, jb_obj(&b, kafka, "config"), p->kafka.brokers);
    /* Only the Topic Operator: the pipeline has no KafkaUsers. */
    jb_obj(&b, jb_obj(&b, spec, "entityOperator"), "topicOperator");
    return jb_done(&b, o);
}

cJSON *build_kafka_nodepool(const struct pipeline *p)
{
    struct jb b = {0};
    char name[128];
    infra_nodepool_name(p, name, sizeof name);
    cJSON *o = build_object(&b, p, KIND_KAFKA_NODEPOOL, name, "kafka", "kafka");
    jb_str(&b, labels_of(o), "strimzi.io/cluster", infra_kafka_cluster(p));
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_int(&b, spec, "replicas", p->kafka.brokers);
    cJSON *roles = jb_arr(&b, spec, "roles");
    jb_str(&b, roles, NULL, "controller");
    jb_str(&b, roles, NULL, "broker");
    cJSON *storage = jb_obj(&b, spec, "storage");
    jb_str(&b, storage, "type", "jbod");
    cJSON *vol = jb_obj(&b, jb_arr(&b, storage, "volumes"), NULL);
    jb_int(&b, vol, "id", 0);
    jb_str(&b, vol, "type", "persistent-claim");
    jb_str(&b, vol, "size", p->kafka.storage);
    jb_bool(&b, vol, "deleteClaim", true); /* the cluster lives and dies with its pipeline */
    jb_str(&b, vol, "kraftMetadata", "shared");
    return jb_done(&b, o);
}

cJSON *build_kafka_topic(const struct pipeline *p)
{
    struct jb b = {0};
    char name[128];
    pipeline_object_name(p, "topic", name, sizeof name); /* topic names need not be DNS names */
    cJSON *o = build_object(&b, p, KIND_KAFKA_TOPIC, name, "kafka", "kafka");
    jb_str(&b, labels_of(o), "strimzi.io/cluster", infra_kafka_cluster(p));
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, spec, "topicName", p->kafka.topic);
    jb_int(&b, spec, "partitions", p->kafka.partitions);
    jb_int(&b, spec, "replicas", p->kafka.topic_replicas);
    cJSON *cfg = jb_obj(&b, spec, "config");
    jb_int(&b, cfg, "retention.ms", (long)p->kafka.retention_hours * 3600L * 1000L);
    /* acks=all writers: with 3+ copies one may be down; with 2, both must answer (1 then). */
    jb_int(&b, cfg, "min.insync.replicas", p->kafka.topic_replicas > 2 ? 2 : 1);
    return jb_done(&b, o);
}
