/* kafka_record_fuzz.c - a Kafka record's value as the consumer decodes it (batch_add:
 * sp_sale_unpack, then sp_sale_validate), on any bytes. Any record is taken, never dropped: a
 * sale, or an offset-only entry (undecodable / invalid, with the field named). A sale is valid
 * and encodes back to a message that decodes to the same sale. */
#include <string.h>

#include "batch.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct batch b;
    if (!b.recs && batch_init(&b, 1) < 0)
        abort();
    batch_clear(&b);
    struct sp_sale_error err = {0};
    enum batch_kind kind = batch_add(&b, 3, 42, 1700000000000, size ? data : NULL, size, &err);
    FUZZ_CHECK(b.len == 1 && b.recs[0].partition == 3 && b.recs[0].offset == 42);
    if (kind == BATCH_INVALID)
        FUZZ_CHECK(err.field && err.reason);
    if (kind != BATCH_SALE)
        return 0;
    const struct sp_sale *sale = &b.recs[0].sale;
    FUZZ_CHECK(sp_sale_validate(sale, &err) == 0);
    FUZZ_CHECK(sp_category_name(sale->categoria) != NULL);
    uint8_t pb[256];
    struct sp_sale again;
    size_t n = sp_sale_pack(sale, pb, sizeof pb);
    FUZZ_CHECK(n > 0 && sp_sale_unpack(pb, n, &again) == 0);
    FUZZ_CHECK(again.categoria == sale->categoria &&
               !strcmp(again.producto_id, sale->producto_id) && again.precio == sale->precio &&
               again.cantidad_vendida == sale->cantidad_vendida);
    return 0;
}
