/* batch.c - see batch.h. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

int batch_init(struct batch *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->recs = calloc(cap ? cap : 1, sizeof *b->recs);
    if (!b->recs)
        return -1;
    b->cap = cap ? cap : 1;
    return 0;
}

void batch_free(struct batch *b)
{
    free(b->recs);
    memset(b, 0, sizeof *b);
}

enum batch_kind batch_add(struct batch *b, int32_t partition, int64_t offset, int64_t ts_ms,
                          const void *value, size_t len, struct sp_sale_error *sale_err)
{
    struct batch_rec *r = &b->recs[b->len++];
    r->partition = partition;
    r->offset = offset;
    r->ts_ms = ts_ms;
    if (sp_sale_unpack(value ? value : "", value ? len : 0, &r->sale) < 0)
        r->kind = BATCH_UNDECODABLE;
    else if (sp_sale_validate(&r->sale, sale_err) < 0)
        r->kind = BATCH_INVALID;
    else
        r->kind = BATCH_SALE;
    return r->kind;
}

size_t batch_drop_partition(struct batch *b, int32_t partition)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->len; i++)
        if (b->recs[i].partition != partition)
            b->recs[kept++] = b->recs[i];
    size_t dropped = b->len - kept;
    b->len = kept;
    return dropped;
}

size_t batch_partitions(const struct batch *b, int32_t *parts, int64_t *last, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) {
        const struct batch_rec *r = &b->recs[i];
        size_t j = 0;
        while (j < n && parts[j] != r->partition)
            j++;
        if (j == n) {
            if (n == cap)
                continue;
            parts[n] = r->partition;
            last[n++] = r->offset;
        } else if (r->offset > last[j]) {
            last[j] = r->offset;
        }
    }
    return n;
}
