/* status.h - what a gRPC caller of the writer is told when a sale is not stored.
 *
 * Pure functions, no state: librdkafka errors become gRPC status codes, and codes get their
 * canonical names (for metrics labels and logs). */
#ifndef WR_STATUS_H
#define WR_STATUS_H

#include <grpc/status.h>
#include <librdkafka/rdkafka.h>

/* The code for a produce or delivery result: OK only for RD_KAFKA_RESP_ERR_NO_ERROR;
 * RESOURCE_EXHAUSTED when the producer queue is full; UNAVAILABLE when Kafka could not be
 * reached or did not confirm in time (the record may or may not be stored: never retry
 * blindly); INVALID_ARGUMENT when Kafka refuses the record itself; INTERNAL otherwise. */
grpc_status_code wr_status_from_kafka(rd_kafka_resp_err_t err);

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN" for a value outside the gRPC range. */
const char *wr_status_name(grpc_status_code code);
/* The Prometheus label for a code, `code="OK"`; a literal. */
const char *wr_status_label(grpc_status_code code);

#define WR_STATUS_CODES 17 /* OK .. UNAUTHENTICATED */

#endif
