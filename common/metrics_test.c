/* metrics_test.c - the Prometheus text format of each kind of metric. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static double forty_two(void *arg)
{
    (void)arg;
    return 42;
}

static void test_render(void **state)
{
    (void)state;
    struct sp_metric *ok = sp_counter_new("t_requests_total", "code=\"202\"", "Requests.");
    struct sp_metric *bad = sp_counter_new("t_requests_total", "code=\"400\"", "Requests.");
    struct sp_metric *g = sp_gauge_new("t_in_flight", NULL, "In flight.");
    struct sp_metric *h = sp_histogram_new("t_latency_seconds", NULL, "Latency.");
    sp_gauge_fn_new("t_answer", NULL, "Answer.", forty_two, NULL);
    sp_counter_add(ok, 3);
    sp_counter_add(bad, 1);
    sp_gauge_add(g, 5);
    sp_gauge_add(g, -2);
    sp_histogram_observe(h, 0.0002);
    sp_histogram_observe(h, 20);

    size_t len;
    char *text = sp_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "t_requests_total{code=\"202\"} 3\n"));
    assert_non_null(strstr(text, "t_requests_total{code=\"400\"} 1\n"));
    /* HELP and TYPE once per name, not once per label set. */
    char *first = strstr(text, "# TYPE t_requests_total counter");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE t_requests_total"));
    assert_non_null(strstr(text, "t_in_flight 3\n"));
    assert_non_null(strstr(text, "t_answer 42\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"10\"} 1\n"));
    assert_non_null(strstr(text, "t_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "t_latency_seconds_count 2\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
