/* loop.h - the consumer's one working thread: a Kafka consumer-group member that polls a
 * batch, applies it to Valkey through the store, and repeats.
 *
 * Resuming: on assignment each partition starts at the next offset kept in Valkey (none yet:
 * the beginning), never at Kafka's committed offset; offsets are committed to Kafka only so
 * that lag tools see progress. A batch that Valkey refuses is retried as is, with backoff,
 * until it applies (the script is idempotent); nothing is skipped. On revoke the batch in
 * hand is applied once if Valkey answers, else its revoked records are dropped: the next
 * owner reads them again from Valkey's offsets. Every callback (rebalance, errors) runs on
 * this thread, inside rd_kafka_consumer_poll(). A fatal Kafka error stops the loop with
 * `failed` set (exit status 1). */
#ifndef CONSUMER_LOOP_H
#define CONSUMER_LOOP_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "kafka_client.h"
#include "store.h"

struct loop_config {
    const char *brokers;
    const char *group;
    const char *topic;
    const char *assignment_strategy; /* librdkafka partition.assignment.strategy */
    long session_timeout_ms;
    long batch_size;
    long batch_wait_ms; /* how long a started batch waits to fill up */
    long prefetch_kb;   /* librdkafka queued.max.messages.kbytes */
    long fetch_wait_ms; /* fetch.wait.max.ms (fetch.min.bytes is 64 KiB) */
    long wait_replicas; /* 0: no WAIT after a batch */
    long wait_timeout_ms;
    double stop_grace_s;               /* on SIGTERM, how long to retry the batch in hand */
    struct sp_kafka_security security; /* TLS / SASL to the brokers */
};

struct loop {
    struct loop_config cfg;
    struct sp_kafka kafka; /* kafka.rk is the consumer */
    struct store store;
    struct batch batch;
    int64_t *next;       /* per partition: next offset believed stored in Valkey; -1 unknown */
    uint8_t *assigned;   /* per partition: ours now */
    int32_t *verify_ids; /* per partition: scratch of verify_offsets() */
    int64_t *verify_stored;
    size_t nparts;        /* length of next/assigned/verify_* */
    int32_t *parts;       /* scratch: the batch's partitions ... */
    int64_t *last;        /* ... and their last offsets */
    atomic_int stop;      /* set by the main thread on SIGTERM */
    atomic_int ready;     /* Valkey answered the last call */
    atomic_int finished;  /* loop_run returned */
    atomic_int failed;    /* it stopped on a fatal error (exit status 1) */
    double stop_deadline; /* when the batch in hand is abandoned after a stop; 0 before */
    double next_verify;   /* when to compare Valkey's offsets with ours again */
    double next_lag;      /* when to compute the lag again */
    struct sp_ratelog decode_log, valkey_log;
};

/* Creates the Kafka consumer and subscribes; Valkey is connected lazily. 0, or -1 with the
 * reason in `err`. */
int loop_init(struct loop *l, const struct loop_config *cfg, const struct store_config *scfg,
              char *err, size_t errlen);
/* Runs until l->stop is set; then finishes the batch in hand and closes the consumer. */
void loop_run(struct loop *l);
void loop_free(struct loop *l);

/* Registers the consumer's metrics; once, before loop_init. */
void loop_metrics_init(void);

#endif
