/* batch.h - the records of one poll, decoded, waiting to be applied to Valkey together.
 *
 * Capacity is fixed at creation (--batch-size), so adding never allocates. A record that does
 * not decode or validate stays in the batch as an offset-only entry: applying it advances its
 * partition's offset and nothing else. Records keep their arrival order, which for each
 * partition is offset order. */
#ifndef CONSUMER_BATCH_H
#define CONSUMER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sale.h"

enum batch_kind {
    BATCH_SALE = 0,    /* a valid sale */
    BATCH_UNDECODABLE, /* not a ProductSaleRequest */
    BATCH_INVALID,     /* decoded, refused by sp_sale_validate */
};

struct batch_rec {
    int32_t partition;
    int64_t offset;
    int64_t ts_ms; /* the sale's time: its Kafka timestamp */
    enum batch_kind kind;
    struct sp_sale sale; /* meaningful for BATCH_SALE only */
};

struct batch {
    struct batch_rec *recs;
    size_t len, cap;
};

/* 0, or -1 when out of memory. */
int batch_init(struct batch *b, size_t cap);
void batch_free(struct batch *b);

static inline int batch_full(const struct batch *b)
{
    return b->len == b->cap;
}
static inline void batch_clear(struct batch *b)
{
    b->len = 0;
}

/* Decodes `value` (protobuf) and appends the record; returns its kind. The batch must not be
 * full. `sale_err` receives the validation failure of a BATCH_INVALID record. */
enum batch_kind batch_add(struct batch *b, int32_t partition, int64_t offset, int64_t ts_ms,
                          const void *value, size_t len, struct sp_sale_error *sale_err);

/* Removes every record of `partition`, keeping the order of the others. Returns how many. */
size_t batch_drop_partition(struct batch *b, int32_t partition);

/* The distinct partitions of the batch in first-seen order, at most `cap` of them; returns
 * the count. For each, `last[i]` receives its highest offset. */
size_t batch_partitions(const struct batch *b, int32_t *parts, int64_t *last, size_t cap);

#endif
