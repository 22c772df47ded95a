/* batch_test.c - decoding into a batch, offset-only entries, dropping a partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "batch.h"

static size_t pack(int categoria, const char *id, double precio, int units, uint8_t *buf)
{
    struct sp_sale s = {.categoria = categoria, .precio = precio, .cantidad_vendida = units};
    strcpy(s.producto_id, id);
    return sp_sale_pack(&s, buf, 256);
}

static void test_kinds(void **state)
{
    (void)state;
    struct batch b;
    struct sp_sale_error e = {0};
    uint8_t buf[256];
    assert_int_equal(batch_init(&b, 4), 0);
    size_t n = pack(2, "ROPA-1", 19.5, 3, buf);
    assert_int_equal(batch_add(&b, 1, 10, 1000, buf, n, &e), BATCH_SALE);
    assert_string_equal(b.recs[0].sale.producto_id, "ROPA-1");
    assert_int_equal(b.recs[0].sale.cantidad_vendida, 3);
    assert_int_equal(b.recs[0].ts_ms, 1000);
    /* Field 0 with wire type 7 cannot be protobuf. */
    const uint8_t junk[] = {0x07, 0xff, 0x13};
    assert_int_equal(batch_add(&b, 1, 11, 1001, junk, sizeof junk, &e), BATCH_UNDECODABLE);
    n = pack(2, "ROPA-1", -1, 3, buf);
    assert_int_equal(batch_add(&b, 1, 12, 1002, buf, n, &e), BATCH_INVALID);
    assert_string_equal(e.field, "precio");
    /* An empty value decodes to all defaults, which validation refuses. */
    assert_int_equal(batch_add(&b, 1, 13, 1003, NULL, 0, &e), BATCH_INVALID);
    assert_true(batch_full(&b));
    batch_free(&b);
}

static void test_partitions_and_drop(void **state)
{
    (void)state;
    struct batch b;
    struct sp_sale_error e;
    uint8_t buf[256];
    size_t n = pack(1, "ELEC-1", 10, 1, buf);
    assert_int_equal(batch_init(&b, 8), 0);
    const int32_t parts[] = {3, 0, 3, 5, 0, 3};
    const int64_t offs[] = {7, 2, 8, 0, 3, 9};
    for (int i = 0; i < 6; i++)
        batch_add(&b, parts[i], offs[i], 0, buf, n, &e);
    int32_t p[8];
    int64_t last[8];
    assert_int_equal(batch_partitions(&b, p, last, 8), 3);
    assert_int_equal(p[0], 3);
    assert_int_equal(last[0], 9);
    assert_int_equal(p[1], 0);
    assert_int_equal(last[1], 3);
    assert_int_equal(p[2], 5);
    assert_int_equal(last[2], 0);
    assert_int_equal(batch_drop_partition(&b, 3), 3);
    assert_int_equal(b.len, 3);
    /* The others keep their order: partition 0's offsets still ascend. */
    assert_int_equal(b.recs[0].partition, 0);
    assert_int_equal(b.recs[0].offset, 2);
    assert_int_equal(b.recs[1].partition, 5);
    assert_int_equal(b.recs[2].offset, 3);
    batch_clear(&b);
    assert_int_equal(batch_partitions(&b, p, last, 8), 0);
    batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_partitions_and_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
