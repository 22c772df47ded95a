/* config_test.c - defaults, environment and flags, in that order of precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "config.h"

#define TEST_OPTIONS(X)                                                                            \
    X(name, "name", "CT_NAME", STRING, "default-name", SP_ANY, NONE, "a name")                     \
    X(port, "port", "CT_PORT", INT, 8080, SP_RANGE(1, 65535), NONE, "a port")                      \
    X(ratio, "ratio", "CT_RATIO", DOUBLE, 0.5, SP_RANGE(0, 1e6), NONE, "a ratio")                  \
    X(verbose, "verbose", "CT_VERBOSE", BOOL, 0, SP_ANY, NONE, "a switch")                         \
    X(count, "count", "CT_COUNT", INT, -5, SP_ANY, NONE, "no range")                               \
    X(level, "log-level", "CT_LOG_LEVEL", LOG_LEVEL, "info", SP_ANY, NONE, "a level")

struct test_options {
    TEST_OPTIONS(SP_OPTION_FIELD)
};
static struct test_options v;

#define SP_OPTION_STRUCT struct test_options
static const struct sp_option opts[] = {TEST_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

static int parse(int argc, char **argv)
{
    return sp_config_parse("t", "test", opts, &v, argc, argv);
}

static void test_defaults(void **state)
{
    (void)state;
    char *argv[] = {"t"};
    assert_int_equal(parse(1, argv), 0);
    assert_string_equal(v.name, "default-name");
    assert_int_equal(v.port, 8080);
    assert_true(v.ratio == 0.5);
    assert_int_equal(v.verbose, 0);
}

static void test_check_without_storing(void **state)
{
    (void)state;
    char err[128];
    const struct sp_option *port = sp_option_by_env(opts, "CT_PORT");
    assert_non_null(port);
    assert_int_equal(sp_config_check(port, "443", err, sizeof err), 0);
    assert_int_equal(sp_config_check(port, "0", err, sizeof err), -1);
    assert_string_equal(err, "'0' is not from 1 to 65535");
    assert_int_equal(
        sp_config_check(sp_option_by_env(opts, "CT_LOG_LEVEL"), "loud", err, sizeof err), -1);
    assert_null(sp_option_by_env(opts, "CT_NOPE"));
}

static void test_env_then_flags(void **state)
{
    (void)state;
    setenv("CT_PORT", "9000", 1);
    setenv("CT_NAME", "from-env", 1);
    char *argv[] = {"t", "--port=9100", "--verbose", "--ratio", "2.5"};
    assert_int_equal(parse(5, argv), 0);
    assert_int_equal(v.port, 9100);          /* the flag wins over the environment */
    assert_string_equal(v.name, "from-env"); /* the environment wins over the default */
    assert_true(v.ratio == 2.5);
    assert_int_equal(v.verbose, 1);
    unsetenv("CT_PORT");
    unsetenv("CT_NAME");
}

static void test_bad_values_are_errors(void **state)
{
    (void)state;
    char *bad_int[] = {"t", "--port=80x"};
    assert_int_equal(parse(2, bad_int), -1);
    char *unknown[] = {"t", "--nope=1"};
    assert_int_equal(parse(2, unknown), -1);
    char *missing[] = {"t", "--port"};
    assert_int_equal(parse(2, missing), -1);
    setenv("CT_VERBOSE", "maybe", 1);
    char *argv[] = {"t"};
    assert_int_equal(parse(1, argv), -1);
    unsetenv("CT_VERBOSE");
}

static void test_ranges_and_levels(void **state)
{
    (void)state;
    char *edges[] = {"t", "--port=1", "--ratio=1000000", "--count=-99999", "--log-level=WARN"};
    assert_int_equal(parse(5, edges), 0);
    assert_int_equal(v.port, 1);
    assert_true(v.ratio == 1e6);
    assert_int_equal(v.count, -99999); /* SP_ANY: no bound */
    assert_string_equal(v.level, "WARN");
    char *low[] = {"t", "--port=0"};
    assert_int_equal(parse(2, low), -1);
    char *high[] = {"t", "--port=65536"};
    assert_int_equal(parse(2, high), -1);
    char *frac[] = {"t", "--ratio=-0.001"};
    assert_int_equal(parse(2, frac), -1);
    char *lvl[] = {"t", "--log-level=loud"};
    assert_int_equal(parse(2, lvl), -1);
    setenv("CT_PORT", "70000", 1); /* the environment is checked as well */
    char *argv[] = {"t"};
    assert_int_equal(parse(1, argv), -1);
    unsetenv("CT_PORT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_check_without_storing),
        cmocka_unit_test(test_env_then_flags),    cmocka_unit_test(test_bad_values_are_errors),
        cmocka_unit_test(test_ranges_and_levels),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
