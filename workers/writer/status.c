/* status.c - librdkafka errors as gRPC codes. See status.h. */
#include "status.h"

/* In gRPC's numbering, OK = 0 .. UNAUTHENTICATED = 16. (clang-format 14 does not settle on
 * one layout of this table: formatting it twice gives two.) */
/* clang-format off */
#define WR_CODES(X)                                                                          \
    X(OK) X(CANCELLED) X(UNKNOWN) X(INVALID_ARGUMENT) X(DEADLINE_EXCEEDED) X(NOT_FOUND)      \
    X(ALREADY_EXISTS) X(PERMISSION_DENIED) X(RESOURCE_EXHAUSTED) X(FAILED_PRECONDITION)      \
    X(ABORTED) X(OUT_OF_RANGE) X(UNIMPLEMENTED) X(INTERNAL) X(UNAVAILABLE) X(DATA_LOSS)      \
    X(UNAUTHENTICATED)
/* clang-format on */
#define AS_NAME(c) #c,
#define AS_LABEL(c) "code=\"" #c "\"",
static const char *const status_names[WR_STATUS_CODES] = {WR_CODES(AS_NAME)};
static const char *const status_labels[WR_STATUS_CODES] = {WR_CODES(AS_LABEL)};

static int code_index(grpc_status_code code)
{
    return (int)code >= 0 && (int)code < WR_STATUS_CODES ? (int)code : GRPC_STATUS_UNKNOWN;
}

const char *wr_status_name(grpc_status_code code)
{
    return status_names[code_index(code)];
}

const char *wr_status_label(grpc_status_code code)
{
    return status_labels[code_index(code)];
}

grpc_status_code wr_status_from_kafka(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return GRPC_STATUS_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return GRPC_STATUS_INVALID_ARGUMENT;
    /* Kafka unreachable, slow, or between leaders: the caller may try again later. */
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
        return GRPC_STATUS_UNAVAILABLE;
    default:
        return GRPC_STATUS_INTERNAL;
    }
}
