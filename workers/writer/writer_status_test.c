/* status_test.c - librdkafka errors to gRPC codes: a sale is never answered OK by mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "status.h"

static void test_only_no_error_is_ok(void **state)
{
    (void)state;
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR_NO_ERROR), GRPC_STATUS_OK);
    /* Every error librdkafka can name maps to something other than OK. */
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && descs[i].code != RD_KAFKA_RESP_ERR_NO_ERROR)
            assert_int_not_equal(wr_status_from_kafka(descs[i].code), GRPC_STATUS_OK);
}

static void test_queue_full_is_back_pressure(void **state)
{
    (void)state;
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR__QUEUE_FULL),
                     GRPC_STATUS_RESOURCE_EXHAUSTED);
}

static void test_unreachable_is_unavailable(void **state)
{
    (void)state;
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT),
                     GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR__TRANSPORT), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN),
                     GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS),
                     GRPC_STATUS_UNAVAILABLE);
}

static void test_refused_record_and_the_rest(void **state)
{
    (void)state;
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR__FATAL), GRPC_STATUS_INTERNAL);
    assert_int_equal(wr_status_from_kafka(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER),
                     GRPC_STATUS_INTERNAL);
}

static void test_names_and_labels(void **state)
{
    (void)state;
    assert_string_equal(wr_status_name(GRPC_STATUS_OK), "OK");
    assert_string_equal(wr_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    assert_string_equal(wr_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(wr_status_name((grpc_status_code)99), "UNKNOWN");
    assert_string_equal(wr_status_label(GRPC_STATUS_UNAVAILABLE), "code=\"UNAVAILABLE\"");
    assert_string_equal(wr_status_label((grpc_status_code)-1), "code=\"UNKNOWN\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_no_error_is_ok),
        cmocka_unit_test(test_queue_full_is_back_pressure),
        cmocka_unit_test(test_unreachable_is_unavailable),
        cmocka_unit_test(test_refused_record_and_the_rest),
        cmocka_unit_test(test_names_and_labels),
    };
    return cmocka_run_group_tests_name("writer_status", tests, NULL, NULL);
}
