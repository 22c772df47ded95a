/* seen_test.c - new, same and changed, told from the body we sent and our managedFields entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "kinds.h"
#include "seen.h"

/* An apply response: our Apply entry at `time` over `fields`, plus another manager's entry. */
static cJSON *response(const char *time, const char *fields, const char *other_time)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"metadata\":{\"name\":\"bp-bridge\",\"resourceVersion\":\"%s\","
             "\"managedFields\":[{\"manager\":\"" OP_FIELD_MANAGER "\",\"operation\":\"Apply\","
             "\"time\":\"%s\",\"fieldsV1\":{%s}},"
             "{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\","
             "\"subresource\":\"status\",\"time\":\"%s\",\"fieldsV1\":{\"f:status\":{}}}]}}",
             other_time, time, fields, other_time);
    cJSON *obj = cJSON_Parse(text);
    assert_non_null(obj);
    return obj;
}

static enum seen_result record(struct seen *s, const char *sent_text, cJSON *obj)
{
    cJSON *sent = cJSON_Parse(sent_text);
    assert_non_null(sent);
    enum seen_result r = seen_record(s, "ns/bp", KIND_DEPLOYMENT, sent, obj);
    cJSON_Delete(sent);
    cJSON_Delete(obj);
    return r;
}

#define T0 "2026-11-29T10:00:00Z"
#define T1 "2026-11-29T10:00:01Z"
#define FIELDS "\"f:spec\":{\"f:replicas\":{}}"
#define BODY_1 "{\"spec\":{\"replicas\":1}}"
#define BODY_3 "{\"spec\":{\"replicas\":3}}"

static void test_new_same_changed(void **state)
{
    (void)state;
    struct seen *s = seen_new(4);
    assert_int_equal(record(s, BODY_1, response(T0, FIELDS, "1")), SEEN_NEW);
    /* Someone else's write (a new resourceVersion, their entry moved) is not our change. */
    assert_int_equal(record(s, BODY_1, response(T0, FIELDS, "2")), SEEN_SAME);
    /* Same field set and the same second: only the body we sent tells the change. */
    assert_int_equal(record(s, BODY_3, response(T0, FIELDS, "3")), SEEN_CHANGED);
    assert_int_equal(record(s, BODY_3, response(T0, FIELDS, "3")), SEEN_SAME);
    /* Same body, our entry moved: a drift of ours undone. */
    assert_int_equal(record(s, BODY_3, response(T1, FIELDS, "4")), SEEN_CHANGED);
    seen_forget(s, "ns/bp", KIND_DEPLOYMENT, "bp-bridge");
    assert_int_equal(record(s, BODY_3, response(T1, FIELDS, "4")), SEEN_NEW);
    seen_free(s);
}

/* Past max_owners the table starts over: an object comes back as new, never as changed. */
static void test_bounded(void **state)
{
    (void)state;
    struct seen *s = seen_new(2);
    char owner[32];
    for (int i = 0; i < 3; i++) {
        snprintf(owner, sizeof owner, "ns/p%d", i);
        cJSON *sent = cJSON_Parse(BODY_1), *obj = response(T0, FIELDS, "1");
        assert_int_equal(seen_record(s, owner, KIND_SERVICE, sent, obj), SEEN_NEW);
        cJSON_Delete(sent);
        cJSON_Delete(obj);
    }
    cJSON *sent = cJSON_Parse(BODY_3), *obj = response(T0, FIELDS, "1");
    assert_int_equal(seen_record(s, "ns/p0", KIND_SERVICE, sent, obj), SEEN_NEW);
    cJSON_Delete(sent);
    cJSON_Delete(obj);
    seen_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_same_changed),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
