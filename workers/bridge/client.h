/* client.h - the bridge's gRPC client to the writers (gRPC C core, one completion queue).
 *
 * Targets: `--writer-target` is one gRPC target, or several writer GROUPS separated by ';' or
 * '|'. Each group gets one channel with the round_robin policy, so a group's target may name
 * several endpoints: "ipv4:127.0.0.1:50051,127.0.0.1:50052" locally, or
 * "dns:///writer-b-headless.ns.svc:50051" in Kubernetes (a headless Service: every pod is an
 * address, re-resolved as pods come and go). Calls are spread round-robin over the groups,
 * skipping a group whose channel is in TRANSIENT_FAILURE while another is not.
 *
 * Batches: the sales of one api batch (POST /ventas/lote) go to one group as one
 * salespipeline.SaleBatchService/ProcesarLote call (proto/intake.proto), whose reply holds each
 * sale's own code, message and ProductSaleResponse, so each sale is answered exactly as its own
 * ProcesarVenta call would have been. A single POST /ventas is one ProcesarVenta call. A group
 * that answers ProcesarLote with UNIMPLEMENTED (a stock ProductSaleService server) has stored
 * nothing of that batch: its sales go out once each as ProcesarVenta calls within the batch's
 * deadline, and that group gets one ProcesarVenta call per sale from then on (until restart).
 *
 * Threads: daemon threads call br_client_send() / br_client_send_batch(), which pack the sales
 * (protobuf-c), create the call with its deadline and start one batch of ops with every op;
 * gRPC's own threads do the I/O; one completion-queue thread takes each finished call, answers
 * its sales with sp_rest_complete() and recycles the call slot. No thread waits for a call.
 * Slots come from a free list and are bounded by the intake's in-flight bound.
 *
 * Never twice: no retryPolicy is configured and we never call again on our own (the one
 * exception, a batch answered UNIMPLEMENTED, was refused before any sale of it was read). Retries stay
 * enabled (the default) only for gRPC's transparent retry, which re-sends a call only when it
 * never left the client or the server refused the stream before its application saw it, i.e.
 * when the writer cannot have stored the sale. Disabling retries would turn those safe cases
 * into 503s during writer restarts without making anything safer. */
#ifndef BR_CLIENT_H
#define BR_CLIENT_H

#include <stddef.h>

#include "rest.h"

#define BR_METHOD "/blackfriday.ProductSaleService/ProcesarVenta"
#define BR_BATCH_METHOD "/salespipeline.SaleBatchService/ProcesarLote"
#define BR_SALE_ID_KEY "x-sale-id"
#define BR_GROUPS_MAX 16

struct br_client_config {
    const char *targets; /* one target, or groups separated by ';' or '|' */
    long timeout_ms;     /* the deadline of every call */
};

struct br_client;

/* Creates the channels and the completion-queue thread. NULL on failure, reason logged. */
struct br_client *br_client_start(const struct br_client_config *cfg);

/* An sp_rest_forward_fn; `arg` is the client. */
void br_client_send(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                    void *arg);

/* An sp_rest_forward_batch_fn: the sales as one ProcesarLote call to one group (the next in
 * turn), each answered from its own result; to a group that answered UNIMPLEMENTED, one
 * ProcesarVenta call per sale. `arg` is the client. */
void br_client_send_batch(size_t n, const struct sp_sale *sales, const char *const *sale_ids,
                          struct sp_rest_call *const *calls, void *arg);

/* An sp_ready_fn: ready when at least one group's channel is READY (asking a channel that is
 * not to connect). */
int br_client_ready(void *arg, char *why, size_t cap);

/* Refuses new sales (503), waits for the calls under way (each ends by its deadline), then
 * stops the completion-queue thread. */
void br_client_stop(struct br_client *c);
/* Frees a stopped client. NULL is a no-op. */
void br_client_free(struct br_client *c);

/* Splits `spec` into at most `max` group targets at ';' or '|', trimming blanks, into `buf`
 * (capacity `cap`); fills `out` with pointers into buf. Returns the count, or -1 when a group
 * is empty, there are too many, or buf is too small. */
int br_split_targets(const char *spec, char *buf, size_t cap, const char **out, int max);

#endif
