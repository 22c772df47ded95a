/* dashboard_test.c - carnet to category, and the JSON shape from a filled dashboard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "dashboard.h"

static void test_category_of(void **state)
{
    (void)state;
    const int want[10] = {1, 1, 1, 2, 2, 2, 3, 3, 4, 4};
    char carnet[] = "20230053x";
    for (int d = 0; d < 10; d++) {
        carnet[8] = (char)('0' + d);
        assert_int_equal(sp_category_of_carnet(carnet), want[d]);
    }
    assert_int_equal(sp_category_of_carnet(""), 0);
    assert_int_equal(sp_category_of_carnet("12a"), 0);
}

static void test_json(void **state)
{
    (void)state;
    struct dash_point points[2] = {{1700000000000, 19.99}, {1700000000500, 695994.9856831911}};
    struct dashboard d = {.total_sales = 3,
                          .reports = {0, 2, 1, 0, 0},
                          .avg_units = {0, 1.5, 4, 0, 0},
                          .avg_price = {0, 0.1 + 0.2, 7, 0, 0},
                          .max_price = {1, "ELEC-1", 695994.9856831911},
                          .min_price = {1, "ROPA-2", 0.01},
                          .best = {1, "ELEC-1", 9},
                          .least = {1, "ROPA-2", 1},
                          .carnet = "202300533",
                          .categoria = 2,
                          .cat_best = {1, "ROPA-2", 4},
                          .cat_least = {1, "ROPA-2", 4},
                          .points = points,
                          .npoints = 2};
    char *text = dashboard_json(&d);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "total_sales")->valueint, 3);
    cJSON *avg = cJSON_GetObjectItem(root, "avg_price_by_category");
    /* Doubles print exactly: 0.1 + 0.2 is not 0.3. */
    assert_true(cJSON_GetObjectItem(avg, "Electronica")->valuedouble == 0.1 + 0.2);
    assert_true(cJSON_GetObjectItem(avg, "Belleza")->valuedouble == 0);
    assert_non_null(strstr(text, "695994.9856831911"));
    cJSON *a = cJSON_GetObjectItem(root, "assigned");
    assert_string_equal(cJSON_GetObjectItem(a, "categoria")->valuestring, "Ropa");
    cJSON *series = cJSON_GetObjectItem(a, "price_series");
    assert_string_equal(cJSON_GetObjectItem(series, "producto_id")->valuestring, "ROPA-2");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(series, "points")), 2);
    cJSON_Delete(root);
    free(text);
}

/* With a catalog, products it knows get their name beside their id; others do not. */
static void test_names(void **state)
{
    (void)state;
    static const char catalog_json[] =
        "{\"version\":1,\"products\":[{\"id\":\"ROPA-2\",\"name\":\"Camisa Maya 2\","
        "\"category\":\"Ropa\",\"base_price\":20}]}";
    char err[256];
    struct sp_catalog *catalog = sp_catalog_parse(catalog_json, strlen(catalog_json), err,
                                                  sizeof err);
    assert_non_null(catalog);
    struct dashboard d = {.total_sales = 2,
                          .max_price = {1, "ELEC-1", 5},
                          .min_price = {1, "ROPA-2", 1},
                          .best = {1, "ELEC-1", 9},
                          .least = {1, "ROPA-2", 1},
                          .carnet = "3",
                          .categoria = 2,
                          .cat_best = {1, "ROPA-2", 1},
                          .cat_least = {1, "ROPA-2", 1},
                          .catalog = catalog};
    char *text = dashboard_json(&d);
    cJSON *root = cJSON_Parse(text);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "min_price"), "name")->valuestring,
        "Camisa Maya 2");
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "max_price"), "name"));
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "best_selling_product"), "name"));
    cJSON *a = cJSON_GetObjectItem(root, "assigned");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a, "best_selling_product"), "name")->valuestring,
        "Camisa Maya 2");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a, "price_series"), "name")->valuestring,
        "Camisa Maya 2");
    cJSON_Delete(root);
    free(text);

    char *table = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&table, &len);
    dashboard_print(&d, out, 5);
    fclose(out);
    assert_non_null(strstr(table, "ROPA-2"));
    assert_non_null(strstr(table, "(Camisa Maya 2)"));
    free(table);
    sp_catalog_free(catalog);
}

static void test_json_empty(void **state)
{
    (void)state;
    struct dashboard d = {.carnet = "1", .categoria = 1};
    char *text = dashboard_json(&d);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"max_price\":{\"precio\":null,\"producto_id\":null}"));
    assert_non_null(strstr(text, "\"points\":[]"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_category_of),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_json_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
