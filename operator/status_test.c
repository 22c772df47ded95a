/* status_test.c - conditions as documented in status.h, and lastTransitionTime kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "status.h"

static struct pipeline p = {
    .ns = "ns", .name = "bf", .uid = "u", .generation = 2, .ingress = {.enabled = true}};

static void two_components(struct status_input *in, bool ready)
{
    *in = (struct status_input){.p = &p,
                                .observed_generation = 2,
                                .n_comps = 2,
                                .kafka = {.known = true, .ready = true},
                                .valkey = {.known = true, .ready = true},
                                .dashboards = true};
    for (int i = 0; i < 2; i++) {
        struct comp_status *c = &in->comps[i];
        const char *name = i ? "writer-b" : "api";
        snprintf(c->name, sizeof c->name, "%s", name);
        snprintf(c->deployment, sizeof c->deployment, "bf-%s", name);
        c->known = true;
        c->replicas = i ? 2 : 1;
        c->ready = ready ? c->replicas : 0;
        c->is_ready = ready;
    }
}

static const cJSON *cond(const cJSON *built, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(built, "status"), "conditions"))
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "type")), type))
            return c;
    fail_msg("no condition %s", type);
    return NULL;
}

static const char *field(const cJSON *c, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, k));
}

static void expect(const cJSON *b, const char *type, const char *status, const char *reason)
{
    const cJSON *c = cond(b, type);
    assert_string_equal(field(c, "status"), status);
    assert_string_equal(field(c, "reason"), reason);
}

static void test_rolling_then_ready(void **state)
{
    (void)state;
    struct status_input in;
    two_components(&in, false);
    cJSON *b1 = status_build(&in, NULL, "2024-11-29T10:00:00Z");
    expect(b1, "Ready", "False", "ComponentsNotReady");
    expect(b1, "Progressing", "True", "RollingOut");
    expect(b1, "Degraded", "False", "AsExpected");
    assert_string_equal(field(cond(b1, "Ready"), "message"), "waiting for: api 0/1 writer-b 0/2");
    /* Nothing changed: same status, transition times kept. */
    const cJSON *cur1 = cJSON_GetObjectItemCaseSensitive(b1, "status");
    cJSON *b2 = status_build(&in, cur1, "2024-11-29T10:05:00Z");
    assert_true(status_same(b2, cur1));
    two_components(&in, true);
    cJSON *b3 = status_build(&in, cur1, "2024-11-29T10:09:00Z");
    assert_false(status_same(b3, cur1));
    expect(b3, "Ready", "True", "AllComponentsReady");
    expect(b3, "Progressing", "False", "Complete");
    assert_string_equal(field(cond(b3, "Ready"), "lastTransitionTime"), "2024-11-29T10:09:00Z");
    /* Degraded stayed False: its time is the first one. */
    assert_string_equal(field(cond(b3, "Degraded"), "lastTransitionTime"), "2024-11-29T10:00:00Z");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(b3, "status");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(st, "observedGeneration")->valueint, 2);
    cJSON_Delete(b1);
    cJSON_Delete(b2);
    cJSON_Delete(b3);
}

static void test_errors(void **state)
{
    (void)state;
    struct status_input in;
    two_components(&in, true);
    in.observed_generation = 1; /* generation 2 not applied */
    in.error = "apply Deployment bf-api: HTTP 422: bad";
    cJSON *b = status_build(&in, NULL, "t");
    expect(b, "Ready", "False", "ReconcileFailed");
    expect(b, "Progressing", "True", "Reconciling");
    expect(b, "Degraded", "True", "ReconcileFailed");
    assert_string_equal(field(cond(b, "Degraded"), "message"), in.error);
    cJSON_Delete(b);
    in.invalid_spec = true;
    b = status_build(&in, NULL, "t");
    expect(b, "Progressing", "False", "InvalidSpec");
    expect(b, "Degraded", "True", "InvalidSpec");
    cJSON_Delete(b);
    two_components(&in, false);
    in.comps[1].failed = true;
    snprintf(in.comps[1].failure, sizeof in.comps[1].failure, "ProgressDeadlineExceeded: too slow");
    b = status_build(&in, NULL, "t");
    expect(b, "Degraded", "True", "DeploymentFailed");
    expect(b, "Progressing", "False", "ProgressDeadlineExceeded");
    cJSON_Delete(b);
}

static void test_read_deployment(void **state)
{
    (void)state;
    struct comp_status cs = {0};
    cJSON *d = cJSON_Parse("{\"metadata\":{\"generation\":3},\"spec\":{\"replicas\":2},"
                           "\"status\":{\"observedGeneration\":3,\"replicas\":2,"
                           "\"readyReplicas\":2,\"updatedReplicas\":2}}");
    status_read_deployment(d, &cs);
    assert_true(cs.is_ready);
    cJSON_Delete(d);
    memset(&cs, 0, sizeof cs);
    d = cJSON_Parse("{\"metadata\":{\"generation\":4},\"spec\":{\"replicas\":2},"
                    "\"status\":{\"observedGeneration\":3,\"replicas\":2,\"readyReplicas\":2,"
                    "\"updatedReplicas\":2,\"conditions\":[{\"type\":\"ReplicaFailure\","
                    "\"status\":\"True\",\"reason\":\"FailedCreate\",\"message\":\"quota\"}]}}");
    status_read_deployment(d, &cs);
    assert_false(cs.is_ready); /* the controller has not seen generation 4 yet */
    assert_true(cs.failed);
    assert_string_equal(cs.failure, "FailedCreate: quota");
    cJSON_Delete(d);
    char addr[64];
    d = cJSON_Parse("{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"34.1.2.3\"}]}}}");
    status_read_ingress(d, addr, sizeof addr);
    assert_string_equal(addr, "34.1.2.3");
    cJSON_Delete(d);
}

/* status.api from the HPA's status: absent before the controller looked, then the replicas
 * and the CPU against the target (the `kubectl get sp` columns). */
static void test_api_autoscaling(void **state)
{
    (void)state;
    struct status_input in;
    two_components(&in, true);
    p.api.cpu_target = 30;
    cJSON *hpa = cJSON_Parse("{\"status\":{}}");
    status_read_hpa(hpa, &in.api);
    cJSON_Delete(hpa);
    assert_false(in.api.known);
    cJSON *b = status_build(&in, NULL, "t");
    assert_null(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "status"), "api"));
    cJSON_Delete(b);
    hpa = cJSON_Parse("{\"status\":{\"currentReplicas\":2,\"desiredReplicas\":3,"
                      "\"lastScaleTime\":\"2026-11-30T10:00:00Z\",\"currentMetrics\":[{\"type\":"
                      "\"Resource\",\"resource\":{\"name\":\"cpu\",\"current\":{"
                      "\"averageUtilization\":45,\"averageValue\":\"45m\"}}}]}}");
    status_read_hpa(hpa, &in.api);
    cJSON_Delete(hpa);
    b = status_build(&in, NULL, "t");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(b, "status"), "api");
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(api, "currentReplicas")),
                     2);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(api, "desiredReplicas")),
                     3);
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(api, "cpuUtilization")),
                     45);
    assert_string_equal(field(api, "cpu"), "45%/30%");
    assert_string_equal(field(api, "lastScaleTime"), "2026-11-30T10:00:00Z");
    cJSON_Delete(b);
    /* Replicas known, metrics not yet (metrics-server has no sample). */
    hpa = cJSON_Parse("{\"status\":{\"currentReplicas\":1,\"desiredReplicas\":0}}");
    status_read_hpa(hpa, &in.api);
    cJSON_Delete(hpa);
    b = status_build(&in, NULL, "t");
    api = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "status"), "api");
    assert_string_equal(field(api, "cpu"), "<unknown>/30%");
    assert_null(cJSON_GetObjectItemCaseSensitive(api, "cpuUtilization"));
    assert_null(cJSON_GetObjectItemCaseSensitive(api, "desiredReplicas"));
    cJSON_Delete(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rolling_then_ready),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_read_deployment),
        cmocka_unit_test(test_api_autoscaling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
