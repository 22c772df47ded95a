/* pipeline_test.c - parsing and defaults. The defaults must be the CRD's: the fixture
 * tests/operator/defaulted-spec.json is what the real API server makes of a spec holding only
 * `registry` (tests/operator checks that against the installed CRD); here a spec with only
 * `registry` must parse to exactly what that fixture parses to. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "json_path_test.h"
#include "pipeline.h"
#include "yamljson.h"

#define FIXTURE "tests/operator/defaulted-spec.json"
#define CRD "crds/salespipelines.sales.blackfriday.dev.yaml"
#define META "\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u-1\",\"generation\":1}"

static cJSON *with_spec(cJSON *spec)
{
    cJSON *o = cJSON_Parse("{" META "}");
    cJSON_AddItemToObject(o, "spec", spec);
    return o;
}

static cJSON *read_fixture(void)
{
    FILE *f = fopen(FIXTURE, "rb");
    char buf[16384];
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", FIXTURE);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static void test_defaults_match_crd(void **state)
{
    (void)state;
    struct pipeline a, b;
    char err[256];
    cJSON *full = with_spec(read_fixture());
    cJSON *minimal = with_spec(cJSON_Parse("{\"registry\":\"10.128.0.5:5000/blackfriday\"}"));
    assert_int_equal(pipeline_parse(full, &a, err, sizeof err), 0);
    assert_int_equal(pipeline_parse(minimal, &b, err, sizeof err), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(b.n_writers, 2);
    assert_string_equal(b.writers[1].name, "writer-b");
    assert_int_equal(b.writers[1].replicas, 2);
    assert_int_equal(b.api.cpu_target, 30);
    cJSON_Delete(full);
    cJSON_Delete(minimal);
}

/* The api's deadline: range and default in one place (contract.h), which the CRD must repeat
 * and the parser uses. */
static void test_deadline_range_is_the_contracts(void **state)
{
    (void)state;
    static char text[256 * 1024];
    char err[256];
    FILE *f = fopen(CRD, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", CRD);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    cJSON *crd = yamljson_parse(text, n, "CustomResourceDefinition", err, sizeof err);
    if (!crd)
        fail_msg("%s: %s", CRD, err);
    const cJSON *t = at(crd, "spec.versions.0.schema.openAPIV3Schema.properties.spec.properties."
                             "api.properties.downstreamTimeoutMs");
    assert_int_equal((long)n_at(t, "minimum"), SP_DEADLINE_MIN_MS);
    assert_int_equal((long)n_at(t, "maximum"), SP_DEADLINE_MAX_MS);
    assert_int_equal((long)n_at(t, "default"), SP_DEADLINE_DEFAULT_MS);
    cJSON_Delete(crd);

    struct pipeline p;
    char spec[128];
    snprintf(spec, sizeof spec, "{\"registry\":\"r\",\"api\":{\"downstreamTimeoutMs\":%d}}",
             SP_DEADLINE_MIN_MS);
    cJSON *o = with_spec(cJSON_Parse(spec));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), 0);
    assert_int_equal(p.api.timeout_ms, SP_DEADLINE_MIN_MS);
    cJSON_Delete(o);
    snprintf(spec, sizeof spec, "{\"registry\":\"r\",\"api\":{\"downstreamTimeoutMs\":%d}}",
             SP_DEADLINE_MIN_MS - 1);
    o = with_spec(cJSON_Parse(spec));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "spec.api.downstreamTimeoutMs"));
    cJSON_Delete(o);
}

static void expect_error(const char *spec, const char *field)
{
    struct pipeline p;
    char err[256] = "";
    cJSON *o = with_spec(cJSON_Parse(spec));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), -1);
    if (!strstr(err, field))
        fail_msg("error '%s' does not name '%s'", err, field);
    cJSON_Delete(o);
}

static void test_errors_name_the_field(void **state)
{
    (void)state;
    expect_error("{}", "spec.registry");
    expect_error("{\"registry\":\"r\",\"valkey\":{\"namespace\":\"ns\"}}", "spec.valkey.namespace");
    expect_error("{\"registry\":\"r\",\"api\":{\"minReplicas\":4,\"maxReplicas\":2}}",
                 "spec.api.minReplicas");
    expect_error("{\"registry\":\"r\",\"bridge\":{\"replicas\":\"two\"}}", "spec.bridge.replicas");
    expect_error("{\"registry\":\"r\",\"writers\":[{\"name\":\"a\"},{\"name\":\"a\"}]}",
                 "spec.writers[1].name");
    expect_error("{\"registry\":\"r\",\"writers\":[]}", "spec.writers");
    expect_error("{\"registry\":\"r\",\"kafka\":{\"managed\":false}}", "exactly one Kafka source");
    expect_error("{\"registry\":\"r\",\"kafka\":{\"bootstrapServers\":\"k:9092\"}}",
                 "exactly one Kafka source");
    expect_error("{\"registry\":\"r\",\"kafka\":{\"managed\":false,\"bootstrapServers\":\"k:9092\","
                 "\"security\":{\"protocol\":\"SASL_SSL\",\"caConfigMap\":\"ca\"}}}",
                 "spec.kafka.security.credentialsSecret");
    expect_error("{\"registry\":\"r\",\"kafka\":{\"managed\":false,\"bootstrapServers\":\"k:9092\","
                 "\"security\":{\"protocol\":\"SSL\"}}}",
                 "spec.kafka.security.caConfigMap");
    expect_error("{\"registry\":\"r\",\"kafka\":{\"security\":{\"protocol\":\"SSL\","
                 "\"caConfigMap\":\"ca\"}}}",
                 "spec.kafka.security.protocol");
    expect_error(
        "{\"registry\":\"r\",\"valkey\":{\"url\":\"redis://v:6379\",\"namespace\":\"vms\"}}",
        "spec.valkey.namespace");
    expect_error("{\"registry\":\"r\",\"api\":{\"resources\":{\"limits\":{\"cpu\":true}}}}",
                 "spec.api.resources.limits.cpu");
    expect_error("{\"registry\":\"r\",\"version\":\""
                 "0123456789012345678901234567890123456789012345678901234567890123456789"
                 "0123456789012345678901234567890123456789012345678901234567890123456789\"}",
                 "spec.version");
}

static void test_int_or_string_and_category(void **state)
{
    (void)state;
    struct pipeline p;
    char err[256];
    cJSON *o = with_spec(cJSON_Parse("{\"registry\":\"r\",\"valkey\":{\"cpu\":2},"
                                     "\"grafana\":{\"carnet\":\"202300534\"}}"));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), 0);
    assert_string_equal(p.valkey.cpu, "2");
    assert_string_equal(pipeline_category(p.carnet), "Ropa");
    assert_string_equal(pipeline_category("0"), "Electronica");
    assert_string_equal(pipeline_category("7"), "Hogar");
    assert_string_equal(pipeline_category("8"), "Belleza");
    assert_string_equal(pipeline_category(""), "");
    cJSON_Delete(o);
}

/* The VMs' image and namespace: ours by default, the spec's when it names them. */
static void test_valkey_image_and_namespace(void **state)
{
    (void)state;
    struct pipeline p;
    char err[256];
    cJSON *o = with_spec(cJSON_Parse("{\"registry\":\"zot:5000/bf\",\"version\":\"1.2.3\"}"));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), 0);
    assert_string_equal(p.valkey.image, "zot:5000/bf/valkey-vm:1.2.3");
    assert_string_equal(p.valkey.ns, "ns-data");
    cJSON_Delete(o);
    o = with_spec(cJSON_Parse("{\"registry\":\"r\",\"valkey\":{\"image\":\"other/disk:9\","
                              "\"namespace\":\"vms\"}}"));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), 0);
    assert_string_equal(p.valkey.image, "other/disk:9");
    assert_string_equal(p.valkey.ns, "vms");
    cJSON_Delete(o);
    /* <ns>-data must stay a DNS label: a 60-character namespace needs an explicit one. */
    o = cJSON_Parse("{\"metadata\":{\"name\":\"p\",\"uid\":\"u\",\"namespace\":"
                    "\"n23456789012345678901234567890123456789012345678901234567890\"},"
                    "\"spec\":{\"registry\":\"r\"}}");
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "spec.valkey.namespace"));
    cJSON_Delete(o);
}

/* An external Kafka and Valkey: the workers point at them, nothing is defaulted for VMs. */
static void test_external_kafka_and_valkey(void **state)
{
    (void)state;
    struct pipeline p;
    char err[256], buf[1100];
    cJSON *o = with_spec(cJSON_Parse(
        "{\"registry\":\"r\",\"kafka\":{\"managed\":false,\"bootstrapServers\":\"b-1.kafka:9096,"
        "b-2.kafka:9096\",\"security\":{\"protocol\":\"SASL_SSL\",\"credentialsSecret\":\"kc\","
        "\"caConfigMap\":\"kca\"}},\"valkey\":{\"url\":\"redis://10.0.0.7:6379/2\"}}"));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), 0);
    assert_true(pipeline_kafka_external(&p) && pipeline_kafka_sasl(&p) && pipeline_kafka_tls(&p));
    assert_true(pipeline_valkey_external(&p));
    pipeline_kafka_bootstrap(&p, buf, sizeof buf);
    assert_string_equal(buf, "b-1.kafka:9096,b-2.kafka:9096");
    assert_string_equal(p.kafka.security.sasl_mechanism, "SCRAM-SHA-512");
    assert_string_equal(p.valkey.ns, ""); /* no VMs, no data namespace */
    assert_string_equal(p.valkey.image, "");
    cJSON_Delete(o);
    o = with_spec(cJSON_Parse("{\"registry\":\"r\"}"));
    assert_int_equal(pipeline_parse(o, &p, err, sizeof err), 0);
    assert_false(pipeline_kafka_external(&p) || pipeline_kafka_tls(&p) || pipeline_kafka_sasl(&p));
    assert_false(pipeline_valkey_external(&p));
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_crd),
        cmocka_unit_test(test_deadline_range_is_the_contracts),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_int_or_string_and_category),
        cmocka_unit_test(test_valkey_image_and_namespace),
        cmocka_unit_test(test_external_kafka_and_valkey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
