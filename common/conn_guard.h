/* conn_guard.h - limits and deadlines for the client connections of the REST intake (rest.c).
 *
 * libmicrohttpd's own limits do not give a client a clear answer: past
 * MHD_OPTION_CONNECTION_LIMIT it takes the listening socket out of its poll set, so new clients
 * wait unanswered in the kernel's accept queue; MHD_OPTION_PER_IP_CONNECTION_LIMIT closes a new
 * connection at accept without a word; and MHD_OPTION_CONNECTION_TIMEOUT is an idle timeout,
 * which a client sending a byte a second never reaches. The guard adds, per connection:
 *
 *  - admission, decided at accept: a connection beyond `max_connections` in all, or beyond
 *    `max_per_addr` from its IPv4 address, is EXCESS; its first request is answered 503 +
 *    Retry-After + Connection: close as soon as its headers are in. Hard bounds behind that:
 *    from 2 x max_per_addr connections of one address on, a new one is closed at accept (no
 *    answer); past sp_guard_hard_limit() in all, MHD stops accepting (clients wait in the
 *    kernel's queue).
 *  - deadlines: a request's line and headers must be in within `header_timeout_ms` of the
 *    connection's start (on a kept-alive connection: of the previous answer plus the idle
 *    timeout; none if that is 0), its body within `body_timeout_ms` of its headers. A sweeper
 *    thread shuts down a connection past its deadline (shutdown(2): MHD then reads end of file
 *    and closes it), so the client sees the connection closed without an answer. A connection
 *    whose sale was forwarded is never swept: its answer is owed (MHD does not time out a
 *    suspended connection either).
 *
 * The guard's state per connection is MHD's socket context; everything is under one mutex,
 * taken three times per request. */
#ifndef SP_CONN_GUARD_H
#define SP_CONN_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>

struct sp_guard_config {
    unsigned max_connections;   /* admitted at once; past it, EXCESS */
    unsigned max_per_addr;      /* admitted from one address; 0: no per-address limit */
    unsigned header_timeout_ms; /* 0: none */
    unsigned body_timeout_ms;   /* 0: none */
    unsigned idle_timeout_s;    /* MHD's idle timeout (0: none), in a kept-alive header deadline */
};

enum sp_guard_verdict {
    SP_GUARD_OK,
    SP_GUARD_EXCESS_TOTAL, /* over max_connections: answer 503, close */
    SP_GUARD_EXCESS_ADDR,  /* over max_per_addr: answer 503, close */
    SP_GUARD_DROPPED,      /* past its deadline, being closed: answer nothing */
};

struct sp_guard;

/* Starts the sweeper (when a timeout is set) and registers the connection metrics (once per
 * process). NULL on failure, logged. */
struct sp_guard *sp_guard_new(const struct sp_guard_config *cfg);
/* Stops the sweeper and frees. Call after MHD_stop_daemon (which closes every connection). */
void sp_guard_free(struct sp_guard *g);

/* MHD's connection limit to configure: max_connections plus room for excess connections to be
 * answered 503. */
unsigned sp_guard_hard_limit(const struct sp_guard_config *cfg);

/* MHD_start_daemon's accept policy and MHD_OPTION_NOTIFY_CONNECTION, with the guard as cls. */
enum MHD_Result sp_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void sp_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);

/* From the request handler, on the connection's daemon thread:
 * the request's headers are in: admitted or not; the body's deadline starts. */
enum sp_guard_verdict sp_guard_headers(struct MHD_Connection *conn);
/* True once the body is past its deadline (checked as its bytes arrive). */
bool sp_guard_body_late(struct MHD_Connection *conn);
/* The sale is about to be forwarded: no deadline applies until the request is done. False if
 * the sweeper already dropped the connection (then do not forward). */
bool sp_guard_forward(struct MHD_Connection *conn);
/* From the request-completed callback: the next request's header deadline starts. */
void sp_guard_request_done(struct MHD_Connection *conn);

#endif
