/* gate.h - the api's product catalog check, between the intake and the bridge client.
 *
 * With a catalog artifact configured, a sale whose producto_id is not in the catalog, or whose
 * categoria is not the catalog's for that product, is answered 400 {"error","field"} and never
 * forwarded; the others go to api_client_send(). Without one, every sale goes on as before.
 *
 * The catalog is pulled from the registry (common/catalog.h, common/oci.h) by one thread: at
 * start, retried with back-off (0.5 s doubling to 30 s) while the registry cannot be reached,
 * and /readyz says not ready until it is loaded; then again every `refresh_s` seconds and on
 * api_gate_refresh() (SIGHUP). A pull whose layer digest differs replaces the catalog at once;
 * a failed refresh keeps the one in use. Daemon threads look up under a read lock; a swap takes
 * the write lock only for the pointer. */
#ifndef API_GATE_H
#define API_GATE_H

#include <stddef.h>

#include "client.h"

struct api_gate_config {
    const char *artifact;  /* NULL or "": no catalog, nothing checked */
    const char *auth_file; /* docker config.json, or NULL */
    const char *ca_file;   /* the registry's CA, or NULL for the system's */
    long refresh_s;        /* 0: only on api_gate_refresh() */
    long timeout_ms;       /* per registry request */
};

struct api_gate;

/* Starts the catalog thread when there is an artifact. NULL on failure, with the reason logged.
 * `client` is where accepted sales go. */
struct api_gate *api_gate_start(const struct api_gate_config *cfg, struct api_client *client);

/* An sp_rest_forward_fn; `arg` is the gate. */
void api_gate_forward(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                      void *arg);

/* An sp_ready_fn: the catalog is loaded (when one is configured) and the bridge is ready. */
int api_gate_ready(void *arg, char *why, size_t cap);

/* Pulls the catalog again now (SIGHUP). */
void api_gate_refresh(struct api_gate *g);

/* Stops the catalog thread and frees. NULL is a no-op. */
void api_gate_free(struct api_gate *g);

#endif
