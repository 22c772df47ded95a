/* client.h - the api's keep-alive HTTP/1.1 client to the bridge, on one libcurl multi thread.
 *
 * Threads and queues:
 * - Daemon threads call api_client_send(): the sale, as canonical JSON, goes into a bounded ring
 *   (capacity = the intake's max in flight, so it cannot overflow while the intake's bound holds;
 *   a full ring is answered 503 anyway) and the curl thread is woken (curl_multi_wakeup) when the
 *   ring was empty or now holds a full batch.
 * - The curl thread moves sales from the ring into transfers, at most `max_connections` at once,
 *   so that every transfer finds a kept-alive connection (curl's pool is capped at that size:
 *   never a new connection per sale). Only the first `eager_requests` of them leave with
 *   whatever is queued; beyond those a transfer leaves only with a full batch, or when the
 *   oldest sale has waited `batch_wait_ms`. At moderate load the sales then gather behind the
 *   requests under way instead of each taking a connection of its own: fewer, larger batches,
 *   which is most of the CPU per sale down the chain. Easy handles come from a free list and
 *   are reused with their options set once. It answers each sale with sp_rest_complete(), and
 *   every second asks the bridge's /readyz (cached for api_client_ready).
 * - A sale waits at most `timeout_ms` from api_client_send() to its answer: a transfer gets the
 *   time left as CURLOPT_TIMEOUT_MS (-> 504), and a sale still in the ring when its time is up
 *   was never sent and is answered 503.
 *
 * Never twice: nothing here retries. libcurl itself re-sends a request on a fresh connection
 * when a reused one died before any answer byte arrived; the body is given through a read
 * callback whose rewind always fails, so such a re-send happens only when no byte of the body
 * had been written (the bridge cannot have acted on it) and otherwise ends in an error (503). */
#ifndef API_CLIENT_H
#define API_CLIENT_H

#include <stddef.h>

#include "rest.h"

struct api_client_config {
    const char *bridge_url; /* http://host:port/ventas; /readyz is asked on the same host */
    long timeout_ms;
    unsigned max_queued;      /* ring capacity: the intake's max in flight */
    unsigned max_connections; /* keep-alive connections to the bridge = transfers at once */
    unsigned eager_requests;  /* transfers at once that may leave with less than a full batch */
    unsigned batch_wait_ms;   /* beyond those, a sale that waited this long leaves anyway */
    unsigned batch_max;       /* sales per request at most (POST /ventas/lote); 1: one sale
                                 * per POST /ventas, JSON */
};

struct api_client;

/* Starts the curl thread. NULL on failure, with the reason logged. */
struct api_client *api_client_start(const struct api_client_config *cfg);

/* An sp_rest_forward_fn; `arg` is the client. */
void api_client_send(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                     void *arg);

/* An sp_ready_fn: ready while the bridge's last /readyz answer was 200. */
int api_client_ready(void *arg, char *why, size_t cap);

/* Stops taking sales (they get 503), answers those still queued 503, lets transfers under way
 * finish (each is bounded by its timeout) and joins the curl thread. */
void api_client_stop(struct api_client *c);
/* Frees a stopped client. NULL is a no-op. */
void api_client_free(struct api_client *c);

#endif
