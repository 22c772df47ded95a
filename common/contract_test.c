/* contract_test.c - the worker tables themselves (contract.h): every default is a value its
 * own parser accepts, names are unique, ports are distinct, and the workers' default deadlines
 * follow the nesting rule that the operator applies to spec.api.downstreamTimeoutMs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "contract.h"

static const struct {
    const char *name;
    const struct sp_option *table;
} tables[] = {
    {"api", sp_api_option_table},
    {"bridge", sp_bridge_option_table},
    {"writer", sp_writer_option_table},
    {"consumer", sp_consumer_option_table},
    {"salesctl dashboard", sp_dashboard_option_table},
};

static void test_defaults_are_valid_and_names_unique(void **state)
{
    (void)state;
    char text[512], err[256];
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (const struct sp_option *o = tables[t].table; o->name; o++) {
            if (o->type == SP_OPT_STRING || o->type == SP_OPT_LOG_LEVEL)
                snprintf(text, sizeof text, "%s", o->def ? o->def : "");
            else
                snprintf(text, sizeof text, "%.17g", o->def_num);
            if (sp_config_check(o, text, err, sizeof err) < 0)
                fail_msg("%s --%s: default %s", tables[t].name, o->name, err);
            for (const struct sp_option *q = tables[t].table; q < o; q++) {
                if (!strcmp(q->name, o->name))
                    fail_msg("%s: --%s twice", tables[t].name, o->name);
                if (q->env && o->env && !strcmp(q->env, o->env))
                    fail_msg("%s: %s twice", tables[t].name, o->env);
            }
            if (o->from != SP_FROM_NONE && !o->env)
                fail_msg("%s --%s: the operator sets it, so it needs a variable", tables[t].name,
                         o->name);
        }
    }
}

static void test_lookups_and_ports(void **state)
{
    (void)state;
    assert_ptr_equal(sp_contract_options("writer"), sp_writer_option_table);
    assert_null(sp_contract_options("salesctl"));
    assert_int_equal(sp_contract_port(sp_api_option_table, SP_FROM_PORT_HTTP), SP_PORT_API);
    assert_int_equal(sp_contract_port(sp_bridge_option_table, SP_FROM_PORT_HTTP), SP_PORT_BRIDGE);
    assert_int_equal(sp_contract_port(sp_writer_option_table, SP_FROM_PORT_GRPC),
                     SP_PORT_WRITER_GRPC);
    assert_int_equal(sp_contract_port(sp_writer_option_table, SP_FROM_PORT_METRICS),
                     SP_PORT_WRITER_HTTP);
    assert_int_equal(sp_contract_port(sp_consumer_option_table, SP_FROM_PORT_METRICS),
                     SP_PORT_CONSUMER_HTTP);
    assert_int_equal(sp_contract_port(sp_consumer_option_table, SP_FROM_PORT_HTTP), -1);
    const struct sp_option *url = sp_option_by_env(sp_api_option_table, "BRIDGE_URL");
    assert_string_equal(url->def, "http://127.0.0.1:8081/ventas");
}

static long default_of(const struct sp_option *table, const char *env)
{
    const struct sp_option *o = sp_option_by_env(table, env);
    assert_non_null(o);
    return (long)o->def_num;
}

static void test_default_deadlines_nest(void **state)
{
    (void)state;
    long api = default_of(sp_api_option_table, "DOWNSTREAM_TIMEOUT_MS"),
         bridge = default_of(sp_bridge_option_table, "DOWNSTREAM_TIMEOUT_MS"),
         writer = default_of(sp_writer_option_table, "DELIVERY_TIMEOUT_MS");
    assert_int_equal(api, SP_DEADLINE_DEFAULT_MS);
    assert_int_equal(bridge, SP_DEADLINE_BRIDGE_MS(api));
    assert_int_equal(writer, SP_DEADLINE_WRITER_MS(api));
    assert_true(api - bridge >= SP_DEADLINE_MARGIN_MIN_MS);
    assert_true(bridge - writer >= SP_DEADLINE_MARGIN_MIN_MS);
    /* Over the whole range the margin holds, and the smallest leaves the writer a second. */
    assert_int_equal(SP_DEADLINE_WRITER_MS(SP_DEADLINE_MIN_MS), 1000);
    for (long t = SP_DEADLINE_MIN_MS; t <= SP_DEADLINE_MAX_MS; t += 250) {
        long b = SP_DEADLINE_BRIDGE_MS(t), w = SP_DEADLINE_WRITER_MS(t);
        assert_true(t - b >= SP_DEADLINE_MARGIN_MIN_MS && t - b >= t / 5);
        assert_true(b - w >= SP_DEADLINE_MARGIN_MIN_MS && w >= 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_valid_and_names_unique),
        cmocka_unit_test(test_lookups_and_ports),
        cmocka_unit_test(test_default_deadlines_nest),
    };
    return cmocka_run_group_tests_name("contract", tests, NULL, NULL);
}
