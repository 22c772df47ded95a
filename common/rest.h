/* rest.h - the sale intake shared by the api and the bridge: `POST /ventas` over libmicrohttpd.
 *
 * The server checks method, path, content type and size, validates the sale (sp_sale_parse_json),
 * admits it against a bounded in-flight count, then hands it to the program's forward callback and
 * SUSPENDS the connection: no thread waits for the downstream. The program answers later, from any
 * thread, with sp_rest_complete(), which resumes the connection; the answer is queued from the
 * daemon's own thread. /healthz, /readyz and /metrics are routed through sp_admin_route.
 *
 * Answers made here: 400 {"error","field"} for a bad sale, 404, 405 (+Allow), 413 over SP_BODY_MAX,
 * 415 unless Content-Type is application/json, 503 + Retry-After when the in-flight bound is
 * reached or the server is stopping. Every 503 answer, ours or the program's, gets Retry-After.
 *
 * Shutdown order (the contract that keeps suspended connections safe), done by sp_rest_shutdown:
 *   sp_rest_quiesce -> sp_rest_drain -> stop the program's forwarder, which must complete every
 *   call it still holds -> sp_rest_drain -> sp_rest_free. sp_rest_stop puts a lame-duck delay
 *   before it (SIGTERM in Kubernetes: readiness drops before the pod stops taking sales). */
#ifndef SP_REST_H
#define SP_REST_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sale.h"

#define SP_REST_PATH "/ventas"
/* Several sales in one request (proto/intake.proto), taken when sp_rest_config.batches is set;
 * each sale is forwarded and answered on its own, the batch's answer holds every answer. */
#define SP_REST_BATCH_PATH "/ventas/lote"
#define SP_REST_BATCH_TYPE "application/x-protobuf"
/* Sales per batch at most; the reply (at most SP_REST_ANSWER_MAX + 8 bytes a sale) stays
 * within SP_BODY_MAX. */
#define SP_REST_BATCH_MAX 60
#define SP_SALE_ID_HEADER "X-Sale-Id"
/* A sale id taken from X-Sale-Id: 1..SP_REST_SALE_ID_MAX of [A-Za-z0-9._-]. */
#define SP_REST_SALE_ID_MAX 64
/* A client's request id, sent back on its answer as it came when it looks like a sale id (else
 * left out): lets a client match answers to requests, e.g. an open-loop load generator timing
 * each sale from when it was due. */
#define SP_REQUEST_ID_HEADER "X-Request-Id"
/* Longest answer body sp_rest_complete keeps; a longer one is replaced by a generic error. */
#define SP_REST_ANSWER_MAX 1024

struct sp_rest;
struct sp_rest_call;

/* Called on a daemon thread for each admitted sale (a batch's sales one by one when there is no
 * forward_batch). `sale` and `sale_id` are valid only during the call: copy what is needed. The
 * callee owns `call` until it passes it to sp_rest_complete(), exactly once (it may do so before
 * returning). */
typedef void sp_rest_forward_fn(const struct sp_sale *sale, const char *sale_id,
                                struct sp_rest_call *call, void *arg);

/* With batches: called once per batch on a daemon thread with its `n` sales that passed the
 * checks (the others were answered 400), in order, instead of forward() once per sale. Same
 * ownership rules: each calls[i] goes to sp_rest_complete() exactly once. */
typedef void sp_rest_forward_batch_fn(size_t n, const struct sp_sale *sales,
                                      const char *const *sale_ids,
                                      struct sp_rest_call *const *calls, void *arg);

struct sp_rest_config {
    const char *bind_addr; /* IPv4 dotted */
    uint16_t port;
    unsigned threads;       /* daemon threads (thread pool size) */
    unsigned max_in_flight; /* admitted sales not yet answered */
    /* Client connections (conn_guard.h): admitted at once, idle keep-alive ones included, and
     * from one address (0: no limit); past either, 503 + Connection: close. */
    unsigned client_connections, client_connections_per_ip;
    unsigned header_timeout_ms; /* request line + headers in; 0: none */
    unsigned body_timeout_ms;   /* body in, from the headers; 0: none */
    unsigned idle_timeout_s;    /* idle connection closed (keep-alive); 0: never */
    unsigned reserved_fds;      /* descriptors the program needs besides client connections */
    int sale_id_from_header;    /* 1: take X-Sale-Id (bridge); 0: always make a new id (api) */
    int batches;                /* 1: also take POST SP_REST_BATCH_PATH (bridge) */
    sp_rest_forward_fn *forward;
    sp_rest_forward_batch_fn *forward_batch; /* NULL: a batch's sales go to forward() */
    void *forward_arg;
};

/* The sp_rest_config fields the intake's options set (SP_INTAKE_OPTIONS in contract.h), as
 * designated initialisers, from a program's option struct `o`. */
#define SP_REST_CONFIG_FROM(o)                                                                     \
    .threads = (unsigned)(o)->threads, .max_in_flight = (unsigned)(o)->max_in_flight,              \
    .client_connections = (unsigned)(o)->client_connections,                                       \
    .client_connections_per_ip = (unsigned)(o)->client_connections_per_ip,                         \
    .header_timeout_ms = (unsigned)(o)->header_timeout_ms,                                         \
    .body_timeout_ms = (unsigned)(o)->body_timeout_ms,                                             \
    .idle_timeout_s = (unsigned)(o)->idle_timeout_s

/* Starts listening. NULL on failure, with the reason logged. Registers the intake metrics, so
 * at most one server per process. */
struct sp_rest *sp_rest_start(const struct sp_rest_config *cfg);

/* Answers an admitted sale with `status` and a JSON `body` (copied). Thread-safe; `call` must
 * not be touched afterwards. */
void sp_rest_complete(struct sp_rest_call *call, unsigned status, const char *body, size_t len);

/* Stops taking sales: from now on every new request, on a new or an open connection, is
 * answered 503 "shutting down" + Retry-After + `Connection: close`, until sp_rest_free closes
 * the listen socket. Admitted sales still get their answers. */
void sp_rest_quiesce(struct sp_rest *rest);
/* Waits until no admitted sale is left or `seconds` pass; returns how many are left. */
unsigned sp_rest_drain(struct sp_rest *rest, double seconds);
unsigned sp_rest_in_flight(const struct sp_rest *rest);
/* The port listened on (useful when started with port 0). */
uint16_t sp_rest_port(const struct sp_rest *rest);
/* Stops the daemon and frees. Every forwarded call must have been completed before. */
void sp_rest_free(struct sp_rest *rest);
/* From now on every answer carries `Connection: close`: a kept-alive client opens a new
 * connection for its next sale, which the Service sends to another pod. */
void sp_rest_lame_duck(struct sp_rest *rest);
/* SIGTERM for an intake (api, bridge): /readyz turns 503 at once (sp_admin_set_stopping); for
 * `delay_s` sales are still taken and answered as before, in lame duck (while the Service's
 * endpoints drop this pod, clients move to others; a second signal ends the delay); then
 * sp_rest_shutdown. */
unsigned sp_rest_stop(struct sp_rest *rest, double delay_s, double grace_s,
                      void (*stop_forwarder)(void *), void *arg);
/* The whole shutdown: quiesce, wait up to `grace_s` for admitted sales to be answered, call
 * `stop_forwarder(arg)` (which must complete every call it still holds and return only then),
 * wait for those answers to go out, free. Returns the number of sales that had to be answered
 * by the forwarder's stop (0 in a clean drain). */
unsigned sp_rest_shutdown(struct sp_rest *rest, double grace_s, void (*stop_forwarder)(void *),
                          void *arg);

/* Downstream failures, counted in sp_downstream_errors_total{kind=...}. */
enum sp_downstream_error {
    SP_DOWNSTREAM_TIMEOUT,     /* no answer before the deadline */
    SP_DOWNSTREAM_UNAVAILABLE, /* not reachable, connection failed */
    SP_DOWNSTREAM_OVERLOADED,  /* it said 503 / RESOURCE_EXHAUSTED */
    SP_DOWNSTREAM_REJECTED,    /* it refused the sale (4xx / INVALID_ARGUMENT) */
    SP_DOWNSTREAM_FAILED,      /* any other failure or an answer we cannot read */
    SP_DOWNSTREAM_KINDS
};
void sp_rest_downstream_error(enum sp_downstream_error kind);

/* Renders {"error":"<msg>"} (msg JSON-escaped) into buf; returns the length. */
size_t sp_rest_error_json(char *buf, size_t cap, const char *msg);

#endif
