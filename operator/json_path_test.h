/* json_path_test.h - reading built objects in the operator's unit tests, by dotted path.
 * Include after <cmocka.h> (n_at asserts). Static inline: each test file uses what it needs. */
#ifndef OP_JSON_PATH_TEST_H
#define OP_JSON_PATH_TEST_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Follows a path of object keys and array indexes ("spec.template.spec.containers.0.image"). */
static inline const cJSON *at(const cJSON *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save))
        o = (*p >= '0' && *p <= '9') ? cJSON_GetArrayItem(o, atoi(p))
                                     : cJSON_GetObjectItemCaseSensitive(o, p);
    return o;
}

static inline const char *s_at(const cJSON *o, const char *path)
{
    const char *s = cJSON_GetStringValue(at(o, path));
    return s ? s : "(missing)";
}

/* A key that contains dots (labels, annotations). */
static inline const char *key(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? s : "(missing)";
}

static inline double n_at(const cJSON *o, const char *path)
{
    const cJSON *n = at(o, path);
    assert_true(cJSON_IsNumber(n));
    return n->valuedouble;
}

#endif
