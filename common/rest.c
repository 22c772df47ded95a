/* rest.c - the sale intake. See rest.h.
 *
 * Suspend/resume, and why it is race-free here:
 * - A sale is suspended BEFORE it is handed to forward(), so the completer's
 *   MHD_resume_connection() can never come before MHD_suspend_connection(). (MHD takes a suspend
 *   that follows a resume it has not processed yet as "cancel the resume", which would leave the
 *   connection neither suspended nor answered.)
 * - forward() may complete at once, on the daemon thread: the resume is then only recorded, and
 *   acted on by this same thread after the handler returns.
 * - The completer writes the answer into the call, publishes it with a release store and then
 *   resumes; the handler reads it after an acquire load. After MHD_resume_connection() the
 *   completer never touches the call again, since the daemon may free it at once.
 * - While a connection is suspended MHD neither polls its socket nor times it out, so a client
 *   that hangs up is noticed only after the resume: sending fails and MHD calls the completed
 *   callback, which frees the call and drops the in-flight count. A call is thus never freed
 *   while a completer may still hold it. If MHD ever reported a forwarded, unanswered call as
 *   completed (only possible if the daemon were stopped with calls outstanding, which the
 *   shutdown contract rules out), the call is leaked rather than freed under the completer.
 */
#include "rest.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "conn_guard.h"
#include "httpd.h"
#include "intake.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"

#define REST_CONN_MEMORY (8 * 1024)         /* MHD's per-connection pool: headers and read buffer */
#define REST_DISCARD_MAX (16 * SP_BODY_MAX) /* past this, an oversized body closes the connection */
#define REST_FREE_CALLS_MAX 1024            /* calls kept for reuse */
/* Bodies over SP_REST_ANSWER_MAX get a buffer of SP_BODY_MAX; this many at once at most (16 MiB),
 * so that memory stays bounded whatever the number of connections. A sale is ~100 bytes. */
#define REST_BIG_BODIES_MAX 256u
#define REST_RESERVED_FDS 128u /* descriptors kept for everything but clients */

enum call_state { CALL_READING, CALL_TOO_BIG, CALL_BUSY, CALL_FORWARDED, CALL_ANSWERED };

struct sp_rest_call {
    struct sp_rest *rest;
    struct MHD_Connection *conn;
    _Atomic int state;           /* enum call_state */
    unsigned admitted;           /* sales counted in rest->in_flight */
    int batch;                   /* a POST SP_REST_BATCH_PATH */
    struct sp_rest_call *parent; /* a batch's sale: its batch (no connection of its own) */
    struct sp_rest_call **items; /* a batch: its sales, in order */
    size_t n_items;
    _Atomic size_t pending; /* a batch: sales not answered yet, +1 while forwarding */
    uint8_t *answer_heap;   /* a batch's answer (longer than buf) */
    double started;         /* sp_now() at the headers */
    size_t len;             /* body bytes received (also past the limit) */
    char *big;              /* body that outgrew buf: SP_BODY_MAX bytes */
    unsigned status;        /* the answer, once CALL_ANSWERED */
    size_t answer_len;
    char sale_id[SP_REST_SALE_ID_MAX + 1];
    char buf[SP_REST_ANSWER_MAX]; /* the body while reading; the answer once forwarded */
    struct sp_rest_call *next_free;
};

struct sp_rest {
    struct sp_rest_config cfg;
    struct MHD_Daemon *daemon;
    struct sp_guard *guard;
    _Atomic unsigned in_flight;
    _Atomic unsigned big_bodies; /* calls holding a `big` buffer */
    _Atomic int stopping;
    _Atomic int closing;       /* lame duck: every answer closes its connection */
    pthread_mutex_t free_lock; /* guards the free list */
    struct sp_rest_call *free_calls;
    unsigned free_count;
};

/* --- metrics --- */

static const struct {
    unsigned code;
    const char *label;
} status_labels[] = {
    {200, "code=\"200\""}, {202, "code=\"202\""}, {400, "code=\"400\""}, {404, "code=\"404\""},
    {405, "code=\"405\""}, {413, "code=\"413\""}, {415, "code=\"415\""}, {500, "code=\"500\""},
    {502, "code=\"502\""}, {503, "code=\"503\""}, {504, "code=\"504\""}, {0, "code=\"other\""},
};
#define STATUS_LABELS (sizeof status_labels / sizeof status_labels[0])

static const char *const downstream_labels[SP_DOWNSTREAM_KINDS] = {
    "kind=\"timeout\"", "kind=\"unavailable\"", "kind=\"overloaded\"", "kind=\"rejected\"",
    "kind=\"failed\""};

static struct sp_metric *m_requests[STATUS_LABELS];
static struct sp_metric *m_latency;
static struct sp_metric *m_downstream[SP_DOWNSTREAM_KINDS];

static double in_flight_value(void *arg)
{
    return (double)sp_rest_in_flight(arg);
}

static void metrics_register(struct sp_rest *r)
{
    for (size_t i = 0; i < STATUS_LABELS; i++)
        m_requests[i] = sp_counter_new("sp_http_requests_total", status_labels[i].label,
                                       "Sale requests answered, by HTTP status.");
    m_latency = sp_histogram_new("sp_http_request_duration_seconds", NULL,
                                 "Time from a sale's headers to its answer being queued.");
    sp_gauge_fn_new("sp_http_in_flight", NULL, "Sales admitted and not yet answered.",
                    in_flight_value, r);
    for (int k = 0; k < SP_DOWNSTREAM_KINDS; k++)
        m_downstream[k] = sp_counter_new("sp_downstream_errors_total", downstream_labels[k],
                                         "Sales the downstream failed, by kind.");
}

static void count_status(unsigned status)
{
    size_t i = 0;
    while (status_labels[i].code && status_labels[i].code != status)
        i++;
    if (m_requests[i])
        sp_counter_add(m_requests[i], 1);
}

void sp_rest_downstream_error(enum sp_downstream_error kind)
{
    if (kind < SP_DOWNSTREAM_KINDS && m_downstream[kind])
        sp_counter_add(m_downstream[kind], 1);
}

/* --- calls: a small free list, so a sale costs no malloc in the steady state --- */

static struct sp_rest_call *call_new(struct sp_rest *r, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&r->free_lock);
    struct sp_rest_call *c = r->free_calls;
    if (c) {
        r->free_calls = c->next_free;
        r->free_count--;
    }
    pthread_mutex_unlock(&r->free_lock);
    if (!c && !(c = malloc(sizeof *c)))
        return NULL;
    c->rest = r;
    c->conn = conn;
    atomic_init(&c->state, CALL_READING);
    c->admitted = 0;
    c->batch = 0;
    c->parent = NULL;
    c->items = NULL;
    c->n_items = 0;
    atomic_init(&c->pending, 0);
    c->answer_heap = NULL;
    c->started = sp_now();
    c->len = 0;
    c->big = NULL;
    c->status = 0;
    c->answer_len = 0;
    c->sale_id[0] = '\0';
    return c;
}

static void big_free(struct sp_rest *r, struct sp_rest_call *c)
{
    if (c->big) {
        free(c->big);
        c->big = NULL;
        atomic_fetch_sub(&r->big_bodies, 1);
    }
}

static void call_free(struct sp_rest *r, struct sp_rest_call *c)
{
    big_free(r, c);
    free(c->answer_heap);
    free(c->items); /* its sales were freed when the batch was answered */
    pthread_mutex_lock(&r->free_lock);
    if (r->free_count < REST_FREE_CALLS_MAX) {
        c->next_free = r->free_calls;
        r->free_calls = c;
        r->free_count++;
        c = NULL;
    }
    pthread_mutex_unlock(&r->free_lock);
    free(c);
}

/* --- answers --- */

size_t sp_rest_error_json(char *buf, size_t cap, const char *msg)
{
    if (cap < 16)
        return 0;
    size_t n = (size_t)snprintf(buf, cap, "{\"error\":\"");
    n = sp_json_escape(buf, n, cap - 3, msg);
    memcpy(buf + n, "\"}", 3);
    return n + 2;
}

/* Also the shape of an X-Request-Id sent back: nothing a header could be split with. */
static int sale_id_valid(const char *id)
{
    size_t len = strlen(id);
    return len >= 1 && len <= SP_REST_SALE_ID_MAX &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* Queues `body` (copied unless it lives in the call, which outlives the response's use of it:
 * MHD is done sending before it reports the request completed). */
static enum MHD_Result reply_closing(struct sp_rest *r, struct MHD_Connection *conn,
                                     struct sp_rest_call *c, unsigned status, const char *body,
                                     size_t len, int close_conn)
{
    int in_call = c && (body == c->buf || body == (const char *)c->answer_heap);
    int batch_answer = c && c->answer_heap && body == (const char *)c->answer_heap;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)body, in_call ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            batch_answer ? SP_REST_BATCH_TYPE : "application/json");
    const char *request_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         SP_REQUEST_ID_HEADER);
    if (request_id && sale_id_valid(request_id))
        MHD_add_response_header(resp, SP_REQUEST_ID_HEADER, request_id);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
    if (close_conn || atomic_load_explicit(&r->stopping, memory_order_relaxed) ||
        atomic_load_explicit(&r->closing, memory_order_relaxed))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    if (!batch_answer) /* a batch's sales were counted one by one */
        count_status(status);
    if (c)
        sp_histogram_observe(m_latency, sp_now() - c->started);
    return ret;
}

static enum MHD_Result reply(struct sp_rest *r, struct MHD_Connection *conn, struct sp_rest_call *c,
                             unsigned status, const char *body, size_t len)
{
    return reply_closing(r, conn, c, status, body, len, 0);
}

static enum MHD_Result reply_error(struct sp_rest *r, struct MHD_Connection *conn,
                                   struct sp_rest_call *c, unsigned status, const char *msg)
{
    char body[256];
    size_t n = sp_rest_error_json(body, sizeof body, msg);
    return reply(r, conn, c, status, body, n);
}

/* A connection over the connection limits: 503, and the connection ends with the answer. */
static enum MHD_Result reply_excess(struct sp_rest *r, struct MHD_Connection *conn,
                                    enum sp_guard_verdict v)
{
    char body[256];
    size_t n = sp_rest_error_json(body, sizeof body,
                                  v == SP_GUARD_EXCESS_ADDR
                                      ? "too many connections from this address"
                                      : "too many connections");
    return reply_closing(r, conn, NULL, MHD_HTTP_SERVICE_UNAVAILABLE, body, n, 1);
}

static void batch_item_done(struct sp_rest_call *batch);

void sp_rest_complete(struct sp_rest_call *c, unsigned status, const char *body, size_t len)
{
    if (len > sizeof c->buf) {
        status = status >= 200 && status < 300 ? 502 : status;
        len = sp_rest_error_json(c->buf, sizeof c->buf, "downstream answer too long");
    } else {
        memcpy(c->buf, body, len);
    }
    c->status = status;
    c->answer_len = len;
    if (c->parent) {
        batch_item_done(c->parent); /* last touch of `c`: the batch frees it */
        return;
    }
    atomic_store_explicit(&c->state, CALL_ANSWERED, memory_order_release);
    /* Last touch of `c`: from here on the daemon may answer and free it. */
    MHD_resume_connection(c->conn);
}

/* --- batches: one request, its sales forwarded and answered one by one --- */

/* Every sale of the batch has its answer: one SaleBatchReply with all of them, in order. The
 * sales' answers were written before their pending decrement (acq_rel), which this follows. */
static void batch_answer(struct sp_rest_call *b)
{
    struct sp_rest *r = b->rest;
    Salespipeline__BatchResult results[SP_REST_BATCH_MAX], *ptrs[SP_REST_BATCH_MAX];
    for (size_t i = 0; i < b->n_items; i++) {
        const struct sp_rest_call *k = b->items[i];
        salespipeline__batch_result__init(&results[i]);
        results[i].status = k->status;
        results[i].body.data = (uint8_t *)k->buf;
        results[i].body.len = k->answer_len;
        ptrs[i] = &results[i];
    }
    Salespipeline__SaleBatchReply reply = SALESPIPELINE__SALE_BATCH_REPLY__INIT;
    reply.n_results = b->n_items;
    reply.results = ptrs;
    size_t len = salespipeline__sale_batch_reply__get_packed_size(&reply);
    if ((b->answer_heap = malloc(len ? len : 1))) {
        b->answer_len = salespipeline__sale_batch_reply__pack(&reply, b->answer_heap);
        b->status = MHD_HTTP_OK;
        for (size_t i = 0; i < b->n_items; i++) /* reply_closing counts the 500 otherwise */
            count_status(b->items[i]->status);
    } else {
        b->answer_len = sp_rest_error_json(b->buf, sizeof b->buf, "out of memory");
        b->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    for (size_t i = 0; i < b->n_items; i++)
        call_free(r, b->items[i]);
    b->n_items = 0;
    atomic_store_explicit(&b->state, CALL_ANSWERED, memory_order_release);
    MHD_resume_connection(b->conn); /* last touch, as in sp_rest_complete */
}

static void batch_item_done(struct sp_rest_call *b)
{
    if (atomic_fetch_sub(&b->pending, 1) == 1)
        batch_answer(b);
}

static void answer_item_error(struct sp_rest_call *k, const char *body)
{
    sp_rest_complete(k, MHD_HTTP_BAD_REQUEST, body, strlen(body));
}

/* --- request handling --- */

/* `want` ("application/json"), any case, optionally followed by parameters such as a charset. */
static int has_type(const char *type, const char *want)
{
    size_t n = strlen(want);
    if (!type)
        return 0;
    type += strspn(type, " \t");
    if (strncasecmp(type, want, n) != 0)
        return 0;
    type += n;
    type += strspn(type, " \t");
    return *type == '\0' || *type == ';';
}

static int too_big_declared(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    char *end;
    unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
    return cl && end != cl && n > SP_BODY_MAX;
}

/* First call for a request: everything decided from the request line and the headers. */
static enum MHD_Result on_headers(struct sp_rest *r, struct MHD_Connection *conn, const char *url,
                                  const char *method, void **state)
{
    enum MHD_Result ret;
    if (sp_admin_route(conn, method, url, &ret))
        return ret;
    int batch = r->cfg.batches && strcmp(url, SP_REST_BATCH_PATH) == 0;
    if (!batch && strcmp(url, SP_REST_PATH) != 0)
        return reply_error(r, conn, NULL, MHD_HTTP_NOT_FOUND, "not found");
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return reply_error(r, conn, NULL, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (atomic_load(&r->stopping))
        return reply_error(r, conn, NULL, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
    enum sp_guard_verdict v = sp_guard_headers(conn);
    if (v == SP_GUARD_DROPPED)
        return MHD_NO;
    if (v != SP_GUARD_OK)
        return reply_excess(r, conn, v);
    if (!has_type(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                  batch ? SP_REST_BATCH_TYPE : "application/json"))
        return reply_error(r, conn, NULL, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                           batch ? "content type must be " SP_REST_BATCH_TYPE
                                 : "content type must be application/json");
    if (too_big_declared(conn))
        return reply_error(r, conn, NULL, MHD_HTTP_CONTENT_TOO_LARGE, "body over 65536 bytes");
    const char *id = r->cfg.sale_id_from_header && !batch
                         ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, SP_SALE_ID_HEADER)
                         : NULL;
    if (id && !*id)
        id = NULL; /* an empty X-Sale-Id counts as none */
    if (id && !sale_id_valid(id)) {
        static const char bad_id[] = "{\"error\":\"X-Sale-Id must be 1-64 of [A-Za-z0-9._-]\","
                                     "\"field\":\"X-Sale-Id\"}";
        return reply(r, conn, NULL, MHD_HTTP_BAD_REQUEST, bad_id, sizeof bad_id - 1);
    }
    struct sp_rest_call *c = call_new(r, conn);
    if (!c)
        return reply_error(r, conn, NULL, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if (id)
        memcpy(c->sale_id, id, strlen(id) + 1);
    c->batch = batch;
    *state = c;
    return MHD_YES;
}

/* A piece of the body. Past SP_BODY_MAX the rest is read and dropped (MHD cannot answer in the
 * middle of an upload), and far past it the connection is closed. */
static enum MHD_Result on_upload(struct sp_rest *r, struct sp_rest_call *c, const char *data,
                                 size_t n)
{
    if (sp_guard_body_late(c->conn))
        return MHD_NO; /* a trickled body: the connection is closed */
    size_t total = c->len + n;
    if (atomic_load_explicit(&c->state, memory_order_relaxed) == CALL_READING) {
        if (total > SP_BODY_MAX) {
            atomic_store_explicit(&c->state, CALL_TOO_BIG, memory_order_relaxed);
            big_free(r, c);
        } else if (total > sizeof c->buf && !c->big) {
            if (atomic_fetch_add(&r->big_bodies, 1) >= REST_BIG_BODIES_MAX) {
                atomic_fetch_sub(&r->big_bodies, 1);
                atomic_store_explicit(&c->state, CALL_BUSY, memory_order_relaxed);
            } else if (!(c->big = malloc(SP_BODY_MAX))) {
                atomic_fetch_sub(&r->big_bodies, 1);
                return MHD_NO;
            } else {
                memcpy(c->big, c->buf, c->len);
            }
        }
        if (total <= SP_BODY_MAX &&
            atomic_load_explicit(&c->state, memory_order_relaxed) == CALL_READING)
            memcpy((c->big ? c->big : c->buf) + c->len, data, n);
    }
    c->len = total;
    return total > REST_DISCARD_MAX ? MHD_NO : MHD_YES;
}

/* Counts the sale in flight and returns NULL, or refuses it and returns why. The increment and the
 * `stopping` load are seq_cst, like sp_rest_quiesce's store and sp_rest_drain's load, so either
 * this sees `stopping` or a drain sees this sale: none is forwarded after a drain found 0. */
static const char *admit(struct sp_rest *r, unsigned sales)
{
    unsigned n = atomic_fetch_add(&r->in_flight, sales);
    const char *refused = atomic_load(&r->stopping)          ? "shutting down"
                          : n + sales > r->cfg.max_in_flight ? "too many sales in flight"
                                                             : NULL;
    if (refused)
        atomic_fetch_sub(&r->in_flight, sales);
    return refused;
}

/* The whole body is in: validate, admit, suspend, forward. */
static enum MHD_Result on_body(struct sp_rest *r, struct sp_rest_call *c)
{
    struct sp_sale sale;
    struct sp_sale_error err;
    int bad = sp_sale_parse_json(c->big ? c->big : c->buf, c->len, &sale, &err);
    big_free(r, c);
    if (bad) {
        char body[256];
        size_t n = sp_sale_error_json(&err, body, sizeof body);
        return reply(r, c->conn, c, MHD_HTTP_BAD_REQUEST, body, n);
    }
    const char *refused = admit(r, 1);
    if (refused)
        return reply_error(r, c->conn, c, MHD_HTTP_SERVICE_UNAVAILABLE, refused);
    if (!sp_guard_forward(c->conn)) {
        atomic_fetch_sub(&r->in_flight, 1); /* cut off for slowness meanwhile: not forwarded */
        return MHD_NO;
    }
    c->admitted = 1;
    if (!c->sale_id[0])
        sp_sale_id_new(c->sale_id);
    atomic_store_explicit(&c->state, CALL_FORWARDED, memory_order_relaxed);
    MHD_suspend_connection(c->conn); /* before forward(): see the comment at the top */
    r->cfg.forward(&sale, c->sale_id, c, r->cfg.forward_arg);
    return MHD_YES;
}

/* Checks one sale of a batch like POST /ventas would: 0 with the sale in `sale` and its id in
 * k->sale_id, or -1 after answering it 400. */
static int batch_item_check(struct sp_rest_call *k, const Salespipeline__BatchItem *it,
                            struct sp_sale *sale)
{
    static const char bad_id[] = "{\"error\":\"sale_id must be 1-64 of [A-Za-z0-9._-]\","
                                 "\"field\":\"sale_id\"}";
    static const char bad_sale[] = "{\"error\":\"malformed ProductSaleRequest\",\"field\":null}";
    struct sp_sale_error err;
    if (it->sale_id[0] && !sale_id_valid(it->sale_id)) {
        answer_item_error(k, bad_id);
        return -1;
    }
    if (sp_sale_unpack(it->sale.data, it->sale.len, sale) < 0) {
        answer_item_error(k, bad_sale);
        return -1;
    }
    if (sp_sale_validate(sale, &err) < 0) {
        char body[256];
        size_t n = sp_sale_error_json(&err, body, sizeof body);
        sp_rest_complete(k, MHD_HTTP_BAD_REQUEST, body, n);
        return -1;
    }
    if (it->sale_id[0])
        snprintf(k->sale_id, sizeof k->sale_id, "%s", it->sale_id);
    else
        sp_sale_id_new(k->sale_id);
    return 0;
}

/* The sales of a batch that pass the checks, to forward_batch() at once or to forward() one by
 * one. */
static void batch_forward(struct sp_rest *r, struct sp_rest_call *const *items,
                          const Salespipeline__SaleBatch *b)
{
    struct sp_sale sales[SP_REST_BATCH_MAX];
    const char *ids[SP_REST_BATCH_MAX];
    struct sp_rest_call *calls[SP_REST_BATCH_MAX];
    size_t n = 0;
    for (size_t i = 0; i < b->n_items; i++) {
        if (batch_item_check(items[i], b->items[i], &sales[n]) < 0)
            continue;
        if (!r->cfg.forward_batch) {
            r->cfg.forward(&sales[n], items[i]->sale_id, items[i], r->cfg.forward_arg);
            continue;
        }
        ids[n] = items[i]->sale_id;
        calls[n++] = items[i];
    }
    if (n)
        r->cfg.forward_batch(n, sales, ids, calls, r->cfg.forward_arg);
}

/* A whole batch is in: admit all its sales or none, suspend, forward each. The batch holds one
 * count of `pending` of its own until every sale was handed on, so that sales answered at once
 * cannot answer (and free) the batch while it is still being walked. */
static enum MHD_Result on_batch(struct sp_rest *r, struct sp_rest_call *c)
{
    Salespipeline__SaleBatch *b = salespipeline__sale_batch__unpack(
        NULL, c->len, (const uint8_t *)(c->big ? c->big : c->buf));
    big_free(r, c); /* unpack copied what it needs */
    if (!b || b->n_items == 0 || b->n_items > SP_REST_BATCH_MAX) {
        if (b)
            salespipeline__sale_batch__free_unpacked(b, NULL);
        char msg[96];
        snprintf(msg, sizeof msg, "a batch is a salespipeline.SaleBatch of 1-%d sales",
                 SP_REST_BATCH_MAX);
        return reply_error(r, c->conn, c, MHD_HTTP_BAD_REQUEST, msg);
    }
    unsigned n = (unsigned)b->n_items;
    const char *refused = admit(r, n);
    struct sp_rest_call **items = refused ? NULL : calloc(n, sizeof *items);
    for (unsigned i = 0; items && i < n; i++)
        if (!(items[i] = call_new(r, NULL))) {
            while (i--)
                call_free(r, items[i]);
            free(items);
            items = NULL;
        }
    if (!items) {
        salespipeline__sale_batch__free_unpacked(b, NULL);
        if (refused)
            return reply_error(r, c->conn, c, MHD_HTTP_SERVICE_UNAVAILABLE, refused);
        atomic_fetch_sub(&r->in_flight, n);
        return reply_error(r, c->conn, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    if (!sp_guard_forward(c->conn)) {
        for (unsigned i = 0; i < n; i++)
            call_free(r, items[i]);
        free(items);
        salespipeline__sale_batch__free_unpacked(b, NULL);
        atomic_fetch_sub(&r->in_flight, n);
        return MHD_NO;
    }
    c->admitted = n;
    c->items = items;
    c->n_items = n;
    atomic_store(&c->pending, (size_t)n + 1);
    for (unsigned i = 0; i < n; i++) {
        items[i]->parent = c;
        atomic_store_explicit(&items[i]->state, CALL_FORWARDED, memory_order_relaxed);
    }
    atomic_store_explicit(&c->state, CALL_FORWARDED, memory_order_relaxed);
    MHD_suspend_connection(c->conn); /* before any forward(): see the comment at the top */
    batch_forward(r, items, b);
    salespipeline__sale_batch__free_unpacked(b, NULL);
    batch_item_done(c);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    struct sp_rest *r = cls;
    struct sp_rest_call *c = *state;
    if (!c)
        return on_headers(r, conn, url, method, state);
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return on_upload(r, c, upload, n);
    }
    switch (atomic_load_explicit(&c->state, memory_order_acquire)) {
    case CALL_READING:
        return c->batch ? on_batch(r, c) : on_body(r, c);
    case CALL_TOO_BIG:
        return reply_error(r, conn, c, MHD_HTTP_CONTENT_TOO_LARGE, "body over 65536 bytes");
    case CALL_BUSY:
        return reply_error(r, conn, c, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "too many large bodies at once");
    case CALL_ANSWERED:
        return reply(r, conn, c, c->status, c->answer_heap ? (const char *)c->answer_heap : c->buf,
                     c->answer_len);
    default:
        /* Resumed without an answer: sp_rest_complete is the only resumer, so this is a bug. */
        sp_error("rest_invariant", "connection resumed without an answer");
        abort();
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)why;
    struct sp_rest *r = cls;
    struct sp_rest_call *c = *state;
    sp_guard_request_done(conn);
    if (!c)
        return;
    *state = NULL;
    if (atomic_load_explicit(&c->state, memory_order_acquire) == CALL_FORWARDED) {
        sp_error("rest_invariant", "request ended while its sale was still forwarded; leaking it");
        return;
    }
    if (c->admitted)
        atomic_fetch_sub(&r->in_flight, c->admitted);
    call_free(r, c);
}

/* MHD's messages are mostly about single clients (one that hangs up, or is cut off for being
 * slow): at most one a second, so that 10,000 slow clients do not flood the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    static struct sp_ratelog rate;
    unsigned long suppressed;
    (void)cls;
    if (!sp_ratelog_allow(&rate, &suppressed))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    sp_warn("httpd", "%s (%lu more suppressed)", msg, suppressed);
}

/* --- life cycle --- */

/* Raises the descriptor limit to its hard limit and fits the connection limits into it: MHD
 * cannot accept past it, and it would spin on a listening socket it cannot accept from. */
static void fit_fd_limit(struct sp_rest_config *cfg, struct sp_guard_config *gc)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t reserve = REST_RESERVED_FDS + cfg->reserved_fds;
    rlim_t room = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 1;
    if (rl.rlim_cur == RLIM_INFINITY || sp_guard_hard_limit(gc) <= room)
        return;
    unsigned fit = (unsigned)(room * 4 / 5); /* the hard limit adds at least a quarter */
    sp_warn("fd_limit",
            "descriptor limit %llu (%u kept for other uses) allows %u client "
            "connections, not %u: using %u",
            (unsigned long long)rl.rlim_cur, (unsigned)reserve, fit ? fit : 1, gc->max_connections,
            fit ? fit : 1);
    gc->max_connections = fit ? fit : 1;
}

struct sp_rest *sp_rest_start(const struct sp_rest_config *cfg)
{
    struct sockaddr_in addr;
    if (sp_sockaddr(&addr, cfg->bind_addr, cfg->port) < 0) {
        sp_error("listen_failed", "bad bind address '%s'", cfg->bind_addr);
        return NULL;
    }
    struct sp_rest *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    struct sp_guard_config gcfg = {
        .max_connections = cfg->client_connections ? cfg->client_connections : 1,
        .max_per_addr = cfg->client_connections_per_ip,
        .header_timeout_ms = cfg->header_timeout_ms,
        .body_timeout_ms = cfg->body_timeout_ms,
        .idle_timeout_s = cfg->idle_timeout_s};
    fit_fd_limit(&r->cfg, &gcfg);
    if (!(r->guard = sp_guard_new(&gcfg))) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->free_lock, NULL);
    metrics_register(r);
    /* MHD warns about a pool of one, so the pool option is given only for two or more. */
    struct MHD_OptionItem pool[] = {
        {cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, cfg->threads, NULL},
        {MHD_OPTION_END, 0, NULL}};
    r->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        cfg->port, sp_guard_accept, r->guard, on_request, r, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_ARRAY, pool, MHD_OPTION_CONNECTION_LIMIT,
        sp_guard_hard_limit(&gcfg), MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REST_CONN_MEMORY,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_CONNECTION, sp_guard_notify,
        r->guard, MHD_OPTION_NOTIFY_COMPLETED, on_completed, r, MHD_OPTION_END);
    if (!r->daemon) {
        sp_error("listen_failed", "cannot listen on %s:%u", cfg->bind_addr, (unsigned)cfg->port);
        sp_guard_free(r->guard);
        pthread_mutex_destroy(&r->free_lock);
        free(r);
        return NULL;
    }
    return r;
}

unsigned sp_rest_in_flight(const struct sp_rest *r)
{
    return atomic_load(&r->in_flight);
}

uint16_t sp_rest_port(const struct sp_rest *r)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

/* Not MHD_quiesce_daemon: on an epoll daemon with its own threads it races with them over
 * removing the listen socket from their epoll sets, and the loser aborts the process
 * (libmicrohttpd 0.9.75, "Failed to remove listen FD from epoll set"; seen in our CI as an api
 * killed by SIGABRT at SIGTERM). The socket stays open until sp_rest_free instead, and what
 * comes in meanwhile is answered 503 at once. */
void sp_rest_quiesce(struct sp_rest *r)
{
    atomic_store(&r->stopping, 1);
}

unsigned sp_rest_drain(struct sp_rest *r, double seconds)
{
    double deadline = sp_now() + seconds;
    unsigned left;
    while ((left = sp_rest_in_flight(r)) && sp_now() < deadline)
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
    return left;
}

void sp_rest_free(struct sp_rest *r)
{
    if (!r)
        return;
    MHD_stop_daemon(r->daemon);
    sp_guard_free(r->guard); /* after the daemon: its connections are closed by now */
    for (struct sp_rest_call *c = r->free_calls, *next; c; c = next) {
        next = c->next_free;
        free(c);
    }
    pthread_mutex_destroy(&r->free_lock);
    free(r);
}

void sp_rest_lame_duck(struct sp_rest *r)
{
    atomic_store(&r->closing, 1);
}

unsigned sp_rest_stop(struct sp_rest *r, double delay_s, double grace_s,
                      void (*stop_forwarder)(void *), void *arg)
{
    sp_admin_set_stopping();
    if (delay_s > 0) {
        sp_rest_lame_duck(r);
        sp_info("lame_duck",
                "not ready; taking sales for %.1f s more, closing each connection "
                "after its answer",
                delay_s);
        /* Only a stop signal cuts the delay short: SIGHUP (a reload, where added) does not. */
        for (double end = sp_now() + delay_s, left; (left = end - sp_now()) > 0;) {
            int sig = sp_signals_wait(left);
            if (sig && sig != SIGHUP) {
                sp_info("lame_duck_cut", "a second signal: stopping now");
                break;
            }
        }
    }
    sp_rest_quiesce(r); /* before the line that says so */
    sp_info("stopping_intake", "no new sales; finishing the %u in flight", sp_rest_in_flight(r));
    return sp_rest_shutdown(r, grace_s, stop_forwarder, arg);
}

unsigned sp_rest_shutdown(struct sp_rest *r, double grace_s, void (*stop_forwarder)(void *),
                          void *arg)
{
    sp_rest_quiesce(r);
    unsigned left = sp_rest_drain(r, grace_s);
    if (left)
        sp_warn("drain_timeout", "%u sale(s) still in flight after %.1f s", left, grace_s);
    stop_forwarder(arg);
    if (sp_rest_drain(r, 5.0))
        sp_error("drain_failed", "%u sale(s) never answered", sp_rest_in_flight(r));
    sp_rest_free(r);
    return left;
}
