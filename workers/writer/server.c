/* server.c - gRPC server on one completion queue; sales to Kafka. See server.h. */
#include "server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blackfriday.pb-c.h"
#include "health.pb-c.h"
#include "intake.pb-c.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "rest.h"
#include "sale.h"
#include "status.h"

#define WR_SALE_REQUESTS 128 /* ProcesarVenta calls requested from gRPC ahead of arrival */
#define WR_SPARE_SLOTS 256   /* slots for answers given at once (refusals, health) */
#define WR_SALE_ID_MAX 64
#define WR_SERVICE "blackfriday.ProductSaleService"
#define WR_BATCH_REQUESTS 32           /* ProcesarLote calls requested ahead */
#define WR_BATCH_MAX SP_REST_BATCH_MAX /* sales per ProcesarLote call: an api batch */

enum call_kind { CALL_HEALTH, CALL_OTHER, CALL_SALE, CALL_BATCH, CALL_KINDS };

/* Calls of each kind kept requested; health and unknown methods first, they are cheap. */
static const int request_target[CALL_KINDS] = {[CALL_HEALTH] = 2,
                                               [CALL_OTHER] = 1,
                                               [CALL_SALE] = WR_SALE_REQUESTS,
                                               [CALL_BATCH] = WR_BATCH_REQUESTS};

/* What a delivery report's opaque points to: a call (ProcesarVenta) or one sale of a batch. */
enum delivery_kind { DELIVERY_CALL, DELIVERY_ITEM };

/* A checked sale, ready for Kafka: what a ProcesarVenta call and each sale of a ProcesarLote
 * call hold until its delivery report. */
struct wr_sale {
    struct sp_sale sale;           /* the Kafka key (sale.producto_id) lives here */
    uint8_t value[SP_SALE_PB_MAX]; /* the Kafka value */
    size_t value_len;
    char id[WR_SALE_ID_MAX + 1];
};

/* One sale of a ProcesarLote call: produced as its own record, answered in the reply. */
struct wr_item {
    enum delivery_kind delivery; /* first member: DELIVERY_ITEM */
    struct wr_call *call;
    grpc_status_code code; /* its answer, once known */
    char details[160];
    struct wr_sale sale;
};

struct wr_batch {
    size_t n, produced;     /* produced: counted in srv->in_flight (CQ thread) */
    _Atomic size_t pending; /* sales without an answer, +1 while the CQ thread walks them */
    struct wr_item items[];
};

struct wr_call {
    enum delivery_kind delivery; /* first member: DELIVERY_CALL */
    struct wr_server *srv;
    enum call_kind kind;
    bool finishing; /* the next event is the final batch, not the arrival */
    bool produced;  /* counted in srv->in_flight */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;    /* kept allocated across calls: reset by count = 0 */
    grpc_call_details details; /* CALL_OTHER only */
    grpc_byte_buffer *payload; /* the request message */
    grpc_byte_buffer *reply;   /* the response message, if any */
    grpc_slice status_text;
    grpc_status_code code; /* the status sent */
    int cancelled;         /* from GRPC_OP_RECV_CLOSE_ON_SERVER */
    double started;
    struct wr_sale sale;    /* CALL_SALE */
    struct wr_batch *batch; /* CALL_BATCH: its sales, once taken */
    size_t batch_sales;     /* CALL_BATCH: sales the call carried (1 if unreadable) */
    struct wr_call *next_free;
};

struct wr_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    void *methods[CALL_KINDS]; /* registered methods; CALL_OTHER has none */
    struct wr_kafka *kafka;
    int port;
    pthread_t cq_thread;
    bool started, cq_running;
    _Atomic bool stopping;
    char shutdown_tag; /* its address tags the shutdown notification */
    /* CQ thread only, from here on. */
    struct wr_call *pool;
    size_t pool_len, pool_used; /* slots allocated, slots ever handed out */
    struct wr_call *free_list;
    int requested[CALL_KINDS];
    long in_flight, max_in_flight;
    struct sp_metric *requests[WR_STATUS_CODES];
    struct sp_metric *latency, *in_flight_gauge;
    struct sp_metric *batches, *batch_sales;
    uint8_t message[SP_BODY_MAX]; /* the request being decoded */
};

/* Responses that never change, packed once at start. */
static uint8_t reply_stored[32], reply_serving[8], reply_not_serving[8];
static grpc_slice slice_stored, slice_serving, slice_not_serving;

static void replies_init(void)
{
    Blackfriday__ProductSaleResponse ok = BLACKFRIDAY__PRODUCT_SALE_RESPONSE__INIT;
    ok.estado = "almacenada";
    size_t n = blackfriday__product_sale_response__pack(&ok, reply_stored);
    slice_stored = grpc_slice_from_static_buffer(reply_stored, n);

    Grpc__Health__V1__HealthCheckResponse h = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    h.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    n = grpc__health__v1__health_check_response__pack(&h, reply_serving);
    slice_serving = grpc_slice_from_static_buffer(reply_serving, n);
    h.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    n = grpc__health__v1__health_check_response__pack(&h, reply_not_serving);
    slice_not_serving = grpc_slice_from_static_buffer(reply_not_serving, n);
}

/* --- the slot pool (CQ thread) --- */

/* A free slot: a recycled one first (warm in cache), else one never used. Slots are set up
 * on first use so that the pool's untouched pages cost no memory. NULL when all are taken. */
static struct wr_call *slot_take(struct wr_server *s)
{
    struct wr_call *c = s->free_list;
    if (c) {
        s->free_list = c->next_free;
        return c;
    }
    if (s->pool_used == s->pool_len)
        return NULL;
    c = &s->pool[s->pool_used++];
    c->delivery = DELIVERY_CALL;
    c->srv = s;
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    c->status_text = grpc_empty_slice();
    return c;
}

/* Returns a slot to the pool, dropping what the finished call held. */
static void slot_put(struct wr_server *s, struct wr_call *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    grpc_slice_unref(c->status_text);
    if (c->kind == CALL_OTHER) {
        grpc_call_details_destroy(&c->details);
        grpc_call_details_init(&c->details);
    }
    free(c->batch);
    c->batch = NULL;
    c->call = NULL;
    c->payload = c->reply = NULL;
    c->status_text = grpc_empty_slice();
    c->md.count = 0;
    c->finishing = c->produced = false;
    c->batch_sales = 0;
    c->cancelled = 0;
    c->next_free = s->free_list;
    s->free_list = c;
}

static int pool_new(struct wr_server *s, size_t n)
{
    if (!(s->pool = calloc(n, sizeof *s->pool)))
        return -1;
    s->pool_len = n;
    return 0;
}

static void pool_free(struct wr_server *s)
{
    for (size_t i = 0; i < s->pool_used; i++) {
        grpc_metadata_array_destroy(&s->pool[i].md);
        grpc_call_details_destroy(&s->pool[i].details);
    }
    free(s->pool);
}

/* Keeps request_target calls of each kind requested, while slots and the server last. */
static void arm(struct wr_server *s)
{
    for (int kind = 0; kind < CALL_KINDS; kind++) {
        while (s->requested[kind] < request_target[kind] && !atomic_load(&s->stopping)) {
            struct wr_call *c = slot_take(s);
            if (!c)
                return;
            c->kind = (enum call_kind)kind;
            grpc_call_error e = kind == CALL_OTHER
                                    ? grpc_server_request_call(s->server, &c->call, &c->details,
                                                               &c->md, s->cq, s->cq, c)
                                    : grpc_server_request_registered_call(
                                          s->server, s->methods[kind], &c->call, &c->deadline,
                                          &c->md, &c->payload, s->cq, s->cq, c);
            if (e != GRPC_CALL_OK) {
                sp_error("grpc_request_failed", "cannot request a call: error %d", (int)e);
                slot_put(s, c);
                return;
            }
            s->requested[kind]++;
        }
    }
}

/* --- answering --- */

/* Starts the final batch: headers, the reply if any, the status; ends the call. `text` is
 * the status message, owned by the call from here on. Any thread. */
static void call_finish(struct wr_call *c, grpc_status_code code, grpc_slice text,
                        const grpc_slice *reply)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    c->code = code;
    c->status_text = text;
    c->finishing = true;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (reply) {
        c->reply = grpc_raw_byte_buffer_create((grpc_slice *)reply, 1);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->reply;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &c->status_text;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        /* Only misuse of the API gets here; the slot could never be freed. */
        sp_error("grpc_batch_failed", "grpc_call_start_batch: error %d", (int)e);
        abort();
    }
}

static void call_refuse(struct wr_call *c, grpc_status_code code, const char *text)
{
    call_finish(c, code, grpc_slice_from_copied_string(text), NULL);
}

static void batch_item_done(struct wr_call *c);

static void item_delivered(struct wr_item *it, rd_kafka_resp_err_t err)
{
    it->code = err ? wr_status_from_kafka(err) : GRPC_STATUS_OK;
    if (err)
        snprintf(it->details, sizeof it->details, "kafka did not store the sale: %s",
                 rd_kafka_err2str(err));
    batch_item_done(it->call);
}

void wr_server_on_delivery(void *opaque, rd_kafka_resp_err_t err)
{
    if (*(const enum delivery_kind *)opaque == DELIVERY_ITEM) {
        item_delivered(opaque, err);
        return;
    }
    struct wr_call *c = opaque;
    if (!err) {
        call_finish(c, GRPC_STATUS_OK, grpc_empty_slice(), &slice_stored);
        return;
    }
    char text[160];
    snprintf(text, sizeof text, "kafka did not store the sale: %s", rd_kafka_err2str(err));
    call_refuse(c, wr_status_from_kafka(err), text);
}

/* --- a new call (CQ thread) --- */

/* Copies a message of at most `cap` bytes; -1 if larger or unreadable. */
static int payload_read(grpc_byte_buffer *bb, uint8_t *buf, size_t cap, size_t *len)
{
    grpc_byte_buffer_reader r;
    grpc_slice slice;
    size_t n = 0;
    int rc = 0;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return -1;
    while (grpc_byte_buffer_reader_next(&r, &slice)) {
        size_t part = GRPC_SLICE_LENGTH(slice);
        if (n + part > cap)
            rc = -1;
        else
            memcpy(buf + n, GRPC_SLICE_START_PTR(slice), part);
        n += part;
        grpc_slice_unref(slice);
    }
    grpc_byte_buffer_reader_destroy(&r);
    *len = n;
    return rc;
}

/* The x-sale-id header's value, or NULL when the call has none. */
static const grpc_slice *sale_id_header(const grpc_metadata_array *md)
{
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, "x-sale-id") == 0)
            return &md->metadata[i].value;
    return NULL;
}

/* Decodes, checks and re-packs one sale. `id` is the caller's sale id (`id_field` names where
 * it came from), NULL when none was given: one is made. 0, or -1 with the reason (naming the
 * field) in `why`. One check for ProcesarVenta and ProcesarLote: a sale is refused alike. */
static int sale_check(struct wr_sale *w, const uint8_t *data, size_t len, const uint8_t *id,
                      size_t id_len, const char *id_field, char *why, size_t cap)
{
    struct sp_sale_error e;
    if (sp_sale_unpack(data, len, &w->sale) < 0) {
        snprintf(why, cap, "malformed ProductSaleRequest");
        return -1;
    }
    if (sp_sale_validate(&w->sale, &e) < 0) {
        snprintf(why, cap, "%s %s", e.field, e.reason);
        return -1;
    }
    bool id_ok = !id || (id_len > 0 && id_len <= WR_SALE_ID_MAX);
    for (size_t i = 0; id && id_ok && i < id_len; i++)
        id_ok = id[i] >= 0x21 && id[i] <= 0x7e;
    if (!id_ok) {
        snprintf(why, cap, "%s must be 1-%d printable characters", id_field, WR_SALE_ID_MAX);
        return -1;
    }
    if (id) {
        memcpy(w->id, id, id_len);
        w->id[id_len] = '\0';
    } else {
        sp_sale_id_new(w->id);
    }
    /* Re-packed from the checked fields: the record holds exactly the proto's fields. */
    if (!(w->value_len = sp_sale_pack(&w->sale, w->value, sizeof w->value))) {
        snprintf(why, cap, "sale does not encode");
        return -1;
    }
    return 0;
}

/* The ProcesarVenta call's sale, checked; on refusal writes the reason to `why`. */
static int sale_read(struct wr_server *s, struct wr_call *c, char *why, size_t cap)
{
    size_t len = 0;
    if (!c->payload) {
        snprintf(why, cap, "missing ProductSaleRequest message");
        return -1;
    }
    int rc = payload_read(c->payload, s->message, sizeof s->message, &len);
    grpc_byte_buffer_destroy(c->payload); /* not needed while the sale waits for Kafka */
    c->payload = NULL;
    if (rc < 0) {
        snprintf(why, cap, "malformed ProductSaleRequest");
        return -1;
    }
    const grpc_slice *id = sale_id_header(&c->md);
    const uint8_t *id_bytes = id ? GRPC_SLICE_START_PTR(*id) : NULL;
    if (id && !id_bytes)
        id_bytes = (const uint8_t *)""; /* there but empty: refused, not taken for none */
    return sale_check(&c->sale, s->message, len, id_bytes, id ? GRPC_SLICE_LENGTH(*id) : 0,
                      "x-sale-id", why, cap);
}

/* The record of a checked sale, received at `received_ms` (a batch's sales share the call's). */
static struct wr_record sale_record(const struct wr_sale *w, int64_t received_ms)
{
    return (struct wr_record){.key = w->sale.producto_id,
                              .key_len = strlen(w->sale.producto_id),
                              .value = w->value,
                              .value_len = w->value_len,
                              .sale_id = w->id,
                              .received_ms = received_ms};
}

static bool deadline_passed(const struct wr_call *c)
{
    return c->kind != CALL_OTHER && gpr_time_cmp(gpr_now(c->deadline.clock_type), c->deadline) >= 0;
}

static void sale_arrived(struct wr_server *s, struct wr_call *c)
{
    char why[160];
    c->started = sp_now();
    if (sale_read(s, c, why, sizeof why) < 0) {
        call_refuse(c, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    if (deadline_passed(c)) { /* queued too long: the caller has given up, don't store it */
        call_finish(c, GRPC_STATUS_DEADLINE_EXCEEDED,
                    grpc_slice_from_static_string("deadline passed before the sale was read"),
                    NULL);
        return;
    }
    if (s->in_flight >= s->max_in_flight) {
        call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    grpc_slice_from_static_string("writer busy: too many sales in flight"), NULL);
        return;
    }
    struct wr_record r = sale_record(&c->sale, sp_wall_ms());
    /* Counted before sending: from then on the poll thread owns the slot. */
    c->produced = true;
    s->in_flight++;
    rd_kafka_resp_err_t err = wr_kafka_send(s->kafka, &r, c);
    if (err) {
        c->produced = false;
        s->in_flight--;
        snprintf(why, sizeof why, "kafka did not take the sale: %s", rd_kafka_err2str(err));
        call_refuse(c, wr_status_from_kafka(err), why);
        return;
    }
    sp_gauge_set(s->in_flight_gauge, s->in_flight);
}

/* --- ProcesarLote: a batch of sales, each its own record and its own answer --- */

/* Every sale of the batch has its answer: the reply, from whichever thread gave the last. The
 * answers were written before their pending decrement (acq_rel), which this follows. */
static void batch_reply(struct wr_call *c)
{
    struct wr_batch *b = c->batch;
    Salespipeline__SaleResult results[WR_BATCH_MAX], *ptrs[WR_BATCH_MAX];
    for (size_t i = 0; i < b->n; i++) {
        salespipeline__sale_result__init(&results[i]);
        results[i].code = (uint32_t)b->items[i].code;
        results[i].details = b->items[i].details;
        if (b->items[i].code == GRPC_STATUS_OK) {
            results[i].reply.data = (uint8_t *)GRPC_SLICE_START_PTR(slice_stored);
            results[i].reply.len = GRPC_SLICE_LENGTH(slice_stored);
        }
        ptrs[i] = &results[i];
    }
    Salespipeline__SaleResults reply = SALESPIPELINE__SALE_RESULTS__INIT;
    reply.n_results = b->n;
    reply.results = ptrs;
    grpc_slice out = grpc_slice_malloc(salespipeline__sale_results__get_packed_size(&reply));
    salespipeline__sale_results__pack(&reply, GRPC_SLICE_START_PTR(out));
    call_finish(c, GRPC_STATUS_OK, grpc_empty_slice(), &out);
    grpc_slice_unref(out); /* the reply's byte buffer holds its own reference */
}

static void batch_item_done(struct wr_call *c)
{
    if (atomic_fetch_sub(&c->batch->pending, 1) == 1)
        batch_reply(c);
}

/* Checks one sale of a batch: 0, or -1 with its answer set. */
static int item_check(struct wr_item *it, const Salespipeline__BatchItem *in)
{
    /* proto3: an empty sale_id is none given. */
    const uint8_t *id = in->sale_id[0] ? (const uint8_t *)in->sale_id : NULL;
    if (sale_check(&it->sale, in->sale.data, in->sale.len, id, id ? strlen(in->sale_id) : 0,
                   "sale_id", it->details, sizeof it->details) < 0) {
        it->code = GRPC_STATUS_INVALID_ARGUMENT;
        return -1;
    }
    it->code = GRPC_STATUS_OK;
    return 0;
}

static void batch_arrived(struct wr_server *s, struct wr_call *c)
{
    size_t len = 0;
    c->started = sp_now();
    Salespipeline__SaleBatch *in = NULL;
    if (c->payload && payload_read(c->payload, s->message, sizeof s->message, &len) == 0)
        in = salespipeline__sale_batch__unpack(NULL, len, s->message);
    if (c->payload) {
        grpc_byte_buffer_destroy(c->payload);
        c->payload = NULL;
    }
    c->batch_sales = in && in->n_items ? in->n_items : 1;
    if (!in || in->n_items == 0 || in->n_items > WR_BATCH_MAX) {
        if (in)
            salespipeline__sale_batch__free_unpacked(in, NULL);
        char why[64];
        snprintf(why, sizeof why, "a SaleBatch of 1-%d sales", WR_BATCH_MAX);
        call_refuse(c, GRPC_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    size_t n = in->n_items;
    /* Refused whole, like n ProcesarVenta calls would each be. */
    bool late = deadline_passed(c);
    const char *refused = late ? "deadline passed before the sales were read"
                          : s->in_flight + (long)n > s->max_in_flight
                              ? "writer busy: too many sales in flight"
                          : !(c->batch = calloc(1,
                                                sizeof *c->batch + n * sizeof c->batch->items[0]))
                              ? "writer out of memory"
                              : NULL;
    if (refused) {
        salespipeline__sale_batch__free_unpacked(in, NULL);
        call_finish(c, late ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_RESOURCE_EXHAUSTED,
                    grpc_slice_from_static_string(refused), NULL);
        return;
    }
    sp_counter_add(s->batches, 1);
    sp_counter_add(s->batch_sales, n);
    struct wr_batch *b = c->batch;
    b->n = n;
    atomic_init(&b->pending, n + 1);
    int64_t received_ms = sp_wall_ms();
    for (size_t i = 0; i < n; i++) {
        struct wr_item *it = &b->items[i];
        it->delivery = DELIVERY_ITEM;
        it->call = c;
        if (item_check(it, in->items[i]) < 0) {
            batch_item_done(c);
            continue;
        }
        struct wr_record r = sale_record(&it->sale, received_ms);
        /* Counted before sending: from then on the poll thread may answer it. */
        b->produced++;
        s->in_flight++;
        rd_kafka_resp_err_t err = wr_kafka_send(s->kafka, &r, it);
        if (err) {
            b->produced--;
            s->in_flight--;
            it->code = wr_status_from_kafka(err);
            snprintf(it->details, sizeof it->details, "kafka did not take the sale: %s",
                     rd_kafka_err2str(err));
            batch_item_done(c);
        }
    }
    salespipeline__sale_batch__free_unpacked(in, NULL);
    sp_gauge_set(s->in_flight_gauge, s->in_flight);
    batch_item_done(c); /* the walk's own count */
}

static void health_arrived(struct wr_server *s, struct wr_call *c)
{
    size_t len = 0;
    Grpc__Health__V1__HealthCheckRequest *req = NULL;
    if (c->payload && payload_read(c->payload, s->message, sizeof s->message, &len) == 0)
        req = grpc__health__v1__health_check_request__unpack(NULL, len, s->message);
    if (!req) {
        call_refuse(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    bool known = !strcmp(req->service, "") || !strcmp(req->service, WR_SERVICE);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    if (!known)
        call_refuse(c, GRPC_STATUS_NOT_FOUND, "unknown service");
    else
        call_finish(c, GRPC_STATUS_OK, grpc_empty_slice(),
                    wr_kafka_up(s->kafka) ? &slice_serving : &slice_not_serving);
}

/* The call's sales counted in the server's in_flight. */
static long sales_produced(const struct wr_call *c)
{
    if (c->kind == CALL_SALE)
        return c->produced;
    return c->kind == CALL_BATCH && c->batch ? (long)c->batch->produced : 0;
}

/* Counts one sale's answer: `code` as given, unless the call itself did not end well. */
static void count_answer(struct wr_server *s, const struct wr_call *c, grpc_status_code code,
                         bool ok)
{
    if (!ok || c->cancelled)
        code = deadline_passed(c) ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_CANCELLED;
    struct sp_metric *counter = s->requests[code];
    sp_counter_add(counter ? counter : s->requests[GRPC_STATUS_UNKNOWN], 1);
}

/* The final batch of a call completed: account for it and free its slot. The request
 * counter moves last, so that a scrape showing it also shows the rest. */
static void call_done(struct wr_server *s, struct wr_call *c, bool ok)
{
    long produced = sales_produced(c);
    if (produced) {
        s->in_flight -= produced;
        sp_gauge_set(s->in_flight_gauge, s->in_flight);
    }
    if (c->kind == CALL_SALE || c->kind == CALL_BATCH)
        sp_histogram_observe(s->latency, sp_now() - c->started);
    if (c->kind == CALL_SALE)
        count_answer(s, c, c->code, ok);
    /* A batch is counted per sale: by the answer each got, or by the call's code when it was
     * refused whole. */
    for (size_t i = 0; c->kind == CALL_BATCH && i < c->batch_sales; i++)
        count_answer(s, c, c->batch ? c->batch->items[i].code : c->code, ok);
    slot_put(s, c);
    arm(s);
}

static void call_event(struct wr_server *s, struct wr_call *c, bool ok)
{
    if (c->finishing) {
        call_done(s, c, ok);
        return;
    }
    s->requested[c->kind]--;
    if (!ok) { /* a requested call cancelled by shutdown */
        slot_put(s, c);
        arm(s);
        return;
    }
    arm(s);
    switch (c->kind) {
    case CALL_SALE:
        sale_arrived(s, c);
        break;
    case CALL_BATCH:
        batch_arrived(s, c);
        break;
    case CALL_HEALTH:
        health_arrived(s, c);
        break;
    default:
        call_finish(c, GRPC_STATUS_UNIMPLEMENTED,
                    grpc_slice_from_static_string("method not implemented"), NULL);
        break;
    }
}

/* Runs until the queue is shut down, which happens once the server's shutdown completed. */
static void cq_loop(struct wr_server *s)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &s->shutdown_tag)
            grpc_completion_queue_shutdown(s->cq);
        else
            call_event(s, ev.tag, ev.success != 0);
    }
}

static void *cq_main(void *arg)
{
    cq_loop(arg);
    return NULL;
}

/* --- life cycle --- */

/* The codes a ProcesarVenta call can end with; any other is counted as UNKNOWN. */
static const grpc_status_code counted_codes[] = {GRPC_STATUS_OK,
                                                 GRPC_STATUS_INVALID_ARGUMENT,
                                                 GRPC_STATUS_RESOURCE_EXHAUSTED,
                                                 GRPC_STATUS_UNAVAILABLE,
                                                 GRPC_STATUS_DEADLINE_EXCEEDED,
                                                 GRPC_STATUS_CANCELLED,
                                                 GRPC_STATUS_INTERNAL,
                                                 GRPC_STATUS_UNKNOWN};

static void metrics_init(struct wr_server *s)
{
    for (size_t i = 0; i < sizeof counted_codes / sizeof counted_codes[0]; i++)
        s->requests[counted_codes[i]] = sp_counter_new(
            "sp_writer_requests_total", wr_status_label(counted_codes[i]),
            "Sales answered (a ProcesarVenta call, or one sale of a "
            "ProcesarLote call), by gRPC status code.");
    s->latency = sp_histogram_new("sp_writer_request_duration_seconds", NULL,
                                  "ProcesarVenta and ProcesarLote calls: time from arrival to "
                                  "answer.");
    s->batches = sp_counter_new("sp_writer_batches_total", NULL,
                                "ProcesarLote calls taken (not refused whole).");
    s->batch_sales = sp_counter_new("sp_writer_batch_sales_total", NULL,
                                    "Sales in the ProcesarLote calls taken; over "
                                    "sp_writer_batches_total, the mean batch size.");
    s->in_flight_gauge = sp_gauge_new("sp_writer_in_flight", NULL,
                                      "Sales handed to Kafka and not yet answered.");
}

static int server_listen(struct wr_server *s, const struct wr_server_options *o, char *err,
                         size_t errlen)
{
    const char *address = o->address;
    grpc_arg args[] = {
        /* A client keeps one HTTP/2 connection per writer pod and resolves the headless
         * Service again only when one goes away: an aged connection is closed (GOAWAY, calls
         * in flight finish within the grace) so that pods added since get calls too. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONNECTION_AGE_MS,
         .value.integer = o->max_connection_age_ms > 0 ? (int)o->max_connection_age_ms : INT_MAX},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
         .value.integer = (int)o->max_connection_grace_ms},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = SP_BODY_MAX},
        /* Without this a second writer on the same port would share it silently. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        /* Clients (the bridge) may keep idle connections alive with pings. */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = 10000},
    };
    grpc_channel_args channel_args = {.num_args = sizeof args / sizeof args[0], .args = args};
    s->server = grpc_server_create(&channel_args, NULL);
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    s->methods[CALL_SALE] = grpc_server_register_method(
        s->server, "/" WR_SERVICE "/ProcesarVenta", NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
        0);
    s->methods[CALL_BATCH] = grpc_server_register_method(
        s->server, "/salespipeline.SaleBatchService/ProcesarLote", NULL,
        GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    s->methods[CALL_HEALTH] = grpc_server_register_method(
        s->server, "/grpc.health.v1.Health/Check", NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
        0);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    s->port = grpc_server_add_http2_port(s->server, address, creds);
    grpc_server_credentials_release(creds);
    if (!s->methods[CALL_SALE] || !s->methods[CALL_BATCH] || !s->methods[CALL_HEALTH] ||
        s->port <= 0) {
        snprintf(err, errlen, "cannot listen for gRPC on %s", address);
        return -1;
    }
    return 0;
}

struct wr_server *wr_server_start(const struct wr_server_options *o, char *err, size_t errlen)
{
    struct wr_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->kafka = o->kafka;
    s->max_in_flight = o->max_in_flight;
    replies_init();
    metrics_init(s);
    if (pool_new(s, (size_t)o->max_in_flight + WR_SALE_REQUESTS + WR_BATCH_REQUESTS +
                        WR_SPARE_SLOTS + 3) < 0) {
        snprintf(err, errlen, "out of memory for %ld call slots", o->max_in_flight);
        goto fail;
    }
    if (server_listen(s, o, err, errlen) < 0)
        goto fail;
    grpc_server_start(s->server);
    s->started = true;
    arm(s);
    if (pthread_create(&s->cq_thread, NULL, cq_main, s) != 0) {
        snprintf(err, errlen, "cannot start the completion queue thread");
        goto fail;
    }
    s->cq_running = true;
    return s;
fail:
    wr_server_free(s);
    return NULL;
}

int wr_server_port(const struct wr_server *s)
{
    return s->port;
}

void wr_server_stop(struct wr_server *s, double grace_seconds)
{
    atomic_store(&s->stopping, true);
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    if (!s->cq_running)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)grace_seconds;
    if (pthread_timedjoin_np(s->cq_thread, NULL, &until) != 0) {
        sp_warn("grpc_cancel_calls", "calls still open after %.0fs: cancelling them",
                grace_seconds);
        grpc_server_cancel_all_calls(s->server);
        pthread_join(s->cq_thread, NULL);
    }
    s->cq_running = false;
}

void wr_server_free(struct wr_server *s)
{
    if (!s)
        return;
    if (s->cq_running)
        wr_server_stop(s, 0);
    if (s->started && !atomic_load(&s->stopping)) {
        /* Started but the CQ thread never ran: shut down and drain on this thread. */
        atomic_store(&s->stopping, true);
        grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
        grpc_server_cancel_all_calls(s->server);
        cq_loop(s);
    } else if (s->cq && !s->started) {
        grpc_completion_queue_shutdown(s->cq);
        while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
    }
    if (s->server)
        grpc_server_destroy(s->server);
    if (s->cq)
        grpc_completion_queue_destroy(s->cq);
    pool_free(s);
    free(s);
}
