/* loop.c - see loop.h. */
#include "loop.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_client.h"
#include "log.h"
#include "metrics.h"

#define IDLE_POLL_MS 100 /* poll timeout with an empty batch: how soon a stop is seen */
#define BACKOFF_MIN_S 0.05
#define BACKOFF_MAX_S 2.0
#define VERIFY_INTERVAL_S 1.0 /* how often Valkey's offsets are compared with ours */
#define LAG_INTERVAL_S 1.0

static struct sp_metric *m_records, *m_applied, *m_duplicates, *m_undecodable, *m_invalid,
    *m_batches, *m_batch_seconds, *m_valkey_errors, *m_wait_short, *m_lag, *m_assigned, *m_rewinds;

void loop_metrics_init(void)
{
    m_records = sp_counter_new("sp_consumer_records_total", NULL,
                               "Records taken from Kafka, valid or not");
    m_applied = sp_counter_new("sp_consumer_sales_applied_total", NULL,
                               "Sales added to the Valkey aggregates");
    m_duplicates = sp_counter_new("sp_consumer_duplicates_total", NULL,
                                  "Records the script refused as already applied (replays)");
    m_undecodable = sp_counter_new("sp_consumer_decode_errors_total", "reason=\"undecodable\"",
                                   "Records skipped: not a sale (offset still advanced)");
    m_invalid = sp_counter_new("sp_consumer_decode_errors_total", "reason=\"invalid\"",
                               "Records skipped: not a sale (offset still advanced)");
    m_batches = sp_counter_new("sp_consumer_batches_total", NULL, "Batches applied to Valkey");
    m_batch_seconds = sp_histogram_new("sp_consumer_batch_seconds", NULL,
                                       "Time to apply one batch in Valkey (EVALSHA, then WAIT "
                                       "when on), retries excluded");
    m_valkey_errors = sp_counter_new("sp_consumer_valkey_errors_total", NULL,
                                     "Failed Valkey calls (each is retried)");
    m_wait_short = sp_counter_new("sp_consumer_wait_short_total", NULL,
                                  "WAITs that timed out with fewer replicas than asked");
    m_lag = sp_gauge_new("sp_consumer_lag", NULL,
                         "Records in the assigned partitions not yet applied to Valkey");
    m_assigned = sp_gauge_new("sp_consumer_assigned_partitions", NULL,
                              "Partitions assigned to this member");
    m_rewinds = sp_counter_new("sp_consumer_rewinds_total", NULL,
                               "Partitions rewound because Valkey held less than applied");
}

static int is_coop(struct loop *l)
{
    return strcmp(rd_kafka_rebalance_protocol(l->kafka.rk), "COOPERATIVE") == 0;
}

/* Sleeps `seconds` in short steps so that a stop is noticed (once: after it, the grace
 * period's retries sleep their full backoff). */
static void nap(struct loop *l, double seconds)
{
    double until = sp_now() + seconds;
    while (sp_now() < until) {
        if (atomic_load(&l->stop) && l->stop_deadline == 0)
            return;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void valkey_down(struct loop *l, const char *what)
{
    unsigned long suppressed;
    atomic_store(&l->ready, 0);
    sp_counter_add(m_valkey_errors, 1);
    if (sp_ratelog_allow(&l->valkey_log, &suppressed))
        sp_warn("valkey_error", "%s: %s (%lu similar suppressed)", what, l->store.err, suppressed);
}

static void valkey_up(struct loop *l)
{
    if (!atomic_exchange(&l->ready, 1))
        sp_info("valkey_ready", "Valkey answers; applying batches");
}

/* ---------------------------------------------------------------- partition state */

/* Grows the per-partition arrays to hold partition `max`. -1 when out of memory. */
static int parts_reserve(struct loop *l, int32_t max)
{
    size_t want = (size_t)max + 1;
    if (want <= l->nparts)
        return 0;
    int64_t *next = realloc(l->next, want * sizeof *next);
    if (!next)
        return -1;
    l->next = next;
    uint8_t *assigned = realloc(l->assigned, want * sizeof *assigned);
    if (!assigned)
        return -1;
    l->assigned = assigned;
    int32_t *ids = realloc(l->verify_ids, want * sizeof *ids);
    if (!ids)
        return -1;
    l->verify_ids = ids;
    int64_t *stored = realloc(l->verify_stored, want * sizeof *stored);
    if (!stored)
        return -1;
    l->verify_stored = stored;
    for (size_t i = l->nparts; i < want; i++) {
        l->next[i] = -1;
        l->assigned[i] = 0;
    }
    l->nparts = want;
    return 0;
}

static void count_assigned(struct loop *l)
{
    int64_t n = 0;
    for (size_t i = 0; i < l->nparts; i++)
        n += l->assigned[i];
    sp_gauge_set(m_assigned, n);
}

/* ---------------------------------------------------------------- applying a batch */

static void commit_to_kafka(struct loop *l, size_t n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, l->cfg.topic, l->parts[i])->offset = l->last[i] + 1;
    /* Only for lag tools: a failure (e.g. during a rebalance) costs nothing. */
    rd_kafka_commit(l->kafka.rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
}

static void wait_replicas(struct loop *l)
{
    long acked = 0;
    if (store_wait(&l->store, l->cfg.wait_replicas, l->cfg.wait_timeout_ms, &acked) != STORE_OK)
        valkey_down(l, "WAIT");
    else if (acked < l->cfg.wait_replicas)
        sp_counter_add(m_wait_short, 1);
}

static void applied(struct loop *l, const struct store_result *res, double started)
{
    size_t n = batch_partitions(&l->batch, l->parts, l->last, l->batch.cap);
    for (size_t i = 0; i < n; i++) {
        int32_t p = l->parts[i];
        if ((size_t)p < l->nparts && l->next[p] < l->last[i] + 1)
            l->next[p] = l->last[i] + 1;
    }
    if (l->cfg.wait_replicas > 0)
        wait_replicas(l);
    sp_histogram_observe(m_batch_seconds, sp_now() - started);
    sp_counter_add(m_batches, 1);
    sp_counter_add(m_applied, (uint64_t)res->applied);
    sp_counter_add(m_duplicates, (uint64_t)res->duplicates);
    commit_to_kafka(l, n);
    batch_clear(&l->batch);
}

/* Valkey holds less than we applied (it lost writes): read partitions `ids` again from the
 * offsets it holds, `to` (-1: the beginning). Seeking purges what librdkafka prefetched. */
static void rewind_partitions(struct loop *l, const int32_t *ids, const int64_t *to, size_t n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        int32_t p = ids[i];
        sp_error("valkey_behind",
                 "Valkey holds next offset %" PRId64 " for %s:%" PRId32 " but %" PRId64
                 " was applied; rewinding (Valkey lost writes)",
                 to[i], l->cfg.topic, p, (size_t)p < l->nparts ? l->next[p] : -1);
        batch_drop_partition(&l->batch, p);
        if ((size_t)p < l->nparts)
            l->next[p] = to[i];
        rd_kafka_topic_partition_list_add(list, l->cfg.topic, p)->offset =
            to[i] >= 0 ? to[i] : RD_KAFKA_OFFSET_BEGINNING;
        sp_counter_add(m_rewinds, 1);
    }
    rd_kafka_error_t *e = rd_kafka_seek_partitions(l->kafka.rk, list, 10000);
    if (e) {
        sp_error("seek_failed", "%s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Compares the stored next offset of every assigned partition with what this member applied
 * and rewinds those behind: a partition without new records would never meet the script's
 * own check. Once a second, and after any partition was found behind; doubles as the Valkey
 * health probe behind /readyz. */
static void verify_offsets(struct loop *l)
{
    size_t n = 0;
    for (size_t p = 0; p < l->nparts; p++)
        if (l->assigned[p] && l->next[p] >= 0)
            l->verify_ids[n++] = (int32_t)p;
    l->next_verify = sp_now() + VERIFY_INTERVAL_S;
    enum store_rc rc = n ? store_read_offsets(&l->store, l->verify_ids, n, l->verify_stored)
                         : store_ping(&l->store);
    if (rc != STORE_OK) {
        valkey_down(l, n ? "read offsets" : "ping");
        return;
    }
    valkey_up(l);
    size_t behind = 0;
    for (size_t i = 0; i < n; i++)
        if (l->verify_stored[i] < l->next[l->verify_ids[i]]) {
            l->verify_ids[behind] = l->verify_ids[i];
            l->verify_stored[behind++] = l->verify_stored[i];
        }
    if (behind)
        rewind_partitions(l, l->verify_ids, l->verify_stored, behind);
}

/* One try: STORE_OK once the batch is applied (or emptied by a rewind), else STORE_ERR. */
static enum store_rc apply_once(struct loop *l, int may_rewind)
{
    for (;;) {
        const struct store_result *res;
        double started = sp_now();
        enum store_rc rc = store_apply(&l->store, &l->batch, l->next, l->nparts, &res);
        if (rc == STORE_OK) {
            valkey_up(l);
            applied(l, res, started);
            return STORE_OK;
        }
        if (rc == STORE_ERR) {
            valkey_down(l, "apply");
            return STORE_ERR;
        }
        valkey_up(l);
        if (!may_rewind)
            return STORE_ERR;
        rewind_partitions(l, res->behind_part, res->behind_next, res->behind);
        verify_offsets(l);
        if (l->batch.len == 0)
            return STORE_OK;
    }
}

/* Retries the same batch until it applies. After a stop, gives up at the grace deadline:
 * nothing of it is stored, so the next owner of its partitions reads it again. */
static void apply_batch(struct loop *l)
{
    double backoff = BACKOFF_MIN_S;
    while (apply_once(l, 1) != STORE_OK) {
        if (atomic_load(&l->stop)) {
            if (l->stop_deadline == 0)
                l->stop_deadline = sp_now() + l->cfg.stop_grace_s;
            if (sp_now() >= l->stop_deadline) {
                sp_warn("batch_abandoned",
                        "stopping with Valkey unreachable: %zu records "
                        "not applied; they stay in Kafka for the next owner",
                        l->batch.len);
                batch_clear(&l->batch);
                return;
            }
        }
        nap(l, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
    }
}

/* ---------------------------------------------------------------- rebalance */

/* Reads the stored next offsets of `parts`, retrying while Valkey is down. -1 on a stop. */
static int read_offsets(struct loop *l, rd_kafka_topic_partition_list_t *parts)
{
    int n = parts->cnt, rc = -1;
    int32_t *ids = calloc((size_t)n + 1, sizeof *ids);
    int64_t *next = calloc((size_t)n + 1, sizeof *next);
    if (!ids || !next) {
        sp_error("assign_failed", "out of memory for %d partitions", n);
        goto done;
    }
    for (int i = 0; i < n; i++)
        ids[i] = parts->elems[i].partition;
    double backoff = BACKOFF_MIN_S;
    while (store_read_offsets(&l->store, ids, (size_t)n, next) != STORE_OK) {
        valkey_down(l, "read offsets");
        if (atomic_load(&l->stop))
            goto done;
        nap(l, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
    }
    valkey_up(l);
    for (int i = 0; i < n; i++) {
        parts->elems[i].offset = next[i] >= 0 ? next[i] : RD_KAFKA_OFFSET_BEGINNING;
        l->next[ids[i]] = next[i];
        l->assigned[ids[i]] = 1;
    }
    rc = 0;
done:
    free(ids);
    free(next);
    return rc;
}

static void log_partitions(const char *event, const char *what,
                           const rd_kafka_topic_partition_list_t *parts)
{
    char text[768];
    size_t len = 0;
    text[0] = '\0';
    for (int i = 0; i < parts->cnt && len < sizeof text - 32; i++) {
        int64_t off = parts->elems[i].offset;
        int w = off >= 0 ? snprintf(text + len, sizeof text - len, "%s%" PRId32 "@%" PRId64,
                                    i ? "," : "", parts->elems[i].partition, off)
                         : snprintf(text + len, sizeof text - len, "%s%" PRId32 "%s", i ? "," : "",
                                    parts->elems[i].partition,
                                    off == RD_KAFKA_OFFSET_BEGINNING ? "@beginning" : "");
        len += (size_t)w;
    }
    sp_info(event, "%s %d partition(s): %s", what, parts->cnt, text);
}

static void on_assign(struct loop *l, rd_kafka_topic_partition_list_t *parts)
{
    int32_t max = -1;
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition > max)
            max = parts->elems[i].partition;
    if (parts_reserve(l, max) < 0) {
        sp_error("assign_failed", "out of memory for partition %" PRId32, max);
        atomic_store(&l->failed, 1);
        atomic_store(&l->stop, 1);
        return;
    }
    if (read_offsets(l, parts) < 0)
        return; /* stopping: own nothing, the close that follows revokes nothing of ours */
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (is_coop(l))
        e = rd_kafka_incremental_assign(l->kafka.rk, parts);
    else
        err = rd_kafka_assign(l->kafka.rk, parts);
    if (e || err) {
        sp_error("assign_failed", "%s", e ? rd_kafka_error_string(e) : rd_kafka_err2str(err));
        if (e)
            rd_kafka_error_destroy(e);
    }
    log_partitions("partitions_assigned", "resuming from Valkey's offsets", parts);
    count_assigned(l);
}

static void on_revoke(struct loop *l, rd_kafka_topic_partition_list_t *parts)
{
    int lost = rd_kafka_assignment_lost(l->kafka.rk);
    /* Applying what is in hand saves the next owner a re-read; a stale apply is harmless. */
    if (l->batch.len && !lost && apply_once(l, 0) != STORE_OK)
        sp_warn("batch_dropped", "Valkey did not take the batch in hand before the revoke; "
                                 "its records stay in Kafka for the next owner");
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        batch_drop_partition(&l->batch, p);
        if ((size_t)p < l->nparts) {
            l->assigned[p] = 0;
            l->next[p] = -1;
        }
    }
    if (is_coop(l)) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(l->kafka.rk, parts);
        if (e) {
            sp_error("unassign_failed", "%s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(l->kafka.rk, NULL);
    }
    log_partitions("partitions_revoked", lost ? "lost" : "revoked", parts);
    count_assigned(l);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk;
    struct loop *l = sp_kafka_owner(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(l, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(l, parts);
    } else {
        sp_error("rebalance_failed", "%s", rd_kafka_err2str(err));
        on_revoke(l, parts);
    }
}

/* ---------------------------------------------------------------- polling */

/* A fatal error (librdkafka delivers it to a consumer as a message of consumer_poll, see
 * kafka_client.h): the member is unusable; stop, and exit 1 so that it is restarted. */
static void on_fatal(void *owner, const char *reason)
{
    (void)reason;
    struct loop *l = owner;
    atomic_store(&l->failed, 1);
    atomic_store(&l->stop, 1);
}

static void take_record(struct loop *l, const rd_kafka_message_t *m)
{
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    struct sp_sale_error e = {.field = NULL, .reason = "not a ProductSaleRequest"};
    enum batch_kind kind = batch_add(&l->batch, m->partition, m->offset,
                                     ts >= 0 ? ts : sp_wall_ms(), m->payload, m->len, &e);
    sp_counter_add(m_records, 1);
    if (kind == BATCH_SALE)
        return;
    sp_counter_add(kind == BATCH_UNDECODABLE ? m_undecodable : m_invalid, 1);
    unsigned long suppressed;
    if (sp_ratelog_allow(&l->decode_log, &suppressed))
        sp_warn("record_skipped",
                "%s:%" PRId32 "@%" PRId64 " (%zu bytes): %s%s%s "
                "(%lu similar suppressed)",
                l->cfg.topic, m->partition, m->offset, m->len, e.field ? e.field : "",
                e.field ? " " : "", e.reason, suppressed);
}

/* Polls until the batch is full or, once it holds a record, batch_wait_ms have passed.
 * Returns with an empty batch after IDLE_POLL_MS without records. */
static void collect(struct loop *l)
{
    double wait = (double)l->cfg.batch_wait_ms / 1000.0;
    double deadline = l->batch.len ? sp_now() + wait : 0;
    while (!batch_full(&l->batch)) {
        int timeout = IDLE_POLL_MS;
        if (l->batch.len) {
            double left = deadline - sp_now();
            if (left <= 0)
                break;
            timeout = (int)(left * 1000.0);
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(l->kafka.rk, timeout);
        if (!m) {
            if (!l->batch.len)
                return;
            continue;
        }
        if (m->err)
            sp_kafka_error(&l->kafka, m->err, rd_kafka_message_errstr(m));
        else if ((size_t)m->partition < l->nparts && l->assigned[m->partition])
            take_record(l, m);
        if (l->batch.len == 1 && deadline == 0)
            deadline = sp_now() + wait;
        rd_kafka_message_destroy(m);
    }
}

static void update_lag(struct loop *l)
{
    int64_t lag = 0;
    for (size_t p = 0; p < l->nparts; p++) {
        int64_t lo, hi;
        if (!l->assigned[p] ||
            rd_kafka_get_watermark_offsets(l->kafka.rk, l->cfg.topic, (int32_t)p, &lo, &hi))
            continue;
        int64_t pos = l->next[p] >= 0 ? l->next[p] : lo >= 0 ? lo : 0;
        if (hi > pos)
            lag += hi - pos;
    }
    sp_gauge_set(m_lag, lag);
    l->next_lag = sp_now() + LAG_INTERVAL_S;
}

void loop_run(struct loop *l)
{
    verify_offsets(l);
    while (!atomic_load(&l->stop)) {
        collect(l);
        if (l->batch.len)
            apply_batch(l);
        if (sp_now() >= l->next_verify)
            verify_offsets(l);
        if (sp_now() >= l->next_lag)
            update_lag(l);
    }
    if (l->batch.len)
        apply_batch(l);
    sp_info("consumer_closing", "leaving the group");
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(l->kafka.rk);
    if (err)
        sp_warn("consumer_close", "%s", rd_kafka_err2str(err));
    atomic_store(&l->finished, 1);
}

/* ---------------------------------------------------------------- setup */

static rd_kafka_conf_t *kafka_conf(struct loop *l, char *err, size_t errlen)
{
    char session[24], prefetch[24], fetch_wait[24];
    snprintf(session, sizeof session, "%ld", l->cfg.session_timeout_ms);
    snprintf(prefetch, sizeof prefetch, "%ld", l->cfg.prefetch_kb);
    snprintf(fetch_wait, sizeof fetch_wait, "%ld", l->cfg.fetch_wait_ms);
    const struct sp_kafka_setting settings[] = {
        {"bootstrap.servers", l->cfg.brokers},
        {"group.id", l->cfg.group},
        {"client.id", "sp-consumer"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", session},
        {"partition.assignment.strategy", l->cfg.assignment_strategy},
        /* Bounds what librdkafka prefetches per partition and what one fetch answer may hold
         * (64 MiB and 50 MiB by default): with a backlog in Kafka those defaults made the
         * consumer's RSS 60 MB; 1 MiB keeps it near 30 MB at >60k records/s (make bench). */
        {"queued.max.messages.kbytes", prefetch},
        {"fetch.max.bytes", "1048576"},
        {"max.partition.fetch.bytes", "262144"},
        {"receive.message.max.bytes", "2097152"},
        /* librdkafka asks for 1 byte by default: under load the broker then answers a fetch
         * for about every produce request it takes, a request each (make bench). */
        {"fetch.min.bytes", "65536"},
        {"fetch.wait.max.ms", fetch_wait},
    };
    l->kafka.owner = l;
    l->kafka.on_fatal = on_fatal;
    rd_kafka_conf_t *conf = sp_kafka_conf(&l->kafka, settings, sizeof settings / sizeof settings[0],
                                          &l->cfg.security, err, errlen);
    if (conf)
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    return conf;
}

static int subscribe(struct loop *l, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, l->cfg.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(l->kafka.rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        snprintf(err, errlen, "subscribe to %s: %s", l->cfg.topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int loop_init(struct loop *l, const struct loop_config *cfg, const struct store_config *scfg,
              char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    size_t cap = (size_t)cfg->batch_size;
    l->parts = calloc(cap, sizeof *l->parts);
    l->last = calloc(cap, sizeof *l->last);
    if (!l->parts || !l->last || batch_init(&l->batch, cap) < 0 ||
        store_init(&l->store, scfg, cap) < 0) {
        snprintf(err, errlen, "out of memory for a batch of %zu", cap);
        goto fail;
    }
    rd_kafka_conf_t *conf = kafka_conf(l, err, errlen);
    if (!conf || sp_kafka_new(&l->kafka, RD_KAFKA_CONSUMER, conf, err, errlen) < 0)
        goto fail;
    rd_kafka_poll_set_consumer(l->kafka.rk);
    if (subscribe(l, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    loop_free(l);
    return -1;
}

void loop_free(struct loop *l)
{
    if (l->kafka.rk)
        rd_kafka_destroy(l->kafka.rk);
    store_free(&l->store);
    batch_free(&l->batch);
    free(l->next);
    free(l->assigned);
    free(l->verify_ids);
    free(l->verify_stored);
    free(l->parts);
    free(l->last);
    memset(l, 0, sizeof *l);
}
