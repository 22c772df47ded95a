/* api_answer_test.c - the bridge's result as the api's answer, for every case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "answer.h"

static const char ID[] = "00112233445566778899aabbccddeeff";

static void check(CURLcode rc, long code, const char *resp, unsigned status, int error,
                  const char *body)
{
    struct api_answer a;
    api_answer(&a, rc, code, resp, resp ? strlen(resp) : 0, ID);
    assert_int_equal(a.status, status);
    assert_int_equal(a.error, error);
    assert_int_equal(a.len, strlen(body));
    assert_memory_equal(a.body, body, a.len);
}

static void test_accepted(void **state)
{
    (void)state;
    check(CURLE_OK, 202, "{\"estado\":\"guardada\"}", 202, -1,
          "{\"estado\":\"guardada\",\"id\":\"00112233445566778899aabbccddeeff\"}");
    check(CURLE_OK, 200, "{\"estado\":\"a\\\"b\"}", 202, -1,
          "{\"estado\":\"a\\\"b\",\"id\":\"00112233445566778899aabbccddeeff\"}");
    /* Stored is stored: a 2xx without a readable estado is still 202. */
    check(CURLE_OK, 202, "not json", 202, -1,
          "{\"estado\":\"\",\"id\":\"00112233445566778899aabbccddeeff\"}");
    check(CURLE_OK, 201, NULL, 202, -1,
          "{\"estado\":\"\",\"id\":\"00112233445566778899aabbccddeeff\"}");
}

static void test_passed_through(void **state)
{
    (void)state;
    const char *bad = "{\"error\":\"precio is required\",\"field\":\"precio\"}";
    check(CURLE_OK, 400, bad, 400, SP_DOWNSTREAM_REJECTED, bad);
    check(CURLE_OK, 503, "{\"error\":\"busy\"}", 503, SP_DOWNSTREAM_OVERLOADED,
          "{\"error\":\"busy\"}");
    check(CURLE_OK, 503, "", 503, SP_DOWNSTREAM_OVERLOADED,
          "{\"error\":\"the bridge is overloaded\"}");
    check(CURLE_OK, 504, "{\"error\":\"late\"}", 504, SP_DOWNSTREAM_TIMEOUT,
          "{\"error\":\"late\"}");
    check(CURLE_OK, 502, "{\"error\":\"writer failed\"}", 502, SP_DOWNSTREAM_FAILED,
          "{\"error\":\"writer failed\"}");
    check(CURLE_OK, 500, "oops", 502, SP_DOWNSTREAM_FAILED,
          "{\"error\":\"the bridge answered HTTP 500\"}");
    check(CURLE_OK, 302, NULL, 502, SP_DOWNSTREAM_FAILED,
          "{\"error\":\"the bridge answered HTTP 302\"}");
}

static void test_transport(void **state)
{
    (void)state;
    check(CURLE_OPERATION_TIMEDOUT, 0, NULL, 504, SP_DOWNSTREAM_TIMEOUT,
          "{\"error\":\"the bridge did not answer in time\"}");
    struct api_answer a;
    CURLcode codes[] = {CURLE_COULDNT_CONNECT, CURLE_GOT_NOTHING,      CURLE_SEND_ERROR,
                        CURLE_RECV_ERROR,      CURLE_SEND_FAIL_REWIND, CURLE_COULDNT_RESOLVE_HOST};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        api_answer(&a, codes[i], 0, NULL, 0, ID);
        assert_int_equal(a.status, 503);
        assert_int_equal(a.error, SP_DOWNSTREAM_UNAVAILABLE);
        assert_non_null(strstr(a.body, "bridge unavailable"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_passed_through),
        cmocka_unit_test(test_transport),
    };
    return cmocka_run_group_tests_name("api_answer", tests, NULL, NULL);
}
