/* store.h - the consumer's side of Valkey: one Lua script (apply.lua), loaded once, applies a
 * whole batch (aggregates + next offset of each partition) atomically, every key it touches
 * passed in KEYS; see ARCHITECTURE.md ("Valkey: the key layout").
 *
 * The script is idempotent: a record is applied only if its offset is at or past the next
 * offset stored for its partition, so a batch may be retried after any error, and a stale
 * batch from a consumer that lost its partitions changes nothing. The caller also says which
 * next offset it believes each partition has; if Valkey holds less (it lost writes: restarted
 * without its AOF tail, or emptied), nothing is applied and the caller must rewind there.
 *
 * Not thread-safe: one store per thread. Connection errors drop the connection; the next call
 * reconnects and reloads the script (as after NOSCRIPT). */
#ifndef CONSUMER_STORE_H
#define CONSUMER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "sale.h"

struct redisContext;

struct store_config {
    const char *url;
    const char *password;    /* used when the URL has none; may be NULL */
    const char *topic;       /* offsets are kept per topic and partition */
    long series_ttl_s;       /* 0: price series never expire */
    long series_max_len;     /* approximate bound of each price series */
    long series_interval_ms; /* at most one point per product and interval; 0: every sale */
    double timeout_s;        /* connect and command timeout */
};

enum store_rc {
    STORE_OK = 0,
    STORE_ERR = -1,    /* Valkey unreachable or refusing; nothing known applied: retry */
    STORE_BEHIND = -2, /* Valkey holds less than believed: nothing applied; rewind */
};

struct store_result {
    long applied;         /* sales added to the aggregates */
    long duplicates;      /* records refused: already applied before */
    long skipped;         /* undecodable/invalid records whose offset advanced */
    size_t behind;        /* STORE_BEHIND: partitions to rewind ... */
    int32_t *behind_part; /* ... these, */
    int64_t *behind_next; /* ... to these offsets (-1: nothing stored, the beginning) */
};

struct store {
    struct store_config cfg;
    struct redisContext *c;
    char sha[41];
    char err[256]; /* why the last call failed */
    /* Scratch for EVALSHA, sized for one full batch at init. */
    const char **argv;
    size_t *argvlen;
    char *text;
    size_t text_cap, rec_cap;
    int32_t *parts;
    int64_t *last;
    uint32_t *slots; /* the batch's distinct products (find_series) */
    size_t nslots, nseries;
    size_t *series_rec;
    uint32_t *series_of;
    char category_keys[SP_CATEGORIES][32];
    struct store_result res;
};

/* 0, or -1 when out of memory. Does not connect. */
int store_init(struct store *s, const struct store_config *cfg, size_t batch_cap);
void store_free(struct store *s);

/* Connects (and loads the script) if not connected. STORE_OK or STORE_ERR. */
enum store_rc store_connect(struct store *s);
int store_connected(const struct store *s);

/* Applies `b`. `expected[p]` (p < nexpected) is the next offset the caller believes partition
 * p has in Valkey, -1 when it does not know. On STORE_OK or STORE_BEHIND, *res points into the
 * store and stays valid until the next call. */
enum store_rc store_apply(struct store *s, const struct batch *b, const int64_t *expected,
                          size_t nexpected, const struct store_result **res);

/* Reads the stored next offset of each of `parts` into out[i] (-1 where none). */
enum store_rc store_read_offsets(struct store *s, const int32_t *parts, size_t n, int64_t *out);

/* Connects if needed and PINGs: tells whether Valkey answers (for /readyz when idle). */
enum store_rc store_ping(struct store *s);

/* WAIT replicas timeout_ms; *acked receives the number of replicas that acknowledged. */
enum store_rc store_wait(struct store *s, long replicas, long timeout_ms, long *acked);

/* apply.lua, embedded by the Makefile (build/gen/lua/consumer/apply.c). */
extern const char consumer_apply_lua[];

#endif
