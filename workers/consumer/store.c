/* store.c - see store.h. The layout written here is described in ARCHITECTURE.md ("Valkey:
 * the key layout"); the script that writes it is apply.lua beside this file. */
#include "store.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sales_keys.h"
#include "valkey.h"

/* The fixed KEYS, in the order apply.lua unpacks them; then the category zsets and the
 * batch's series keys. */
static const char *const script_keys[] = {SP_KEY_TOTAL_SALES, SP_KEY_REPORTS,    SP_KEY_SUM_UNITS,
                                          SP_KEY_SUM_PRICE,   SP_KEY_AVG_UNITS,  SP_KEY_AVG_PRICE,
                                          SP_KEY_MAX_PRICE,   SP_KEY_MIN_PRICE,  SP_KEY_UNITS,
                                          SP_KEY_OFFSETS,     SP_KEY_SERIES_LAST};
#define NKEYS (sizeof script_keys / sizeof script_keys[0])
/* topic, ttl, maxlen, interval, 3 field names, 4 category names, partition count */
#define HEAD_ARGS 12
#define REC_ARGS                                                                                   \
    8                /* partition, offset, category ('' = offset only), id, precio, units,
                         * ts, series key index */
#define REC_TEXT 128 /* formatted numbers of one record, NULs included */
#define PART_TEXT 48 /* partition + expected offset */
#define SERIES_KEY_MAX (sizeof SP_KEY_SERIES + SP_PRODUCT_ID_BYTES)

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

int store_init(struct store *s, const struct store_config *cfg, size_t batch_cap)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->rec_cap = batch_cap;
    size_t argc = 3 + NKEYS + SP_CATEGORIES + batch_cap + HEAD_ARGS + 2 * batch_cap +
                  REC_ARGS * batch_cap;
    s->text_cap = 64 + batch_cap * (REC_TEXT + PART_TEXT + SERIES_KEY_MAX);
    s->nslots = pow2_at_least(2 * batch_cap);
    s->argv = calloc(argc, sizeof *s->argv);
    s->argvlen = calloc(argc, sizeof *s->argvlen);
    s->text = malloc(s->text_cap);
    s->parts = calloc(batch_cap, sizeof *s->parts);
    s->last = calloc(batch_cap, sizeof *s->last);
    s->slots = calloc(s->nslots, sizeof *s->slots);
    s->series_rec = calloc(batch_cap, sizeof *s->series_rec);
    s->series_of = calloc(batch_cap, sizeof *s->series_of);
    s->res.behind_part = calloc(batch_cap, sizeof *s->res.behind_part);
    s->res.behind_next = calloc(batch_cap, sizeof *s->res.behind_next);
    if (!s->argv || !s->argvlen || !s->text || !s->parts || !s->last || !s->slots ||
        !s->series_rec || !s->series_of || !s->res.behind_part || !s->res.behind_next) {
        store_free(s);
        return -1;
    }
    for (int c = 1; c <= SP_CATEGORIES; c++)
        snprintf(s->category_keys[c - 1], sizeof s->category_keys[c - 1], "%s%s", SP_KEY_UNITS_CAT,
                 sp_category_name(c));
    return 0;
}

static void disconnect(struct store *s)
{
    if (s->c)
        redisFree(s->c);
    s->c = NULL;
}

void store_free(struct store *s)
{
    disconnect(s);
    free(s->argv);
    free(s->argvlen);
    free(s->text);
    free(s->parts);
    free(s->last);
    free(s->slots);
    free(s->series_rec);
    free(s->series_of);
    free(s->res.behind_part);
    free(s->res.behind_next);
    memset(s, 0, sizeof *s);
}

int store_connected(const struct store *s)
{
    return s->c != NULL;
}

/* Records why `r` is not what was wanted; drops the connection on an I/O error (hiredis
 * contexts are unusable after one). Always returns STORE_ERR and frees `r`. */
static enum store_rc fail_reply(struct store *s, redisReply *r, const char *what,
                                const char *expected)
{
    char why[200];
    snprintf(s->err, sizeof s->err, "%s: %s", what,
             sp_valkey_strerror(s->c, r, expected, why, sizeof why));
    if (!r || s->c->err)
        disconnect(s);
    freeReplyObject(r);
    return STORE_ERR;
}

static enum store_rc load_script(struct store *s)
{
    const char *argv[3] = {"SCRIPT", "LOAD", consumer_apply_lua};
    redisReply *r = redisCommandArgv(s->c, 3, argv, NULL);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40)
        return fail_reply(s, r, "SCRIPT LOAD", "a sha1");
    memcpy(s->sha, r->str, 40);
    s->sha[40] = '\0';
    freeReplyObject(r);
    return STORE_OK;
}

enum store_rc store_connect(struct store *s)
{
    if (s->c)
        return STORE_OK;
    s->c = sp_valkey_connect(s->cfg.url, s->cfg.password, s->cfg.timeout_s, s->err, sizeof s->err);
    if (!s->c)
        return STORE_ERR;
    /* E.g. -LOADING while Valkey reads its AOF: start over on the next call. */
    if (load_script(s) != STORE_OK) {
        disconnect(s);
        return STORE_ERR;
    }
    return STORE_OK;
}

static void push_arg(struct store *s, size_t *argc, const char *text, size_t len)
{
    s->argv[*argc] = text;
    s->argvlen[(*argc)++] = len;
}

static void push_str(struct store *s, size_t *argc, const char *text)
{
    push_arg(s, argc, text, strlen(text));
}

/* Numbers are formatted into the text scratch at *used (sized at init for a full batch). */
static void push_num(struct store *s, size_t *argc, size_t *used, int64_t v)
{
    char *dst = s->text + *used;
    int n = snprintf(dst, s->text_cap - *used, "%" PRId64, v);
    *used += (size_t)n + 1;
    push_arg(s, argc, dst, (size_t)n);
}

/* The shortest "%.Ng" that reads back as `v`, so that stored prices look like the input. */
static void push_price(struct store *s, size_t *argc, size_t *used, double v)
{
    char *dst = s->text + *used;
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(dst, s->text_cap - *used, "%.*g", digits, v);
        if (strtod(dst, NULL) == v)
            break;
    }
    *used += (size_t)n + 1;
    push_arg(s, argc, dst, (size_t)n);
}

static void push_record(struct store *s, size_t *argc, size_t *used, const struct batch_rec *r,
                        uint32_t series)
{
    push_num(s, argc, used, r->partition);
    push_num(s, argc, used, r->offset);
    if (r->kind != BATCH_SALE) {
        for (int i = 0; i < REC_ARGS - 2; i++)
            push_str(s, argc, "");
        return;
    }
    push_str(s, argc, sp_category_name(r->sale.categoria));
    push_str(s, argc, r->sale.producto_id);
    push_price(s, argc, used, r->sale.precio);
    push_num(s, argc, used, r->sale.cantidad_vendida);
    push_num(s, argc, used, r->ts_ms);
    push_num(s, argc, used, series);
}

static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

/* The batch's distinct products, so that each price series key is passed once in KEYS:
 * series_rec[k] is the first record of product k + 1, series_of[i] record i's product. */
static void find_series(struct store *s, const struct batch *b)
{
    size_t mask = s->nslots - 1;
    memset(s->slots, 0, s->nslots * sizeof *s->slots);
    s->nseries = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->recs[i].kind != BATCH_SALE)
            continue;
        const char *id = b->recs[i].sale.producto_id;
        size_t h = id_hash(id) & mask;
        while (s->slots[h] &&
               strcmp(b->recs[s->series_rec[s->slots[h] - 1]].sale.producto_id, id) != 0)
            h = (h + 1) & mask;
        if (!s->slots[h]) {
            s->series_rec[s->nseries++] = i;
            s->slots[h] = (uint32_t)s->nseries;
        }
        s->series_of[i] = s->slots[h];
    }
}

/* Fills argv for EVALSHA; returns argc. */
static size_t build_args(struct store *s, const struct batch *b, const int64_t *expected,
                         size_t nexpected)
{
    size_t argc = 0, used = 0;
    find_series(s, b);
    push_str(s, &argc, "EVALSHA");
    push_str(s, &argc, s->sha);
    push_num(s, &argc, &used, (int64_t)(NKEYS + SP_CATEGORIES + s->nseries));
    for (size_t i = 0; i < NKEYS; i++)
        push_str(s, &argc, script_keys[i]);
    for (int c = 0; c < SP_CATEGORIES; c++)
        push_str(s, &argc, s->category_keys[c]);
    for (size_t k = 0; k < s->nseries; k++) {
        char *key = s->text + used;
        int n = snprintf(key, s->text_cap - used, "%s%s", SP_KEY_SERIES,
                         b->recs[s->series_rec[k]].sale.producto_id);
        used += (size_t)n + 1;
        push_arg(s, &argc, key, (size_t)n);
    }
    push_str(s, &argc, s->cfg.topic);
    push_num(s, &argc, &used, s->cfg.series_ttl_s);
    push_num(s, &argc, &used, s->cfg.series_max_len);
    push_num(s, &argc, &used, s->cfg.series_interval_ms);
    push_str(s, &argc, SP_FIELD_PRICE);
    push_str(s, &argc, SP_FIELD_PRODUCT);
    push_str(s, &argc, SP_FIELD_TS);
    for (int c = 1; c <= SP_CATEGORIES; c++)
        push_str(s, &argc, sp_category_name(c));
    size_t nparts = batch_partitions(b, s->parts, s->last, s->rec_cap);
    push_num(s, &argc, &used, (int64_t)nparts);
    for (size_t i = 0; i < nparts; i++) {
        int32_t p = s->parts[i];
        push_num(s, &argc, &used, p);
        push_num(s, &argc, &used, p >= 0 && (size_t)p < nexpected ? expected[p] : -1);
    }
    for (size_t i = 0; i < b->len; i++)
        push_record(s, &argc, &used, &b->recs[i], s->series_of[i]);
    return argc;
}

static int is_int(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER;
}

/* Reads {1, applied, dups, skipped} or {0, p, stored, ...} into s->res. */
static enum store_rc parse_result(struct store *s, redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !is_int(r->element[0]))
        return fail_reply(s, r, "EVALSHA", "the script's result");
    for (size_t i = 1; i < r->elements; i++)
        if (!is_int(r->element[i]))
            return fail_reply(s, r, "EVALSHA", "the script's result");
    struct store_result *res = &s->res;
    res->applied = res->duplicates = res->skipped = 0;
    res->behind = 0;
    enum store_rc rc = STORE_OK;
    if (r->element[0]->integer == 1 && r->elements == 4) {
        res->applied = (long)r->element[1]->integer;
        res->duplicates = (long)r->element[2]->integer;
        res->skipped = (long)r->element[3]->integer;
    } else if (r->element[0]->integer == 0 && r->elements % 2 == 1) {
        for (size_t i = 1; i + 1 < r->elements && res->behind < s->rec_cap; i += 2) {
            res->behind_part[res->behind] = (int32_t)r->element[i]->integer;
            res->behind_next[res->behind++] = r->element[i + 1]->integer;
        }
        rc = STORE_BEHIND;
    } else {
        return fail_reply(s, r, "EVALSHA", "the script's result");
    }
    freeReplyObject(r);
    return rc;
}

enum store_rc store_apply(struct store *s, const struct batch *b, const int64_t *expected,
                          size_t nexpected, const struct store_result **res)
{
    *res = &s->res;
    if (store_connect(s) != STORE_OK)
        return STORE_ERR;
    for (int attempt = 0;; attempt++) {
        size_t argc = build_args(s, b, expected, nexpected);
        redisReply *r = redisCommandArgv(s->c, (int)argc, s->argv, s->argvlen);
        /* Scripts are not persisted: after a Valkey restart the sha is unknown. */
        if (attempt == 0 && sp_valkey_is_error(r, "NOSCRIPT")) {
            freeReplyObject(r);
            if (load_script(s) != STORE_OK)
                return STORE_ERR;
            continue;
        }
        return parse_result(s, r);
    }
}

/* Rare (once per assignment), so it allocates rather than size the batch scratch for it. */
enum store_rc store_read_offsets(struct store *s, const int32_t *parts, size_t n, int64_t *out)
{
    if (n == 0)
        return STORE_OK;
    if (store_connect(s) != STORE_OK)
        return STORE_ERR;
    enum store_rc rc = STORE_ERR;
    size_t field_len = strlen(s->cfg.topic) + 16;
    const char **argv = calloc(n + 2, sizeof *argv);
    char *fields = calloc(n ? n : 1, field_len);
    redisReply *r = NULL;
    if (!argv || !fields) {
        snprintf(s->err, sizeof s->err, "out of memory reading %zu offsets", n);
        goto done;
    }
    argv[0] = "HMGET";
    argv[1] = SP_KEY_OFFSETS;
    for (size_t i = 0; i < n; i++) {
        snprintf(fields + i * field_len, field_len, "%s:%" PRId32, s->cfg.topic, parts[i]);
        argv[i + 2] = fields + i * field_len;
    }
    r = redisCommandArgv(s->c, (int)n + 2, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        rc = fail_reply(s, r, "HMGET " SP_KEY_OFFSETS, "an array");
        r = NULL;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        out[i] = e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : -1;
    }
    rc = STORE_OK;
done:
    freeReplyObject(r);
    free(argv);
    free(fields);
    return rc;
}

enum store_rc store_ping(struct store *s)
{
    if (store_connect(s) != STORE_OK)
        return STORE_ERR;
    redisReply *r = redisCommand(s->c, "PING");
    if (!r || r->type != REDIS_REPLY_STATUS)
        return fail_reply(s, r, "PING", "PONG");
    freeReplyObject(r);
    return STORE_OK;
}

enum store_rc store_wait(struct store *s, long replicas, long timeout_ms, long *acked)
{
    *acked = 0;
    if (!s->c) {
        snprintf(s->err, sizeof s->err, "WAIT: not connected");
        return STORE_ERR;
    }
    redisReply *r = redisCommand(s->c, "WAIT %ld %ld", replicas, timeout_ms);
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return fail_reply(s, r, "WAIT", "an integer");
    *acked = (long)r->integer;
    freeReplyObject(r);
    return STORE_OK;
}
