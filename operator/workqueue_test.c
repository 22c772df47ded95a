/* workqueue_test.c - dedup, dirty-while-processing, delays, back-off, bound, shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "workqueue.h"

static void test_dedup_fifo(void **state)
{
    (void)state;
    struct wq *q = wq_new(100, 0.01, 1);
    char key[WQ_KEY_MAX];
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_add(q, "ns/b"), 0);
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_depth(q), 2);
    assert_int_equal(wq_get(q, key), 1);
    assert_string_equal(key, "ns/a");
    assert_int_equal(wq_get(q, key), 1);
    assert_string_equal(key, "ns/b");
    wq_done(q, "ns/a");
    wq_done(q, "ns/b");
    assert_int_equal(wq_size(q), 0); /* nothing left to remember */
    wq_free(q);
}

static void test_dirty_while_processing(void **state)
{
    (void)state;
    struct wq *q = wq_new(100, 0.01, 1);
    char key[WQ_KEY_MAX];
    wq_add(q, "ns/a");
    assert_int_equal(wq_get(q, key), 1);
    wq_add(q, "ns/a"); /* while processing: not handed out twice */
    assert_int_equal(wq_depth(q), 0);
    wq_done(q, "ns/a"); /* ... but again after done */
    assert_int_equal(wq_depth(q), 1);
    assert_int_equal(wq_get(q, key), 1);
    wq_done(q, key);
    wq_free(q);
}

static void test_delay_and_backoff(void **state)
{
    (void)state;
    struct wq *q = wq_new(100, 0.05, 0.2);
    char key[WQ_KEY_MAX];
    double d1, d2, d3, d4;
    assert_int_equal(wq_add_rate_limited(q, "ns/x", &d1), 0);
    wq_add_rate_limited(q, "ns/x", &d2);
    wq_add_rate_limited(q, "ns/x", &d3);
    wq_add_rate_limited(q, "ns/x", &d4);
    assert_true(d1 == 0.05 && d2 == 0.1 && d3 == 0.2 && d4 == 0.2); /* doubling, capped */
    assert_int_equal(wq_failures(q, "ns/x"), 4);
    assert_int_equal(wq_depth(q), 0);
    double t0 = sp_now();
    assert_int_equal(wq_get(q, key), 1); /* the earliest delay (0.05 s) wins */
    double waited = sp_now() - t0;
    assert_true(waited >= 0.04 && waited < 1.0);
    wq_forget(q, key);
    assert_int_equal(wq_failures(q, key), 0);
    wq_done(q, key);
    assert_int_equal(wq_size(q), 0);
    /* An immediate add overrides a pending delay. */
    wq_add_after(q, "ns/y", 30);
    wq_add(q, "ns/y");
    assert_int_equal(wq_depth(q), 1);
    wq_free(q);
}

static void test_bound(void **state)
{
    (void)state;
    struct wq *q = wq_new(2, 0.01, 1);
    char longkey[WQ_KEY_MAX + 10];
    assert_int_equal(wq_add(q, "ns/1"), 0);
    assert_int_equal(wq_add(q, "ns/2"), 0);
    assert_int_equal(wq_add(q, "ns/3"), -1);
    assert_int_equal(wq_add(q, "ns/1"), 0); /* known keys still merge */
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(wq_add(q, longkey), -1);
    wq_free(q);
}

static void *getter(void *arg)
{
    char key[WQ_KEY_MAX];
    return (void *)(intptr_t)wq_get(arg, key);
}

static void test_shutdown_wakes(void **state)
{
    (void)state;
    struct wq *q = wq_new(10, 0.01, 1);
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, getter, q);
    usleep(50000);
    wq_shutdown(q);
    pthread_join(t, &ret);
    assert_int_equal((intptr_t)ret, 0);
    assert_int_equal(wq_add(q, "ns/a"), -1);
    wq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_fifo),        cmocka_unit_test(test_dirty_while_processing),
        cmocka_unit_test(test_delay_and_backoff), cmocka_unit_test(test_bound),
        cmocka_unit_test(test_shutdown_wakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
