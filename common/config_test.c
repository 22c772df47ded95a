/* config_test.c - defaults, environment and flags, in that order of precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "config.h"

static const char *name;
static long port;
static double ratio;
static int verbose;
static long count;
static const char *level;

static const struct sp_option opts[] = {
    {"name", "CT_NAME", SP_OPT_STRING, &name, "default-name", "a name", SP_ANY},
    {"port", "CT_PORT", SP_OPT_INT, &port, "8080", "a port", SP_RANGE(1, 65535)},
    {"ratio", "CT_RATIO", SP_OPT_DOUBLE, &ratio, "0.5", "a ratio", SP_RANGE(0, 1e6)},
    {"verbose", "CT_VERBOSE", SP_OPT_BOOL, &verbose, "false", "a switch", SP_ANY},
    {"count", "CT_COUNT", SP_OPT_INT, &count, "-5", "no range", SP_ANY},
    {"log-level", "CT_LOG_LEVEL", SP_OPT_LOG_LEVEL, &level, "info", "a level", SP_ANY},
    {0},
};

static int parse(int argc, char **argv)
{
    return sp_config_parse("t", "test", opts, argc, argv);
}

static void test_defaults(void **state)
{
    (void)state;
    char *argv[] = {"t"};
    assert_int_equal(parse(1, argv), 0);
    assert_string_equal(name, "default-name");
    assert_int_equal(port, 8080);
    assert_true(ratio == 0.5);
    assert_int_equal(verbose, 0);
}

static void test_env_then_flags(void **state)
{
    (void)state;
    setenv("CT_PORT", "9000", 1);
    setenv("CT_NAME", "from-env", 1);
    char *argv[] = {"t", "--port=9100", "--verbose", "--ratio", "2.5"};
    assert_int_equal(parse(5, argv), 0);
    assert_int_equal(port, 9100);         /* the flag wins over the environment */
    assert_string_equal(name, "from-env"); /* the environment wins over the default */
    assert_true(ratio == 2.5);
    assert_int_equal(verbose, 1);
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
    assert_int_equal(port, 1);
    assert_true(ratio == 1e6);
    assert_int_equal(count, -99999);      /* SP_ANY: no bound */
    assert_string_equal(level, "WARN");
    char *low[] = {"t", "--port=0"};
    assert_int_equal(parse(2, low), -1);
    char *high[] = {"t", "--port=65536"};
    assert_int_equal(parse(2, high), -1);
    char *frac[] = {"t", "--ratio=-0.001"};
    assert_int_equal(parse(2, frac), -1);
    char *lvl[] = {"t", "--log-level=loud"};
    assert_int_equal(parse(2, lvl), -1);
    setenv("CT_PORT", "70000", 1);         /* the environment is checked as well */
    char *argv[] = {"t"};
    assert_int_equal(parse(1, argv), -1);
    unsetenv("CT_PORT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_bad_values_are_errors),
        cmocka_unit_test(test_ranges_and_levels),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
