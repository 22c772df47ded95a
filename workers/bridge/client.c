/* client.c - the bridge's gRPC client. See client.h. */
#include "client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "intake.pb-c.h"
#include "log.h"
#include "metrics.h"

#define TARGETS_MAX 2048
#define SERVICE_CONFIG "{\"loadBalancingConfig\":[{\"round_robin\":{}}]}"

/* One call to a writer, from its start to its completion: a ProcesarVenta call for one sale
 * (n == 0), or a ProcesarLote call for n sales. */
struct br_call {
    struct sp_rest_call *rest_call; /* ProcesarVenta */
    size_t n;                       /* ProcesarLote: its sales, in order */
    struct sp_rest_call *rest_calls[SP_REST_BATCH_MAX];
    int group;
    gpr_timespec deadline;
    grpc_call *call;
    grpc_metadata sale_id_md;
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *request, *reply;
    grpc_slice batch; /* ProcesarLote: the request, kept (sending empties `request`) */
    grpc_status_code status;
    grpc_slice details;
    char sale_id[SP_REST_SALE_ID_MAX + 1];
    struct br_call *next_free;
};

struct br_client {
    struct br_client_config cfg;
    char target_buf[TARGETS_MAX];
    const char *targets[BR_GROUPS_MAX];
    grpc_channel *channels[BR_GROUPS_MAX];
    int groups;
    _Atomic unsigned next_group; /* round robin over groups */
    /* A group that answered a ProcesarLote call UNIMPLEMENTED (a stock server): one ProcesarVenta
     * call per sale from then on. */
    _Atomic int no_batches[BR_GROUPS_MAX];
    struct sp_metric *batches, *batch_sales;
    grpc_completion_queue *cq;
    pthread_t cq_thread;
    int cq_started, cq_stopped;

    _Atomic int stopping;
    _Atomic unsigned outstanding; /* in br_client_send or in a batch */
    pthread_mutex_t free_lock;    /* guards free_calls */
    struct br_call *free_calls;
};

/* --- targets --- */

int br_split_targets(const char *spec, char *buf, size_t cap, const char **out, int max)
{
    size_t len = strlen(spec);
    int n = 0;
    if (len >= cap)
        return -1;
    memcpy(buf, spec, len + 1);
    for (char *p = buf;;) {
        size_t seg = strcspn(p, ";|");
        char end = p[seg], *s = p, *e = p + seg;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        if (s == e || n == max)
            return -1;
        out[n++] = s;
        if (!end)
            return n;
        p += seg + 1;
    }
}

/* --- call slots: a free list, shared by daemon threads (get) and the CQ thread (put) --- */

static struct br_call *slot_get(struct br_client *c)
{
    pthread_mutex_lock(&c->free_lock);
    struct br_call *k = c->free_calls;
    if (k)
        c->free_calls = k->next_free;
    pthread_mutex_unlock(&c->free_lock);
    return k ? k : malloc(sizeof *k);
}

static void slot_put(struct br_client *c, struct br_call *k)
{
    pthread_mutex_lock(&c->free_lock);
    k->next_free = c->free_calls;
    c->free_calls = k;
    pthread_mutex_unlock(&c->free_lock);
}

/* Releases what gRPC gave the call; the slot itself goes back to the free list. */
static void slot_release(struct br_client *c, struct br_call *k)
{
    if (k->call)
        grpc_call_unref(k->call);
    grpc_metadata_array_destroy(&k->initial_md);
    grpc_metadata_array_destroy(&k->trailing_md);
    grpc_byte_buffer_destroy(k->request);
    grpc_slice_unref(k->batch);
    if (k->reply)
        grpc_byte_buffer_destroy(k->reply);
    grpc_slice_unref(k->details);
    slot_put(c, k);
}

/* --- sending --- */

static void answer_error(struct sp_rest_call *call, unsigned status, const char *msg)
{
    char body[128];
    size_t n = sp_rest_error_json(body, sizeof body, msg);
    sp_rest_complete(call, status, body, n);
}

/* The next group in turn, passing over groups known to be failing while another is not. */
static int pick_group(struct br_client *c)
{
    if (c->groups == 1)
        return 0;
    unsigned first = atomic_fetch_add_explicit(&c->next_group, 1, memory_order_relaxed);
    for (int i = 0; i < c->groups; i++) {
        int g = (int)((first + (unsigned)i) % (unsigned)c->groups);
        if (grpc_channel_check_connectivity_state(c->channels[g], 0) !=
            GRPC_CHANNEL_TRANSIENT_FAILURE)
            return g;
    }
    return (int)(first % (unsigned)c->groups);
}

/* A slot for a new call: cleared, status UNKNOWN until the call ends. NULL when out of
 * memory. */
static struct br_call *call_new(struct br_client *c, int group, gpr_timespec deadline)
{
    struct br_call *k = slot_get(c);
    if (!k)
        return NULL;
    memset(k, 0, sizeof *k);
    k->batch = grpc_empty_slice();
    k->status = GRPC_STATUS_UNKNOWN;
    k->group = group;
    k->deadline = deadline;
    return k;
}

/* Starts k's call to `method` on its group with the request `payload` (the slot takes its
 * reference): one batch with every op, finished on the CQ thread. ProcesarVenta calls carry
 * their sale id as metadata; a batch's ids are in its message. */
static int call_start(struct br_client *c, struct br_call *k, const char *method,
                      grpc_slice payload)
{
    k->request = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    k->call = grpc_channel_create_call(c->channels[k->group], NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                       grpc_slice_from_static_string(method), NULL, k->deadline,
                                       NULL);
    if (!k->call)
        return -1;
    k->sale_id_md.key = grpc_slice_from_static_string(BR_SALE_ID_KEY);
    k->sale_id_md.value = grpc_slice_from_static_string(k->sale_id); /* lives in the slot */
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = k->n ? 0 : 1;
    ops[0].data.send_initial_metadata.metadata = k->n ? NULL : &k->sale_id_md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = k->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &k->reply;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &k->trailing_md;
    ops[5].data.recv_status_on_client.status = &k->status;
    ops[5].data.recv_status_on_client.status_details = &k->details;
    return grpc_call_start_batch(k->call, ops, 6, k, NULL) == GRPC_CALL_OK ? 0 : -1;
}

static gpr_timespec deadline_from_now(const struct br_client *c)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(c->cfg.timeout_ms, GPR_TIMESPAN));
}

/* Counts a call as outstanding unless the client is stopping. The seq_cst increment comes
 * before the `stopping` load; br_client_stop does the reverse, so either we see `stopping` or
 * it waits for this call. */
static int outstanding_enter(struct br_client *c)
{
    atomic_fetch_add(&c->outstanding, 1);
    if (!atomic_load(&c->stopping))
        return 0;
    atomic_fetch_sub(&c->outstanding, 1);
    return -1;
}

/* One ProcesarVenta call for a sale already packed (`pb`), counted as outstanding by the
 * caller; answers the sale itself if the call cannot start. */
static void sale_start(struct br_client *c, int group, gpr_timespec deadline, const uint8_t *pb,
                       size_t len, const char *sale_id, struct sp_rest_call *call)
{
    struct br_call *k = call_new(c, group, deadline);
    if (!k) {
        answer_error(call, 500, "bridge out of memory");
        atomic_fetch_sub(&c->outstanding, 1);
        return;
    }
    k->rest_call = call;
    snprintf(k->sale_id, sizeof k->sale_id, "%s", sale_id);
    if (call_start(c, k, BR_METHOD, grpc_slice_from_copied_buffer((const char *)pb, len)) < 0) {
        sp_rest_downstream_error(SP_DOWNSTREAM_FAILED);
        answer_error(call, 502, "cannot start the gRPC call");
        slot_release(c, k);
        atomic_fetch_sub(&c->outstanding, 1);
    }
}

/* One sale as one ProcesarVenta call to `group`. */
static void sale_send(struct br_client *c, int group, gpr_timespec deadline,
                      const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call)
{
    if (outstanding_enter(c) < 0) {
        answer_error(call, 503, "bridge shutting down");
        return;
    }
    uint8_t pb[SP_SALE_PB_MAX];
    size_t len = sp_sale_pack(sale, pb, sizeof pb);
    if (!len) {
        atomic_fetch_sub(&c->outstanding, 1);
        answer_error(call, 500, "sale does not pack");
        return;
    }
    sale_start(c, group, deadline, pb, len, sale_id, call);
}

void br_client_send(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                    void *arg)
{
    struct br_client *c = arg;
    sale_send(c, pick_group(c), deadline_from_now(c), sale, sale_id, call);
}

void br_client_send_batch(size_t n, const struct sp_sale *sales, const char *const *sale_ids,
                          struct sp_rest_call *const *calls, void *arg)
{
    struct br_client *c = arg;
    uint8_t pb[SP_REST_BATCH_MAX][SP_SALE_PB_MAX];
    int group = pick_group(c);
    gpr_timespec deadline = deadline_from_now(c);
    if (atomic_load_explicit(&c->no_batches[group], memory_order_relaxed)) {
        for (size_t i = 0; i < n; i++) /* the group's share stays the group's */
            sale_send(c, group, deadline, &sales[i], sale_ids[i], calls[i]);
        return;
    }
    if (outstanding_enter(c) < 0) {
        for (size_t i = 0; i < n; i++)
            answer_error(calls[i], 503, "bridge shutting down");
        return;
    }
    Salespipeline__BatchItem items[SP_REST_BATCH_MAX], *item_ptrs[SP_REST_BATCH_MAX];
    Salespipeline__SaleBatch batch = SALESPIPELINE__SALE_BATCH__INIT;
    struct br_call *k = call_new(c, group, deadline);
    if (!k) {
        for (size_t i = 0; i < n; i++)
            answer_error(calls[i], 500, "bridge out of memory");
        atomic_fetch_sub(&c->outstanding, 1);
        return;
    }
    size_t packed = 0; /* a sale that does not pack is answered here and left out */
    for (size_t i = 0; i < n; i++) {
        size_t len = sp_sale_pack(&sales[i], pb[packed], sizeof pb[packed]);
        if (!len) {
            answer_error(calls[i], 500, "sale does not pack");
            continue;
        }
        salespipeline__batch_item__init(&items[packed]);
        items[packed].sale_id = (char *)sale_ids[i];
        items[packed].sale.data = pb[packed];
        items[packed].sale.len = len;
        item_ptrs[packed] = &items[packed];
        k->rest_calls[packed++] = calls[i];
    }
    if (!packed) {
        slot_put(c, k);
        atomic_fetch_sub(&c->outstanding, 1);
        return;
    }
    k->n = packed;
    batch.n_items = packed;
    batch.items = item_ptrs;
    grpc_slice payload = grpc_slice_malloc(salespipeline__sale_batch__get_packed_size(&batch));
    salespipeline__sale_batch__pack(&batch, GRPC_SLICE_START_PTR(payload));
    k->batch = grpc_slice_ref(payload);
    sp_counter_add(c->batches, 1);
    sp_counter_add(c->batch_sales, packed);
    if (call_start(c, k, BR_BATCH_METHOD, payload) < 0) {
        for (size_t i = 0; i < packed; i++) {
            sp_rest_downstream_error(SP_DOWNSTREAM_FAILED);
            answer_error(k->rest_calls[i], 502, "cannot start the gRPC call");
        }
        slot_release(c, k);
        atomic_fetch_sub(&c->outstanding, 1);
    }
}

/* --- the completion-queue thread --- */

/* The whole message a byte buffer holds (empty when there is none). */
static grpc_slice buffer_read(grpc_byte_buffer *bb)
{
    grpc_slice out = grpc_empty_slice();
    grpc_byte_buffer_reader reader;
    if (bb && grpc_byte_buffer_reader_init(&reader, bb)) {
        out = grpc_byte_buffer_reader_readall(&reader);
        grpc_byte_buffer_reader_destroy(&reader);
    }
    return out;
}

/* Answers one sale from its own gRPC code, message and reply. */
static void sale_answer(struct sp_rest_call *call, grpc_status_code code, const char *details,
                        size_t details_len, const uint8_t *reply, size_t reply_len,
                        const char *sale_id)
{
    struct br_answer a;
    br_answer(&a, code, details, details_len, reply, reply_len);
    if (a.error >= 0) {
        sp_rest_downstream_error((enum sp_downstream_error)a.error);
        sp_debug("writer_failed", "sale %s: gRPC status %d", sale_id, (int)code);
    }
    sp_rest_complete(call, a.status, a.body, a.len);
}

/* A stock server has no ProcesarLote: it answered UNIMPLEMENTED without looking at any sale,
 * so the batch's sales go out once each as ProcesarVenta calls, within the batch's deadline,
 * and the group gets no batch again. This is the one answer that proves nothing was stored. */
static void batch_unimplemented(struct br_client *c, struct br_call *k)
{
    if (!atomic_exchange(&c->no_batches[k->group], 1))
        sp_info("writer_no_batches",
                "writer group %s has no ProcesarLote: one ProcesarVenta "
                "call per sale from now on",
                c->targets[k->group]);
    Salespipeline__SaleBatch *b = salespipeline__sale_batch__unpack(
        NULL, GRPC_SLICE_LENGTH(k->batch), GRPC_SLICE_START_PTR(k->batch));
    for (size_t i = 0; i < k->n; i++) {
        if (!b || b->n_items != k->n) { /* our own message: cannot happen */
            sp_rest_downstream_error(SP_DOWNSTREAM_FAILED);
            answer_error(k->rest_calls[i], 502, "bridge cannot re-read its batch");
            continue;
        }
        atomic_fetch_add(&c->outstanding, 1); /* this batch's own count is still held */
        sale_start(c, k->group, k->deadline, b->items[i]->sale.data, b->items[i]->sale.len,
                   b->items[i]->sale_id, k->rest_calls[i]);
    }
    if (b)
        salespipeline__sale_batch__free_unpacked(b, NULL);
}

/* A ProcesarLote call ended: each sale answered from its own result. When the call itself
 * failed (deadline, writer gone, an unreadable reply) every sale of it fails the same way and
 * none is sent again: the writer may have stored any of them. */
static void batch_done(struct br_client *c, struct br_call *k, int ok)
{
    grpc_status_code status = ok ? k->status : GRPC_STATUS_UNKNOWN;
    if (status == GRPC_STATUS_UNIMPLEMENTED) {
        batch_unimplemented(c, k);
        return;
    }
    const char *why = (const char *)GRPC_SLICE_START_PTR(k->details);
    size_t why_len = GRPC_SLICE_LENGTH(k->details);
    Salespipeline__SaleResults *results = NULL;
    if (status == GRPC_STATUS_OK) {
        grpc_slice reply = buffer_read(k->reply);
        results = salespipeline__sale_results__unpack(NULL, GRPC_SLICE_LENGTH(reply),
                                                      GRPC_SLICE_START_PTR(reply));
        grpc_slice_unref(reply);
        if (!results || results->n_results != k->n) {
            sp_warn("writer_bad_reply", "a ProcesarLote reply of %zu results for %zu sales",
                    results ? results->n_results : 0, k->n);
            status = GRPC_STATUS_INTERNAL; /* 502, like an unreadable ProcesarVenta reply */
            why = "unreadable ProcesarLote reply";
            why_len = strlen(why);
        }
    }
    for (size_t i = 0; i < k->n; i++) {
        const Salespipeline__SaleResult *r = status == GRPC_STATUS_OK ? results->results[i] : NULL;
        if (r)
            sale_answer(k->rest_calls[i], (grpc_status_code)r->code, r->details, strlen(r->details),
                        r->reply.data, r->reply.len, "of a batch");
        else
            sale_answer(k->rest_calls[i], status, why, why_len, NULL, 0, "of a batch");
    }
    if (results)
        salespipeline__sale_results__free_unpacked(results, NULL);
}

static void call_done(struct br_client *c, struct br_call *k, int ok)
{
    if (k->n) {
        batch_done(c, k, ok);
    } else {
        grpc_slice reply = ok && k->status == GRPC_STATUS_OK ? buffer_read(k->reply)
                                                             : grpc_empty_slice();
        sale_answer(k->rest_call, ok ? k->status : GRPC_STATUS_UNKNOWN,
                    (const char *)GRPC_SLICE_START_PTR(k->details), GRPC_SLICE_LENGTH(k->details),
                    GRPC_SLICE_START_PTR(reply), GRPC_SLICE_LENGTH(reply), k->sale_id);
        grpc_slice_unref(reply);
    }
    slot_release(c, k);
    atomic_fetch_sub(&c->outstanding, 1);
}

static void *cq_main(void *arg)
{
    struct br_client *c = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        if (ev.type == GRPC_OP_COMPLETE)
            call_done(c, ev.tag, ev.success);
    }
}

/* --- readiness --- */

static const char *state_name(grpc_connectivity_state s)
{
    switch (s) {
    case GRPC_CHANNEL_IDLE:
        return "idle";
    case GRPC_CHANNEL_CONNECTING:
        return "connecting";
    case GRPC_CHANNEL_READY:
        return "ready";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
        return "transient failure";
    default:
        return "shut down";
    }
}

int br_client_ready(void *arg, char *why, size_t cap)
{
    struct br_client *c = arg;
    size_t n = 0;
    int ready = 0;
    why[0] = '\0';
    for (int i = 0; i < c->groups; i++) {
        grpc_connectivity_state s = grpc_channel_check_connectivity_state(c->channels[i], 1);
        ready |= s == GRPC_CHANNEL_READY;
        if (n < cap)
            n += (size_t)snprintf(why + n, cap - n, "%s%s: %s", i ? "; " : "", c->targets[i],
                                  state_name(s));
    }
    return ready;
}

/* --- life cycle --- */

static grpc_channel *channel_new(const char *target)
{
    grpc_arg args[] = {
        {.type = GRPC_ARG_STRING, .key = GRPC_ARG_SERVICE_CONFIG, .value.string = SERVICE_CONFIG},
        /* Transparent retries only: see client.h. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 1},
        /* A writer back after a restart is used within about a second, not after gRPC's
         * default back-off of up to two minutes. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = 250},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 250},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 2000},
    };
    grpc_channel_args channel_args = {.num_args = sizeof args / sizeof args[0], .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    return ch;
}

struct br_client *br_client_start(const struct br_client_config *cfg)
{
    struct br_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    pthread_mutex_init(&c->free_lock, NULL);
    c->batches = sp_counter_new("sp_bridge_writer_batches_total", NULL,
                                "ProcesarLote calls started (one per batch from the api).");
    c->batch_sales = sp_counter_new("sp_bridge_writer_batch_sales_total", NULL,
                                    "Sales in the ProcesarLote calls started; over "
                                    "sp_bridge_writer_batches_total, the mean batch size.");
    c->groups = br_split_targets(cfg->targets, c->target_buf, sizeof c->target_buf, c->targets,
                                 BR_GROUPS_MAX);
    if (c->groups < 1) {
        sp_error("bad_writer_target", "cannot read writer target '%s'", cfg->targets);
        c->groups = 0;
        goto fail;
    }
    for (int i = 0; i < c->groups; i++)
        if (!(c->channels[i] = channel_new(c->targets[i]))) {
            sp_error("channel_failed", "cannot create a channel to '%s'", c->targets[i]);
            goto fail;
        }
    c->cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&c->cq_thread, NULL, cq_main, c) != 0) {
        sp_error("client_thread", "cannot start the completion-queue thread");
        goto fail;
    }
    c->cq_started = 1;
    for (int i = 0; i < c->groups; i++)
        grpc_channel_check_connectivity_state(c->channels[i], 1); /* connect now */
    return c;
fail:
    br_client_free(c);
    return NULL;
}

void br_client_stop(struct br_client *c)
{
    if (!c || !c->cq_started)
        return;
    atomic_store(&c->stopping, 1);
    /* Every call has a deadline, so this ends; the log says so if it takes unusually long. */
    double warn_at = sp_now() + (double)c->cfg.timeout_ms / 1000.0 + 2.0;
    while (atomic_load(&c->outstanding)) {
        if (warn_at && sp_now() > warn_at) {
            sp_warn("stop_slow", "%u call(s) still under way", atomic_load(&c->outstanding));
            warn_at = 0;
        }
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
    }
    grpc_completion_queue_shutdown(c->cq);
    pthread_join(c->cq_thread, NULL);
    c->cq_started = 0;
    c->cq_stopped = 1;
}

void br_client_free(struct br_client *c)
{
    if (!c)
        return;
    br_client_stop(c);
    if (c->cq) {
        if (!c->cq_stopped) { /* start failed before the thread: shut down and drain here */
            grpc_completion_queue_shutdown(c->cq);
            while (
                grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
                GRPC_QUEUE_SHUTDOWN)
                ;
        }
        grpc_completion_queue_destroy(c->cq);
    }
    for (int i = 0; i < c->groups; i++)
        if (c->channels[i])
            grpc_channel_destroy(c->channels[i]);
    for (struct br_call *k = c->free_calls, *next; k; k = next) {
        next = k->next_free;
        free(k);
    }
    pthread_mutex_destroy(&c->free_lock);
    free(c);
}
