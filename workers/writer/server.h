/* server.h - the writer's gRPC server: blackfriday.ProductSaleService/ProcesarVenta, our
 * salespipeline.SaleBatchService/ProcesarLote (proto/intake.proto: several sales in one call,
 * each its own Kafka record and its own answer in the reply, sent once every sale has its
 * delivery report) and grpc.health.v1.Health/Check, on gRPC C core with one completion queue.
 *
 * Threads and ownership:
 * - The CQ thread (ours, one) runs grpc_completion_queue_next. For each new call it validates
 *   the sale and hands it to Kafka (wr_kafka_send, never blocking), or answers at once
 *   (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, health, UNIMPLEMENTED). When a call's final batch
 *   completes it frees the call's slot and requests a new call. Only this thread touches the
 *   slot pool's free list and the in-flight count, so neither needs a lock.
 * - The Kafka poll thread calls wr_server_on_delivery with each delivery report; that starts
 *   the call's final batch (grpc_call_start_batch is thread-safe) and touches nothing else.
 *   A slot is owned by exactly one thread at a time: CQ thread -> (send) poll thread ->
 *   (final batch completion) CQ thread. A ProcesarLote call counts its sales without an
 *   answer (atomic, plus one while the CQ thread hands them to Kafka): whichever thread
 *   takes it to zero sends the reply.
 * - gRPC's internal threads do the I/O. No thread waits for any single call.
 *
 * Bounds: at most `max_in_flight` sales between arrival and answer; one more is answered
 * RESOURCE_EXHAUSTED at once. Call slots come from one pool allocated at start. */
#ifndef WR_SERVER_H
#define WR_SERVER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

struct wr_kafka;

struct wr_server_options {
    const char *address; /* "host:port" to listen on */
    long max_in_flight;
    long max_connection_age_ms;   /* GOAWAY to older connections; 0: none */
    long max_connection_grace_ms; /* then how long their calls in flight may take */
    struct wr_kafka *kafka;       /* created with on_delivery = wr_server_on_delivery */
};

struct wr_server;

/* Listens and starts the CQ thread. NULL on failure, reason in `err`. */
struct wr_server *wr_server_start(const struct wr_server_options *o, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
int wr_server_port(const struct wr_server *s);

/* The Kafka delivery report for a call (`opaque` as given to wr_kafka_send). */
void wr_server_on_delivery(void *opaque, rd_kafka_resp_err_t err);

/* Stops accepting calls and waits for those in flight to be answered. After `grace_seconds`
 * the rest are cancelled. Returns when the CQ thread has ended. */
void wr_server_stop(struct wr_server *s, double grace_seconds);

/* Destroys a stopped server. NULL is a no-op. */
void wr_server_free(struct wr_server *s);

#endif
