/* valkey_test.c - redis:// URL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "valkey.h"

static int parse(const char *url, struct sp_valkey_url *u)
{
    char err[128];
    return sp_valkey_url_parse(url, u, err, sizeof err);
}

static void test_defaults(void **state)
{
    (void)state;
    struct sp_valkey_url u;
    assert_int_equal(parse("redis://localhost", &u), 0);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
}

static void test_full(void **state)
{
    (void)state;
    struct sp_valkey_url u;
    assert_int_equal(parse("redis://ana:s%40cr%2Ft@10.0.0.7:6380/3", &u), 0);
    assert_string_equal(u.host, "10.0.0.7");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.user, "ana");
    assert_string_equal(u.password, "s@cr/t");
}

static void test_password_only_and_ipv6(void **state)
{
    (void)state;
    struct sp_valkey_url u;
    assert_int_equal(parse("redis://:pw@[::1]:7000", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "pw");
    assert_int_equal(parse("REDIS://h/", &u), 0);
    assert_int_equal(u.db, 0);
}

static void test_refused(void **state)
{
    (void)state;
    struct sp_valkey_url u;
    const char *bad[] = {"http://h",        "rediss://h",    "redis://",     "redis://h:0",
                         "redis://h:99999", "redis://h:12x", "redis://h/db", "redis://[::1",
                         "redis://:%zz@h",  "redis://:%4@h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], &u), -1);
}

static void test_connect_refused_reports(void **state)
{
    (void)state;
    char err[256];
    /* Port 1 on loopback: nothing listens; the error names the address, never a password. */
    redisContext *c = sp_valkey_connect("redis://:hunter2@127.0.0.1:1", NULL, 1.0, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_null(strstr(err, "hunter2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_password_only_and_ipv6),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_connect_refused_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
