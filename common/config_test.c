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

static const struct sp_option opts[] = {
    {"name", "CT_NAME", SP_OPT_STRING, &name, "default-name", "a name"},
    {"port", "CT_PORT", SP_OPT_INT, &port, "8080", "a port"},
    {"ratio", "CT_RATIO", SP_OPT_DOUBLE, &ratio, "0.5", "a ratio"},
    {"verbose", "CT_VERBOSE", SP_OPT_BOOL, &verbose, "false", "a switch"},
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_bad_values_are_errors),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
