/* client.c - the api's HTTP client to the bridge. See client.h. */
#include "client.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "intake.pb-c.h"
#include "log.h"
#include "metrics.h"

#define MIN_BUDGET_S 0.002 /* a sale with less time left is not sent at all */
#define PROBE_INTERVAL_S 1.0
#define PROBE_TIMEOUT_MS 1000L
#define QUEUED_POLL_MS 20 /* wake-up period while sales wait for a connection */
#define IDLE_POLL_MS 1000
#define CONN_MAX_AGE_S 30L /* below the bridge's idle timeout, so curl retires first */
#define ID_HEADER "X-Sale-Id: "
#define ID_HEADER_CAP (sizeof ID_HEADER + SP_REST_SALE_ID_MAX)
/* A packed BatchItem at most: sale id and sale, each with a tag and a length. */
#define BATCH_ITEM_MAX (SP_REST_SALE_ID_MAX + SP_SALE_PB_MAX + 16)
_Static_assert(SP_SALE_PB_MAX <= SP_SALE_JSON_MAX, "a job's body holds either form");

struct api_job {
    struct sp_rest_call *call;
    double queued_at; /* sp_now() when it entered the ring */
    double deadline;  /* sp_now() by which the sale must be answered */
    size_t body_len;
    char sale_id[SP_REST_SALE_ID_MAX + 1];
    char body[SP_SALE_JSON_MAX]; /* canonical JSON, or with batches the protobuf */
};

struct api_transfer {
    CURL *easy; /* options set once; reused for every request */
    struct curl_slist *headers;
    struct curl_slist *id_header; /* one sale: its text is rewritten in place for each */
    unsigned n_jobs;
    struct api_job *jobs; /* batch_max of them */
    const char *body;     /* the request body: a job's JSON or batch_body */
    size_t body_len;
    size_t sent;         /* body bytes handed to curl */
    uint8_t *batch_body; /* batches: the packed SaleBatch */
    size_t resp_len, resp_cap;
    char *resp; /* the bridge's body, cut at resp_cap */
    char error[CURL_ERROR_SIZE];
    struct api_transfer *next_free;
};

enum probe_state { PROBE_UNKNOWN, PROBE_READY, PROBE_NOT_READY, PROBE_UNREACHABLE };

struct api_client {
    struct api_client_config cfg;
    char *ready_url; /* curl_free */
    char *batch_url; /* curl_free; NULL: one sale per request */
    CURLM *multi;
    pthread_t thread;
    int thread_started;

    pthread_mutex_t lock; /* guards ring, head, count, stopping */
    struct api_job *ring;
    unsigned head, count;
    int stopping;

    /* Curl thread only. */
    struct api_transfer *free_transfers;
    unsigned active; /* transfers in the multi handle */
    CURL *probe;
    int probe_running;
    double probe_next;
    double warn_next; /* failures are logged at most once a second */
    unsigned long failed_since_warn;

    _Atomic int probe_state;   /* enum probe_state, read by daemon threads */
    _Atomic long probe_detail; /* HTTP status or CURLcode of the last probe */
};

static void answer_error(struct sp_rest_call *call, unsigned status, const char *msg)
{
    char body[160];
    size_t n = sp_rest_error_json(body, sizeof body, msg);
    sp_rest_complete(call, status, body, n);
}

/* Sales in a full request: batch_max with batches, else one. Set at start, read by any thread. */
static unsigned batch_full(const struct api_client *c)
{
    return c->batch_url ? c->cfg.batch_max : 1;
}

/* --- the ring: daemon threads push, the curl thread pops --- */

void api_client_send(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                     void *arg)
{
    struct api_client *c = arg;
    char body[SP_SALE_JSON_MAX];
    size_t len = c->batch_url ? sp_sale_pack(sale, (uint8_t *)body, sizeof body)
                              : sp_sale_to_json(sale, body, sizeof body);
    pthread_mutex_lock(&c->lock);
    int refused = c->stopping || c->count == c->cfg.max_queued || !len;
    unsigned was = c->count;
    if (!refused) {
        struct api_job *j = &c->ring[(c->head + c->count) % c->cfg.max_queued];
        j->call = call;
        j->queued_at = sp_now();
        j->deadline = j->queued_at + (double)c->cfg.timeout_ms / 1000.0;
        j->body_len = len;
        memcpy(j->body, body, len);
        snprintf(j->sale_id, sizeof j->sale_id, "%s", sale_id);
        c->count++;
    }
    pthread_mutex_unlock(&c->lock);
    if (refused) {
        answer_error(call, len ? 503 : 500,
                     len ? "api overloaded or stopping" : "sale too long for its JSON form");
    } else if (was == 0 || was + 1 == batch_full(c)) {
        /* The curl thread takes what it may whenever it wakes: a wake-up is needed only when
         * the ring stops being empty or a full batch is waiting; otherwise a transfer ending
         * wakes it. */
        curl_multi_wakeup(c->multi);
    }
}

/* Pops up to `max` of the oldest sales at once. */
static unsigned ring_take(struct api_client *c, struct api_job *jobs, unsigned max, int *stopping)
{
    pthread_mutex_lock(&c->lock);
    *stopping = c->stopping;
    unsigned n = c->count < max ? c->count : max;
    for (unsigned i = 0; i < n; i++) {
        jobs[i] = c->ring[c->head];
        c->head = (c->head + 1) % c->cfg.max_queued;
    }
    c->count -= n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* How many sales wait, and since when the oldest has (if `oldest_at`; 0 when none). */
static unsigned ring_peek(struct api_client *c, double *oldest_at)
{
    pthread_mutex_lock(&c->lock);
    unsigned n = c->count;
    if (oldest_at)
        *oldest_at = n ? c->ring[c->head].queued_at : 0;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Pops the oldest sale; with `only_expired`, only if it can no longer be sent. */
static int ring_pop(struct api_client *c, struct api_job *job, int only_expired, int *stopping)
{
    pthread_mutex_lock(&c->lock);
    *stopping = c->stopping;
    struct api_job *head = c->count ? &c->ring[c->head] : NULL;
    int take = head && (!only_expired || c->stopping || head->deadline - sp_now() < MIN_BUDGET_S);
    if (take) {
        *job = *head;
        c->head = (c->head + 1) % c->cfg.max_queued;
        c->count--;
    }
    pthread_mutex_unlock(&c->lock);
    return take;
}

static unsigned ring_count(struct api_client *c)
{
    return ring_peek(c, NULL);
}

/* --- transfers --- */

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    struct api_transfer *t = arg;
    size_t left = t->body_len - t->sent, k = size * n < left ? size * n : left;
    memcpy(buf, t->body + t->sent, k);
    t->sent += k;
    return k;
}

/* Refusing to rewind is what stops libcurl from re-sending a body it already wrote. */
static int refuse_rewind(void *arg, curl_off_t offset, int origin)
{
    (void)arg, (void)offset, (void)origin;
    return CURL_SEEKFUNC_FAIL;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct api_transfer *t = arg;
    size_t k = size * n, room = t->resp_cap - t->resp_len;
    memcpy(t->resp + t->resp_len, data, k < room ? k : room);
    t->resp_len += k < room ? k : room;
    return size * n;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data, (void)arg;
    return size * n;
}

static void transfer_free(struct api_transfer *t)
{
    if (!t)
        return;
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->jobs);
    free(t->batch_body);
    free(t->resp);
    free(t);
}

static struct api_transfer *transfer_new(struct api_client *c)
{
    char placeholder[ID_HEADER_CAP];
    struct api_transfer *t = calloc(1, sizeof *t);
    struct curl_slist *h;
    unsigned batch = c->batch_url ? c->cfg.batch_max : 0;
    if (!t || !(t->easy = curl_easy_init()))
        goto fail;
    t->resp_cap = batch ? batch * (SP_REST_ANSWER_MAX + 16) : SP_REST_ANSWER_MAX;
    if (!(t->jobs = calloc(batch ? batch : 1, sizeof *t->jobs)) ||
        !(t->resp = malloc(t->resp_cap)) ||
        (batch && !(t->batch_body = malloc(batch * BATCH_ITEM_MAX))))
        goto fail;
    if (!(h = curl_slist_append(NULL, batch ? "Content-Type: " SP_REST_BATCH_TYPE
                                            : "Content-Type: application/json")))
        goto fail;
    t->headers = h;
    if (!batch) {
        memset(placeholder, 'x', sizeof placeholder - 1);
        memcpy(placeholder, ID_HEADER, sizeof ID_HEADER - 1);
        placeholder[sizeof placeholder - 1] = '\0';
        if (!(h = curl_slist_append(t->headers, placeholder)))
            goto fail;
        t->id_header = h->next;
    }
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, batch ? c->batch_url : c->cfg.bridge_url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, t);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, refuse_rewind);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, CONN_MAX_AGE_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    return t;
fail:
    sp_error("client_oom", "cannot create a transfer");
    transfer_free(t);
    return NULL;
}

static struct api_transfer *transfer_get(struct api_client *c)
{
    struct api_transfer *t = c->free_transfers;
    if (!t)
        return transfer_new(c);
    c->free_transfers = t->next_free;
    return t;
}

static void transfer_put(struct api_client *c, struct api_transfer *t)
{
    t->next_free = c->free_transfers;
    c->free_transfers = t;
}

/* The body of a batch: a SaleBatch of the transfer's sales (each already packed). */
static void batch_pack(struct api_transfer *t)
{
    Salespipeline__BatchItem items[SP_REST_BATCH_MAX], *ptrs[SP_REST_BATCH_MAX];
    Salespipeline__SaleBatch batch = SALESPIPELINE__SALE_BATCH__INIT;
    for (unsigned i = 0; i < t->n_jobs; i++) {
        salespipeline__batch_item__init(&items[i]);
        items[i].sale_id = t->jobs[i].sale_id;
        items[i].sale.data = (uint8_t *)t->jobs[i].body;
        items[i].sale.len = t->jobs[i].body_len;
        ptrs[i] = &items[i];
    }
    batch.n_items = t->n_jobs;
    batch.items = ptrs;
    t->body = (const char *)t->batch_body;
    t->body_len = salespipeline__sale_batch__pack(&batch, t->batch_body);
}

/* Sends the transfer's n_jobs sales; its time is the first's (the oldest: the least left). */
static void transfer_start(struct api_client *c, struct api_transfer *t)
{
    t->sent = 0;
    t->resp_len = 0;
    t->error[0] = '\0';
    if (t->batch_body) {
        batch_pack(t);
    } else {
        t->body = t->jobs[0].body;
        t->body_len = t->jobs[0].body_len;
        snprintf(t->id_header->data, ID_HEADER_CAP, ID_HEADER "%s", t->jobs[0].sale_id);
    }
    long left_ms = (long)((t->jobs[0].deadline - sp_now()) * 1000.0);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, left_ms > 0 ? left_ms : 1L);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long)t->body_len);
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) {
        for (unsigned i = 0; i < t->n_jobs; i++)
            answer_error(t->jobs[i].call, 503, "api cannot start a transfer");
        transfer_put(c, t);
        return;
    }
    c->active++;
}

static void note_failure(struct api_client *c, const struct api_transfer *t, long code)
{
    double now = sp_now();
    c->failed_since_warn++;
    if (now < c->warn_next)
        return;
    sp_warn("bridge_failed", "%lu sale(s) failed since the last report; last: HTTP %ld %s",
            c->failed_since_warn, code, t->error[0] ? t->error : "");
    c->failed_since_warn = 0;
    c->warn_next = now + 1.0;
}

static void job_answer(struct api_client *c, const struct api_transfer *t,
                       const struct api_job *job, const struct api_answer *a, long code)
{
    if (a->error >= 0) {
        sp_rest_downstream_error((enum sp_downstream_error)a->error);
        note_failure(c, t, code);
    }
    sp_rest_complete(job->call, a->status, a->body, a->len);
}

/* A batch's end: each sale gets its own answer from the reply, in order. When the batch as a
 * whole failed, or the reply has no answer for a sale, that sale may or may not be stored: it
 * gets the failure (never a retry), so it is counted once or not at all. */
static void batch_done(struct api_client *c, struct api_transfer *t, CURLcode rc, long code)
{
    struct api_answer a;
    Salespipeline__SaleBatchReply *reply = rc == CURLE_OK && code == 200 &&
                                                   t->resp_len < t->resp_cap
                                               ? salespipeline__sale_batch_reply__unpack(
                                                     NULL, t->resp_len, (const uint8_t *)t->resp)
                                               : NULL;
    for (unsigned i = 0; i < t->n_jobs; i++) {
        const struct api_job *job = &t->jobs[i];
        if (reply && i < reply->n_results)
            api_answer(&a, CURLE_OK, (long)reply->results[i]->status,
                       (const char *)reply->results[i]->body.data, reply->results[i]->body.len,
                       job->sale_id);
        else if (rc == CURLE_OK && code == 200)
            api_answer(&a, CURLE_OK, 502, NULL, 0, job->sale_id); /* unreadable reply */
        else
            api_answer(&a, rc, code, t->resp, t->resp_len, job->sale_id);
        job_answer(c, t, job, &a, code);
    }
    if (reply)
        salespipeline__sale_batch_reply__free_unpacked(reply, NULL);
}

static void transfer_done(struct api_client *c, CURL *e, CURLcode rc)
{
    struct api_transfer *t = NULL;
    long code = 0;
    struct api_answer a;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (t->batch_body) {
        batch_done(c, t, rc, code);
    } else {
        api_answer(&a, rc, code, t->resp, t->resp_len, t->jobs[0].sale_id);
        job_answer(c, t, &t->jobs[0], &a, code);
    }
    transfer_put(c, t);
    c->active--;
}

/* --- the bridge's /readyz, asked once a second --- */

static void probe_tick(struct api_client *c, int stopping)
{
    double now = sp_now();
    if (stopping || c->probe_running || now < c->probe_next)
        return;
    c->probe_next = now + PROBE_INTERVAL_S;
    if (curl_multi_add_handle(c->multi, c->probe) == CURLM_OK)
        c->probe_running = 1;
}

static void probe_done(struct api_client *c, CURLcode rc)
{
    long code = 0;
    curl_easy_getinfo(c->probe, CURLINFO_RESPONSE_CODE, &code);
    c->probe_running = 0;
    int state = rc != CURLE_OK ? PROBE_UNREACHABLE : code == 200 ? PROBE_READY : PROBE_NOT_READY;
    atomic_store(&c->probe_detail, rc != CURLE_OK ? (long)rc : code);
    if (atomic_exchange(&c->probe_state, state) == state)
        return;
    if (state == PROBE_READY)
        sp_info("bridge_ready", "%s answered 200", c->ready_url);
    else
        sp_warn("bridge_not_ready", "%s: %s %ld", c->ready_url,
                rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP", rc != CURLE_OK ? 0L : code);
}

int api_client_ready(void *arg, char *why, size_t cap)
{
    struct api_client *c = arg;
    long detail = atomic_load(&c->probe_detail);
    switch (atomic_load(&c->probe_state)) {
    case PROBE_READY:
        snprintf(why, cap, "bridge ready");
        return 1;
    case PROBE_NOT_READY:
        snprintf(why, cap, "bridge %s answered %ld", c->ready_url, detail);
        return 0;
    case PROBE_UNREACHABLE:
        snprintf(why, cap, "bridge %s unreachable: %s", c->ready_url,
                 curl_easy_strerror((CURLcode)detail));
        return 0;
    default:
        snprintf(why, cap, "bridge not checked yet");
        return 0;
    }
}

/* --- the curl thread --- */

static void collect_done(struct api_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(c->multi, e); /* `m` is invalid from here */
        if (e == c->probe)
            probe_done(c, rc);
        else
            transfer_done(c, e, rc);
    }
}

/* A sale that was never sent: its time ran out waiting for a connection, or we are stopping. */
static void answer_unsent(const struct api_job *job, int stopping)
{
    if (stopping) {
        answer_error(job->call, 503, "api shutting down");
        return;
    }
    sp_rest_downstream_error(SP_DOWNSTREAM_OVERLOADED);
    answer_error(job->call, 503, "no connection to the bridge became free in time");
}

/* Seconds until a transfer may start with what is queued now (0: at once), or -1 when
 * nothing can start before a transfer ends or a sale comes: a free connection is needed, and
 * then one of the first `eager_requests` transfers takes whatever is queued, another takes a
 * full batch, or the oldest sale's `batch_wait_ms` is up (a slow bridge must not hold a
 * trickle of sales behind the eager requests for a whole round trip). */
static double start_in(struct api_client *c)
{
    double oldest_at;
    unsigned queued = ring_peek(c, &oldest_at);
    if (!queued || c->active >= c->cfg.max_connections)
        return -1;
    if (c->active < c->cfg.eager_requests || queued >= batch_full(c))
        return 0;
    double left = oldest_at + (double)c->cfg.batch_wait_ms / 1000.0 - sp_now();
    return left > 0 ? left : 0;
}

/* Starts queued sales on free connections; answers those that can no longer be sent.
 * Returns 1 while stopping. */
static int take_queued(struct api_client *c)
{
    struct api_job job;
    int stopping = 0;
    unsigned max = batch_full(c);
    /* Only this thread pops, so a sale counted here is still there to take. */
    while (start_in(c) == 0) {
        struct api_transfer *t = transfer_get(c);
        if (!t) {
            if (ring_pop(c, &job, 0, &stopping))
                answer_error(job.call, 503, "api out of memory");
            break;
        }
        unsigned got = ring_take(c, t->jobs, max, &stopping), keep = 0;
        double now = sp_now();
        for (unsigned i = 0; i < got; i++) {
            if (stopping || t->jobs[i].deadline - now < MIN_BUDGET_S)
                answer_unsent(&t->jobs[i], stopping);
            else
                t->jobs[keep++] = t->jobs[i];
        }
        t->n_jobs = keep;
        if (keep)
            transfer_start(c, t);
        else
            transfer_put(c, t);
    }
    while (ring_pop(c, &job, 1, &stopping))
        answer_unsent(&job, stopping);
    return stopping;
}

/* curl_multi_perform checks every transfer's socket with its own poll() on each wake-up (about
 * 8 poll() per sale at 64 connections). curl_multi_socket_action on an epoll set was tried: 2
 * poll() per sale, but as many more epoll_ctl() calls, and the same CPU per sale within noise
 * (~90-110 us both), so the simpler loop stays. */
static void *client_main(void *arg)
{
    struct api_client *c = arg;
    for (;;) {
        int running;
        curl_multi_perform(c->multi, &running);
        collect_done(c);
        int stopping = take_queued(c);
        probe_tick(c, stopping);
        if (stopping && !c->active) {
            if (c->probe_running)
                curl_multi_remove_handle(c->multi, c->probe);
            return NULL;
        }
        int wait = stopping || ring_count(c) ? QUEUED_POLL_MS : IDLE_POLL_MS;
        double next = start_in(c);
        if (!stopping && next > 0 && next * 1000.0 < wait)
            wait = (int)ceil(next * 1000.0);
        curl_multi_poll(c->multi, NULL, 0, wait, NULL);
    }
}

/* --- life cycle --- */

/* Another path of the bridge (/readyz, the batch path): same scheme, host and port as its sale
 * URL. */
static char *derive_url(const char *bridge_url, const char *path)
{
    CURLU *u = curl_url();
    char *out = NULL;
    if (u && !curl_url_set(u, CURLUPART_URL, bridge_url, 0) &&
        !curl_url_set(u, CURLUPART_PATH, path, 0) && !curl_url_set(u, CURLUPART_QUERY, NULL, 0) &&
        !curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0))
        curl_url_get(u, CURLUPART_URL, &out, 0);
    curl_url_cleanup(u);
    return out;
}

static int multi_setup(struct api_client *c)
{
    long conns = (long)c->cfg.max_connections + 1; /* + the readiness probe */
    if (!(c->multi = curl_multi_init()) || !(c->probe = curl_easy_init()))
        return -1;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, conns);
    curl_easy_setopt(c->probe, CURLOPT_URL, c->ready_url);
    curl_easy_setopt(c->probe, CURLOPT_TIMEOUT_MS, PROBE_TIMEOUT_MS);
    curl_easy_setopt(c->probe, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c->probe, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->probe, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    return 0;
}

struct api_client *api_client_start(const struct api_client_config *cfg)
{
    struct api_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    pthread_mutex_init(&c->lock, NULL);
    if (!(c->ready_url = derive_url(cfg->bridge_url, "/readyz")) ||
        (cfg->batch_max > 1 && !(c->batch_url = derive_url(cfg->bridge_url, SP_REST_BATCH_PATH)))) {
        sp_error("bad_bridge_url", "cannot parse the bridge URL '%s'", cfg->bridge_url);
        goto fail;
    }
    if (!(c->ring = calloc(cfg->max_queued, sizeof *c->ring)) || multi_setup(c) < 0) {
        sp_error("client_oom", "cannot allocate the bridge client");
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
        sp_error("client_thread", "cannot start the curl thread");
        goto fail;
    }
    c->thread_started = 1;
    return c;
fail:
    api_client_free(c);
    return NULL;
}

void api_client_stop(struct api_client *c)
{
    if (!c || !c->thread_started)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_mutex_unlock(&c->lock);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    c->thread_started = 0;
}

void api_client_free(struct api_client *c)
{
    if (!c)
        return;
    api_client_stop(c);
    for (struct api_transfer *t = c->free_transfers, *next; t; t = next) {
        next = t->next_free;
        transfer_free(t);
    }
    curl_easy_cleanup(c->probe);
    curl_multi_cleanup(c->multi);

    curl_free(c->ready_url);
    curl_free(c->batch_url);
    free(c->ring);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
