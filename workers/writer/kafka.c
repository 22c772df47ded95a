/* kafka.c - idempotent producer, delivery-report thread, reachability probe. See kafka.h. */
#include "kafka.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_client.h"
#include "log.h"
#include "metrics.h"

struct wr_kafka {
    struct sp_kafka client; /* client.rk is the producer */
    rd_kafka_topic_t *rkt;
    wr_delivery_fn *on_delivery;
    uint64_t sticky_ms;   /* 0: librdkafka's partitioner, by key */
    uint64_t sticky_seed; /* differs per writer, so writers spread over partitions */
    pthread_t poll_thread;
    bool poll_started;
    _Atomic bool stop;
    _Atomic bool up;
    bool probed; /* a first probe result exists (probe thread only) */
    struct sp_metric *delivery_errors;
    struct sp_metric *up_gauge;
};

/* After a fatal error nothing is answered OK, not even a record confirmed before it whose
 * report comes after: the producer's guarantees are gone, and the caller hears UNAVAILABLE
 * or INTERNAL (may or may not be stored) rather than a success we can no longer vouch for. */
static void on_delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct wr_kafka *k = sp_kafka_owner(opaque);
    rd_kafka_resp_err_t err = m->err;
    if (!err && sp_kafka_failed(&k->client))
        err = RD_KAFKA_RESP_ERR__FATAL;
    if (err)
        sp_counter_add(k->delivery_errors, 1);
    k->on_delivery(m->_private, err);
}

static double queue_length(void *arg)
{
    struct wr_kafka *k = arg;
    return (double)rd_kafka_outq_len(k->client.rk);
}

static void *poll_main(void *arg)
{
    struct wr_kafka *k = arg;
    while (!atomic_load(&k->stop))
        rd_kafka_poll(k->client.rk, 100);
    return NULL;
}

/* splitmix64's finaliser: a well-mixed 64-bit hash of a window number. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Sticky partitioning: every record of one time window of sticky_ms goes to one partition, so a
 * batch holds the writer's whole rate instead of a sixth of it per partition (the broker's cost
 * is per request and per batch far more than per record). The partition is a function of the
 * window alone: no state, so any librdkafka thread may call this. Nothing needs a product's
 * sales in one partition: the consumer applies each partition in offset order and a sale
 * counts once wherever it lies (ARCHITECTURE.md). */
static int32_t sticky_partitioner(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                  int32_t partitions, void *topic_opaque, void *msg_opaque)
{
    (void)key, (void)keylen, (void)msg_opaque;
    const struct wr_kafka *k = topic_opaque;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    int32_t first = (int32_t)(mix64(ms / k->sticky_ms ^ k->sticky_seed) % (uint64_t)partitions);
    for (int32_t i = 0; i < partitions; i++) {
        int32_t p = (first + i) % partitions;
        if (rd_kafka_topic_partition_available(rkt, p))
            return p;
    }
    return first; /* none has a leader now: librdkafka keeps the record until one has */
}

static rd_kafka_conf_t *producer_conf(struct wr_kafka *k, const struct wr_kafka_options *o,
                                      char *err, size_t errlen)
{
    char timeout[32], linger[32], queue[32], acks[8];
    snprintf(timeout, sizeof timeout, "%ld", o->delivery_timeout_ms);
    snprintf(acks, sizeof acks, "%ld", o->acks);
    snprintf(linger, sizeof linger, "%ld", o->linger_ms);
    snprintf(queue, sizeof queue, "%ld", o->queue_max);
    const struct sp_kafka_setting settings[] = {
        {"bootstrap.servers", o->brokers},
        {"client.id", o->client_id},
        {"enable.idempotence", o->idempotence ? "true" : "false"},
        {"acks", acks},
        {"message.timeout.ms", timeout},
        {"linger.ms", linger},
        {"queue.buffering.max.messages", queue},
    };
    k->client.owner = k; /* a fatal error: main sees wr_kafka_failed within a second */
    rd_kafka_conf_t *conf = sp_kafka_conf(
        &k->client, settings, sizeof settings / sizeof settings[0], &o->security, err, errlen);
    if (conf)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery_report);
    return conf;
}

struct wr_kafka *wr_kafka_new(const struct wr_kafka_options *o, char *err, size_t errlen)
{
    struct wr_kafka *k = calloc(1, sizeof *k);
    rd_kafka_conf_t *conf = NULL;
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->on_delivery = o->on_delivery;
    k->sticky_ms = o->sticky_ms > 0 ? (uint64_t)o->sticky_ms : 0;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    k->sticky_seed = mix64((uint64_t)getpid() << 32 ^ (uint64_t)t.tv_nsec);
    if (!(conf = producer_conf(k, o, err, errlen)) ||
        sp_kafka_new(&k->client, RD_KAFKA_PRODUCER, conf, err, errlen) < 0)
        goto fail;
    rd_kafka_topic_conf_t *tconf = NULL;
    if (k->sticky_ms) {
        /* A copy of the default topic configuration: message.timeout.ms and acks are topic
         * properties, which a fresh rd_kafka_topic_conf_new() would reset to librdkafka's
         * defaults (a 5 minute delivery timeout). */
        tconf = rd_kafka_default_topic_conf_dup(k->client.rk);
        rd_kafka_topic_conf_set_partitioner_cb(tconf, sticky_partitioner);
        rd_kafka_topic_conf_set_opaque(tconf, k);
    }
    if (!(k->rkt = rd_kafka_topic_new(k->client.rk, o->topic, tconf))) {
        snprintf(err, errlen, "kafka topic %s: %s", o->topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (pthread_create(&k->poll_thread, NULL, poll_main, k) != 0) {
        snprintf(err, errlen, "cannot start the kafka poll thread");
        goto fail;
    }
    k->poll_started = true;
    k->delivery_errors = sp_counter_new("sp_writer_kafka_delivery_errors_total", NULL,
                                        "Records Kafka did not confirm (delivery report errors).");
    k->up_gauge = sp_gauge_new("sp_writer_kafka_up", NULL,
                               "1 when the last metadata probe reached Kafka.");
    sp_gauge_fn_new("sp_writer_kafka_queue_length", NULL,
                    "Records in the producer queue, not yet confirmed by Kafka.", queue_length, k);
    return k;
fail:
    wr_kafka_free(k, 0);
    return NULL;
}

rd_kafka_resp_err_t wr_kafka_send(struct wr_kafka *k, const struct wr_record *r, void *opaque)
{
    char received[24];
    snprintf(received, sizeof received, "%" PRId64, r->received_ms);
    /* No RD_KAFKA_MSG_F_COPY: the caller keeps key and value alive until the report. */
    return rd_kafka_producev(
        k->client.rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_KEY(r->key, r->key_len),
        RD_KAFKA_V_VALUE((void *)r->value, r->value_len),
        RD_KAFKA_V_HEADER("sale-id", r->sale_id, -1),
        RD_KAFKA_V_HEADER("received-ms", received, -1), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

void wr_kafka_probe(struct wr_kafka *k, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(k->client.rk, 0, k->rkt, &md, timeout_ms);
    if (!err && md->topic_cnt == 1)
        err = md->topics[0].err;
    if (md)
        rd_kafka_metadata_destroy(md);
    bool up = !err, was = atomic_exchange(&k->up, up);
    sp_gauge_set(k->up_gauge, up);
    if (up && (!was || !k->probed))
        sp_info("kafka_up", "topic %s reachable", rd_kafka_topic_name(k->rkt));
    else if (!up && (was || !k->probed))
        sp_warn("kafka_down", "metadata for topic %s: %s", rd_kafka_topic_name(k->rkt),
                rd_kafka_err2str(err));
    k->probed = true;
}

bool wr_kafka_up(struct wr_kafka *k)
{
    return atomic_load(&k->up) && !sp_kafka_failed(&k->client);
}

bool wr_kafka_failed(struct wr_kafka *k)
{
    return sp_kafka_failed(&k->client);
}

rd_kafka_t *wr_kafka_producer(struct wr_kafka *k)
{
    return k->client.rk;
}

void wr_kafka_abandon(struct wr_kafka *k)
{
    rd_kafka_resp_err_t err = rd_kafka_purge(k->client.rk, RD_KAFKA_PURGE_F_QUEUE |
                                                               RD_KAFKA_PURGE_F_INFLIGHT |
                                                               RD_KAFKA_PURGE_F_NON_BLOCKING);
    if (err)
        sp_warn("kafka_purge", "%s", rd_kafka_err2str(err));
}

void wr_kafka_free(struct wr_kafka *k, int timeout_ms)
{
    if (!k)
        return;
    if (k->client.rk && sp_kafka_failed(&k->client))
        wr_kafka_abandon(k); /* nothing will be delivered: do not wait for it */
    else if (k->client.rk) {
        rd_kafka_resp_err_t err = rd_kafka_flush(k->client.rk, timeout_ms);
        if (err)
            sp_warn("kafka_flush", "%d records not delivered: %s", rd_kafka_outq_len(k->client.rk),
                    rd_kafka_err2str(err));
    }
    atomic_store(&k->stop, true);
    if (k->poll_started)
        pthread_join(k->poll_thread, NULL);
    if (k->rkt)
        rd_kafka_topic_destroy(k->rkt);
    if (k->client.rk)
        rd_kafka_destroy(k->client.rk);
    free(k);
}
