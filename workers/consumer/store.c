/* store.c - see store.h. The layout written here is described in ARCHITECTURE.md ("Valkey: the key layout"). */
#include "store.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sales_keys.h"
#include "valkey.h"

/* KEYS and the fixed head of ARGV, in the order the script unpacks them. */
static const char *const script_keys[] = {
    SP_KEY_TOTAL_SALES, SP_KEY_REPORTS, SP_KEY_SUM_UNITS, SP_KEY_SUM_PRICE, SP_KEY_AVG_UNITS,
    SP_KEY_AVG_PRICE, SP_KEY_MAX_PRICE, SP_KEY_MIN_PRICE, SP_KEY_UNITS, SP_KEY_OFFSETS,
    SP_KEY_SERIES_LAST};
#define NKEYS (sizeof script_keys / sizeof script_keys[0])
/* topic, units-per-category prefix, series prefix, ttl, maxlen, interval, partition count */
#define HEAD_ARGS 7
#define REC_ARGS 7      /* partition, offset, category ('' = offset only), id, precio, units, ts */
#define REC_TEXT 112    /* formatted numbers of one record, NULs included */
#define PART_TEXT 48    /* partition + expected offset */

/* Per batch, each category's count and sums are read once and written once, each product's
 * units added once; per sale only the price series may get an XADD (every sale, or the first
 * sale of each product in each interval). Floats are written with the shortest text that
 * reads back as the same double. Returns {1, applied, duplicates, skipped}, or
 * {0, p, stored, ...} when a partition's stored next offset is below the caller's belief. */
const char store_script[] =
    "-- Applies one batch of records and the next offset of each partition, atomically.\n"
    "local K_TOTAL, K_REPORTS, K_SUNITS, K_SPRICE, K_AUNITS, K_APRICE, K_MAX, K_MIN, K_UNITS,\n"
    "      K_OFFS, K_LAST = unpack(KEYS)\n"
    "local topic, catp, serp = ARGV[1], ARGV[2], ARGV[3]\n"
    "local ttl, maxlen, every = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])\n"
    "local n, i = #ARGV, 8\n"
    "\n"
    "local function fmt(x)\n"
    "  local s = string.format('%.15g', x)\n"
    "  if tonumber(s) ~= x then s = string.format('%.17g', x) end\n"
    "  return s\n"
    "end\n"
    "local function num(v) if v then return tonumber(v) end return nil end\n"
    "\n"
    "-- Stored next offset per partition; a caller that applied more than Valkey holds gets the\n"
    "-- partitions back (nothing applied) and rewinds.\n"
    "local nxt, dirty, behind = {}, {}, {0}\n"
    "for _ = 1, tonumber(ARGV[7]) do\n"
    "  local p, want = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  local have = num(redis.call('HGET', K_OFFS, topic .. ':' .. p)) or -1\n"
    "  if have < want then behind[#behind + 1] = tonumber(p); behind[#behind + 1] = have end\n"
    "  nxt[p] = have\n"
    "  i = i + 2\n"
    "end\n"
    "if #behind > 1 then return behind end\n"
    "\n"
    "-- Pass 1: the offset check, and the batch's sums in Lua tables.\n"
    "local dups, skipped, sales = 0, 0, {}\n"
    "local cnt, su, sp, units, cunits = {}, {}, {}, {}, {}\n"
    "local maxp, maxs, maxid, minp, mins, minid\n"
    "while i <= n do\n"
    "  local p, off, cat = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]\n"
    "  if off < nxt[p] then\n"
    "    dups = dups + 1\n"
    "  else\n"
    "    nxt[p] = off + 1; dirty[p] = true\n"
    "    if cat == '' then\n"
    "      skipped = skipped + 1\n"
    "    else\n"
    "      local id, ps, u = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])\n"
    "      local price = tonumber(ps)\n"
    "      sales[#sales + 1] = i\n"
    "      cnt[cat] = (cnt[cat] or 0) + 1\n"
    "      su[cat] = (su[cat] or 0) + u\n"
    "      sp[cat] = (sp[cat] or 0) + price\n"
    "      units[id] = (units[id] or 0) + u\n"
    "      local cu = cunits[cat]\n"
    "      if not cu then cu = {}; cunits[cat] = cu end\n"
    "      cu[id] = (cu[id] or 0) + u\n"
    "      if not maxp or price > maxp then maxp, maxs, maxid = price, ps, id end\n"
    "      if not minp or price < minp then minp, mins, minid = price, ps, id end\n"
    "    end\n"
    "  end\n"
    "  i = i + 7\n"
    "end\n"
    "\n"
    "local function write_totals()\n"
    "  redis.call('INCRBY', K_TOTAL, #sales)\n"
    "  for cat, c in pairs(cnt) do\n"
    "    local total = redis.call('HINCRBY', K_REPORTS, cat, c)\n"
    "    local sumu = redis.call('HINCRBY', K_SUNITS, cat, string.format('%d', su[cat]))\n"
    "    local sump = (num(redis.call('HGET', K_SPRICE, cat)) or 0) + sp[cat]\n"
    "    redis.call('HSET', K_SPRICE, cat, fmt(sump))\n"
    "    redis.call('HSET', K_AUNITS, cat, fmt(sumu / total))\n"
    "    redis.call('HSET', K_APRICE, cat, fmt(sump / total))\n"
    "    for id, u in pairs(cunits[cat]) do\n"
    "      redis.call('ZINCRBY', catp .. cat, string.format('%d', u), id)\n"
    "    end\n"
    "  end\n"
    "  for id, u in pairs(units) do redis.call('ZINCRBY', K_UNITS, string.format('%d', u), id) end\n"
    "  local m = num(redis.call('HGET', K_MAX, '" SP_FIELD_PRICE "'))\n"
    "  if not m or maxp > m then redis.call('HSET', K_MAX, '" SP_FIELD_PRICE "', maxs, '" SP_FIELD_PRODUCT "', maxid) end\n"
    "  m = num(redis.call('HGET', K_MIN, '" SP_FIELD_PRICE "'))\n"
    "  if not m or minp < m then redis.call('HSET', K_MIN, '" SP_FIELD_PRICE "', mins, '" SP_FIELD_PRODUCT "', minid) end\n"
    "end\n"
    "\n"
    "-- The start of the interval of each product's last point (-1: none), for `every` > 0.\n"
    "local function last_points()\n"
    "  local ids, last = {}, {}\n"
    "  for _, j in ipairs(sales) do\n"
    "    local id = ARGV[j + 3]\n"
    "    if not last[id] then last[id] = -1; ids[#ids + 1] = id end\n"
    "  end\n"
    "  for k = 1, #ids, 500 do\n"
    "    local chunk = {}\n"
    "    for m = k, math.min(k + 499, #ids) do chunk[#chunk + 1] = ids[m] end\n"
    "    local got = redis.call('HMGET', K_LAST, unpack(chunk))\n"
    "    for m = 1, #chunk do last[chunk[m]] = tonumber(got[m]) or -1 end\n"
    "  end\n"
    "  return last\n"
    "end\n"
    "\n"
    "-- Pass 2: a point per sale, or (every > 0) per product and interval of `every` ms.\n"
    "local function write_series()\n"
    "  local last = every > 0 and last_points() or nil\n"
    "  local wrote = {}\n"
    "  for _, j in ipairs(sales) do\n"
    "    local id, ts = ARGV[j + 3], tonumber(ARGV[j + 6])\n"
    "    local start = every > 0 and ts - ts % every or nil\n"
    "    if not last or start > last[id] then\n"
    "      redis.call('XADD', serp .. id, 'MAXLEN', '~', maxlen, '*', '" SP_FIELD_TS "', ARGV[j + 6],\n"
    "                 '" SP_FIELD_PRICE "', ARGV[j + 4])\n"
    "      wrote[id] = true\n"
    "      if last then last[id] = start end\n"
    "    end\n"
    "  end\n"
    "  for id in pairs(wrote) do\n"
    "    if last then redis.call('HSET', K_LAST, id, string.format('%d', last[id])) end\n"
    "    if ttl > 0 then redis.call('EXPIRE', serp .. id, ttl) end\n"
    "  end\n"
    "  if last and ttl > 0 and next(wrote) then redis.call('EXPIRE', K_LAST, ttl) end\n"
    "end\n"
    "\n"
    "if #sales > 0 then\n"
    "  write_totals()\n"
    "  write_series()\n"
    "end\n"
    "for p in pairs(dirty) do\n"
    "  redis.call('HSET', K_OFFS, topic .. ':' .. p, string.format('%d', nxt[p]))\n"
    "end\n"
    "return {1, #sales, dups, skipped}\n";

int store_init(struct store *s, const struct store_config *cfg, size_t batch_cap)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->rec_cap = batch_cap;
    size_t argc = 3 + NKEYS + HEAD_ARGS + 2 * batch_cap + REC_ARGS * batch_cap;
    s->text_cap = 64 + batch_cap * (REC_TEXT + PART_TEXT);
    s->argv = calloc(argc, sizeof *s->argv);
    s->argvlen = calloc(argc, sizeof *s->argvlen);
    s->text = malloc(s->text_cap);
    s->parts = calloc(batch_cap, sizeof *s->parts);
    s->last = calloc(batch_cap, sizeof *s->last);
    s->res.behind_part = calloc(batch_cap, sizeof *s->res.behind_part);
    s->res.behind_next = calloc(batch_cap, sizeof *s->res.behind_next);
    if (!s->argv || !s->argvlen || !s->text || !s->parts || !s->last || !s->res.behind_part ||
        !s->res.behind_next) {
        store_free(s);
        return -1;
    }
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
    const char *argv[3] = {"SCRIPT", "LOAD", store_script};
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
    s->c = sp_valkey_connect(s->cfg.url, s->cfg.password, s->cfg.timeout_s, s->err,
                             sizeof s->err);
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

static void push_record(struct store *s, size_t *argc, size_t *used, const struct batch_rec *r)
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
}

/* Fills argv for EVALSHA; returns argc. */
static size_t build_args(struct store *s, const struct batch *b, const int64_t *expected,
                         size_t nexpected)
{
    size_t argc = 0, used = 0;
    push_str(s, &argc, "EVALSHA");
    push_str(s, &argc, s->sha);
    push_num(s, &argc, &used, (int64_t)NKEYS);
    for (size_t i = 0; i < NKEYS; i++)
        push_str(s, &argc, script_keys[i]);
    push_str(s, &argc, s->cfg.topic);
    push_str(s, &argc, SP_KEY_UNITS_CAT);
    push_str(s, &argc, SP_KEY_SERIES);
    push_num(s, &argc, &used, s->cfg.series_ttl_s);
    push_num(s, &argc, &used, s->cfg.series_max_len);
    push_num(s, &argc, &used, s->cfg.series_interval_ms);
    size_t nparts = batch_partitions(b, s->parts, s->last, s->rec_cap);
    push_num(s, &argc, &used, (int64_t)nparts);
    for (size_t i = 0; i < nparts; i++) {
        int32_t p = s->parts[i];
        push_num(s, &argc, &used, p);
        push_num(s, &argc, &used, p >= 0 && (size_t)p < nexpected ? expected[p] : -1);
    }
    for (size_t i = 0; i < b->len; i++)
        push_record(s, &argc, &used, &b->recs[i]);
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
