/* yamljson_test.c - YAML out of cJSON and back: every value keeps its type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "yamljson.h"

static void test_round_trip_keeps_types(void **state)
{
    (void)state;
    /* Strings a YAML 1.1 reader would take for something else must come back as strings. */
    const char *json =
        "{\"perm\":\"0640\",\"yes\":\"yes\",\"t\":\"true\",\"n\":\"null\",\"num\":\"1e3\","
        "\"neg\":\"-1\",\"colon\":\"root:root\",\"hash\":\"a #b\",\"empty\":\"\",\"tilde\":\"~\","
        "\"multi\":\"line one\\nline two\\n\",\"real\":6,\"big\":31536000000,\"frac\":0.25,"
        "\"bool\":false,\"none\":null,\"list\":[[\"/usr/bin/x\"],{\"k\":\"v\"}],\"nothing\":[],"
        "\"obj\":{},\"plain\":\"black-friday\"}";
    cJSON *in = cJSON_Parse(json);
    assert_non_null(in);
    char *yaml = yamljson_emit(in, "#cloud-config\n"), err[128];
    assert_non_null(yaml);
    assert_memory_equal(yaml, "#cloud-config\n", 14);
    assert_non_null(strstr(yaml, "multi: |")); /* literal block for multi-line text */
    assert_non_null(strstr(yaml, "plain: black-friday\n"));
    cJSON *back = yamljson_parse(yaml, strlen(yaml), NULL, err, sizeof err);
    assert_non_null(back);
    if (!cJSON_Compare(in, back, true)) {
        char *got = cJSON_PrintUnformatted(back);
        fail_msg("round trip differs:\n%s\n%s", yaml, got);
    }
    cJSON_Delete(back);
    cJSON_Delete(in);
    free(yaml);
}

static void test_parse_picks_the_kind(void **state)
{
    (void)state;
    const char *text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"
                       "kind: SalesPipeline\nspec:\n  version: \"0.1.0\"\n  n: 6\n  on: true\n";
    char err[128];
    cJSON *o = yamljson_parse(text, strlen(text), "SalesPipeline", err, sizeof err);
    assert_non_null(o);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "version")),
                        "0.1.0");
    assert_true(cJSON_GetObjectItemCaseSensitive(spec, "n")->valuedouble == 6);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "on")));
    cJSON_Delete(o);
    assert_null(yamljson_parse(text, strlen(text), "Deployment", err, sizeof err));
    assert_non_null(strstr(err, "no Deployment document"));
    const char *bad = "a: [1, 2\n";
    assert_null(yamljson_parse(bad, strlen(bad), NULL, err, sizeof err));
    assert_non_null(strstr(err, "YAML error"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_types),
        cmocka_unit_test(test_parse_picks_the_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
