/* bridge_answer_test.c - gRPC outcomes as HTTP answers, and the writer target list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "answer.h"
#include "blackfriday.pb-c.h"
#include "client.h"

static void check(grpc_status_code code, const char *details, unsigned status, int error,
                  const char *body)
{
    struct br_answer a;
    br_answer(&a, code, details, strlen(details), NULL, 0);
    assert_int_equal(a.status, status);
    assert_int_equal(a.error, error);
    assert_int_equal(a.len, strlen(a.body));
    assert_string_equal(a.body, body);
}

static void test_ok(void **state)
{
    (void)state;
    Blackfriday__ProductSaleResponse msg = BLACKFRIDAY__PRODUCT_SALE_RESPONSE__INIT;
    msg.estado = "guardada \"1\"";
    uint8_t buf[64];
    size_t n = blackfriday__product_sale_response__pack(&msg, buf);
    struct br_answer a;
    br_answer(&a, GRPC_STATUS_OK, "", 0, buf, n);
    assert_int_equal(a.status, 202);
    assert_int_equal(a.error, -1);
    assert_string_equal(a.body, "{\"estado\":\"guardada \\\"1\\\"\"}");
    /* OK without a readable reply: stored all the same. */
    br_answer(&a, GRPC_STATUS_OK, "", 0, (const uint8_t *)"\xff\xff", 2);
    assert_string_equal(a.body, "{\"estado\":\"\"}");
    br_answer(&a, GRPC_STATUS_OK, "", 0, NULL, 0);
    assert_int_equal(a.status, 202);
}

static void test_errors(void **state)
{
    (void)state;
    check(GRPC_STATUS_INVALID_ARGUMENT, "cantidad_vendida must be an integer", 400,
          SP_DOWNSTREAM_REJECTED,
          "{\"error\":\"cantidad_vendida must be an integer\",\"field\":\"cantidad_vendida\"}");
    check(GRPC_STATUS_INVALID_ARGUMENT, "bad \"thing\"", 400, SP_DOWNSTREAM_REJECTED,
          "{\"error\":\"bad \\\"thing\\\"\",\"field\":null}");
    check(GRPC_STATUS_INVALID_ARGUMENT, "", 400, SP_DOWNSTREAM_REJECTED,
          "{\"error\":\"invalid sale\",\"field\":null}");
    check(GRPC_STATUS_RESOURCE_EXHAUSTED, "queue full", 503, SP_DOWNSTREAM_OVERLOADED,
          "{\"error\":\"writer overloaded: queue full\"}");
    check(GRPC_STATUS_UNAVAILABLE, "", 503, SP_DOWNSTREAM_UNAVAILABLE,
          "{\"error\":\"writer unavailable\"}");
    check(GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded", 504, SP_DOWNSTREAM_TIMEOUT,
          "{\"error\":\"the writer did not answer in time\"}");
    check(GRPC_STATUS_INTERNAL, "boom", 502, SP_DOWNSTREAM_FAILED,
          "{\"error\":\"writer failed with gRPC status 13: boom\"}");
    check(GRPC_STATUS_CANCELLED, "", 502, SP_DOWNSTREAM_FAILED,
          "{\"error\":\"writer failed with gRPC status 1\"}");
}

static void test_long_details_are_cut(void **state)
{
    (void)state;
    char details[4000];
    memset(details, 'x', sizeof details);
    struct br_answer a;
    br_answer(&a, GRPC_STATUS_INVALID_ARGUMENT, details, sizeof details, NULL, 0);
    assert_int_equal(a.status, 400);
    assert_true(a.len < sizeof a.body);
    assert_int_equal(a.len, strlen(a.body));
    assert_non_null(strstr(a.body, "\"field\":null}"));
}

static void test_split_targets(void **state)
{
    (void)state;
    char buf[256];
    const char *t[BR_GROUPS_MAX];
    assert_int_equal(br_split_targets("ipv4:127.0.0.1:1,127.0.0.1:2", buf, sizeof buf, t, 4), 1);
    assert_string_equal(t[0], "ipv4:127.0.0.1:1,127.0.0.1:2");
    assert_int_equal(br_split_targets(" dns:///a:1 ; dns:///b:1|c ", buf, sizeof buf, t, 4), 3);
    assert_string_equal(t[0], "dns:///a:1");
    assert_string_equal(t[1], "dns:///b:1");
    assert_string_equal(t[2], "c");
    assert_int_equal(br_split_targets("", buf, sizeof buf, t, 4), -1);
    assert_int_equal(br_split_targets("a;", buf, sizeof buf, t, 4), -1);
    assert_int_equal(br_split_targets("a;;b", buf, sizeof buf, t, 4), -1);
    assert_int_equal(br_split_targets(" | a", buf, sizeof buf, t, 4), -1);
    assert_int_equal(br_split_targets("a;b;c;d;e", buf, sizeof buf, t, 4), -1);
    assert_int_equal(br_split_targets("abcdef", buf, 4, t, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_long_details_are_cut),
        cmocka_unit_test(test_split_targets),
    };
    return cmocka_run_group_tests_name("bridge_answer", tests, NULL, NULL);
}
