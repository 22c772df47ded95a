/* kafka.h - the writer's idempotent Kafka producer (acks=all) and its delivery-report thread.
 *
 * Threads: librdkafka's own (main + one per broker) send the records; one poll thread of ours
 * serves delivery reports and hands each to `on_delivery`, which must not block. The health
 * probe (wr_kafka_probe) runs on whichever thread calls it; main calls it once a second. */
#ifndef WR_KAFKA_H
#define WR_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_client.h"

/* Called on the poll thread once per record, with the opaque given to wr_kafka_send. After a
 * fatal error (wr_kafka_failed) `err` is never RD_KAFKA_RESP_ERR_NO_ERROR. */
typedef void wr_delivery_fn(void *opaque, rd_kafka_resp_err_t err);

struct wr_kafka_options {
    const char *brokers;
    const char *topic;
    const char *client_id;
    long delivery_timeout_ms; /* message.timeout.ms: a record not confirmed by then fails */
    long linger_ms;           /* batching delay */
    long sticky_ms;           /* one partition for this long, then another; 0: by key */
    long queue_max;           /* queue.buffering.max.messages */
    struct sp_kafka_security security; /* TLS / SASL to the brokers */
    long acks;                         /* -1 (all), 1 or 0 */
    int idempotence; /* enable.idempotence; librdkafka refuses it with acks != all */
    wr_delivery_fn *on_delivery;
};

/* One record. Key and value are not copied: they must stay valid until on_delivery. */
struct wr_record {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const char *sale_id; /* header "sale-id" */
    int64_t received_ms; /* header "received-ms", unix milliseconds as decimal text */
};

struct wr_kafka;

/* Creates the producer and starts the poll thread. NULL on failure, reason in `err`. */
struct wr_kafka *wr_kafka_new(const struct wr_kafka_options *o, char *err, size_t errlen);

/* Queues a record without blocking. RD_KAFKA_RESP_ERR_NO_ERROR means on_delivery will be
 * called exactly once for it; any other value means it was not queued (and will not be). */
rd_kafka_resp_err_t wr_kafka_send(struct wr_kafka *k, const struct wr_record *r, void *opaque);

/* Asks a broker for the topic's metadata, waiting up to `timeout_ms`, and records whether
 * Kafka is reachable; logs each change. */
void wr_kafka_probe(struct wr_kafka *k, int timeout_ms);
/* The result of the last probe, and no fatal error. Thread-safe. */
bool wr_kafka_up(struct wr_kafka *k);
/* Whether librdkafka reported a fatal error: the producer is unusable, the writer must stop
 * (exit non-zero). Thread-safe. */
bool wr_kafka_failed(struct wr_kafka *k);

/* The producer itself, for fault injection in tests (rd_kafka_test_fatal_error). */
rd_kafka_t *wr_kafka_producer(struct wr_kafka *k);

/* Fails every record still queued or in flight at once (their reports come with
 * RD_KAFKA_RESP_ERR__PURGE_*): after a fatal error nothing more will be delivered. */
void wr_kafka_abandon(struct wr_kafka *k);

/* Waits up to `timeout_ms` for queued records to be delivered (their reports still reach
 * on_delivery), stops the poll thread and destroys the producer. NULL is a no-op. */
void wr_kafka_free(struct wr_kafka *k, int timeout_ms);

#endif
