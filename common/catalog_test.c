/* catalog_test.c - parsing, validation and lookup of the product catalog, and the committed
 * locust/catalog.json itself. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "catalog.h"
#include "sale.h"

static struct sp_catalog *parse(const char *json, char *err, size_t cap)
{
    return sp_catalog_parse(json, strlen(json), err, cap);
}

static void expect_refused(const char *json, const char *words)
{
    char err[256] = "";
    struct sp_catalog *c = parse(json, err, sizeof err);
    if (c)
        fail_msg("accepted: %s", json);
    if (!strstr(err, words))
        fail_msg("'%s' lacks '%s' for %s", err, words, json);
}

#define P(id, cat)                                                                                 \
    "{\"id\":\"" id "\",\"name\":\"Name " id "\",\"category\":\"" cat "\",\"base_price\":10.5}"

static void test_lookup(void **state)
{
    (void)state;
    char err[256];
    struct sp_catalog *c = parse("{\"version\":1,\"products\":[" P("ELE-001", "Electronica") "," P(
                                     "ROP-002", "Ropa") "," P("Ropa-ni\xc3\xb1o-7", "Ropa") "]}",
                                 err, sizeof err);
    assert_non_null(c);
    assert_int_equal(sp_catalog_count(c), 3);
    const struct sp_catalog_product *p = sp_catalog_find(c, "ROP-002");
    assert_non_null(p);
    assert_string_equal(p->id, "ROP-002");
    assert_string_equal(p->name, "Name ROP-002");
    assert_int_equal(p->categoria, 2);
    assert_true(p->base_price == 10.5);
    assert_non_null(sp_catalog_find(c, "Ropa-ni\xc3\xb1o-7"));
    assert_null(sp_catalog_find(c, "ELE-002"));
    assert_null(sp_catalog_find(c, "ele-001"));
    assert_null(sp_catalog_find(c, ""));
    assert_int_equal(strncmp(sp_catalog_digest(c), "sha256:", 7), 0);
    sp_catalog_free(c);

    c = parse("{\"version\":1,\"products\":[]}", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(sp_catalog_count(c), 0);
    assert_null(sp_catalog_find(c, "ELE-001"));
    sp_catalog_free(c);
    assert_null(sp_catalog_find(NULL, "ELE-001"));
}

/* Many products: every one is found through the index, and absent ids are not. */
static void test_many(void **state)
{
    (void)state;
    size_t n = 5000, cap = n * 96 + 64, len = 0;
    char *json = malloc(cap), err[256], id[32];
    len += (size_t)snprintf(json + len, cap - len, "{\"version\":1,\"products\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len,
                                "%s{\"id\":\"P%zu\",\"name\":\"n\",\"category\":\"Hogar\","
                                "\"base_price\":1}",
                                i ? "," : "", i);
    snprintf(json + len, cap - len, "]}");
    struct sp_catalog *c = parse(json, err, sizeof err);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "P%zu", i);
        const struct sp_catalog_product *p = sp_catalog_find(c, id);
        assert_non_null(p);
        assert_string_equal(p->id, id);
        snprintf(id, sizeof id, "Q%zu", i);
        assert_null(sp_catalog_find(c, id));
    }
    sp_catalog_free(c);
    free(json);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused("", "not a JSON object");
    expect_refused("[]", "not a JSON object");
    expect_refused("{\"products\":[]}", "\"version\" must be 1");
    expect_refused("{\"version\":2,\"products\":[]}", "\"version\" must be 1");
    expect_refused("{\"version\":1}", "\"products\" must be an array");
    expect_refused("{\"version\":1,\"products\":[1]}", "products[0] is not an object");
    expect_refused("{\"version\":1,\"products\":[" P("A", "Ropa") "," P("A", "Hogar") "]}",
                   "products[1].id 'A' is already products[0]");
    expect_refused("{\"version\":1,\"products\":[{\"name\":\"n\",\"category\":\"Ropa\","
                   "\"base_price\":1}]}",
                   "products[0].id");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"\",\"name\":\"n\",\"category\":"
                   "\"Ropa\",\"base_price\":1}]}",
                   "products[0].id");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"a\\nb\",\"name\":\"n\",\"category\":"
                   "\"Ropa\",\"base_price\":1}]}",
                   "control characters");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"a\",\"category\":\"Ropa\","
                   "\"base_price\":1}]}",
                   "products[0].name");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"a\",\"name\":\"n\",\"category\":"
                   "\"Juguetes\",\"base_price\":1}]}",
                   "products[0].category");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"a\",\"name\":\"n\",\"category\":"
                   "\"2\",\"base_price\":1}]}",
                   "products[0].category");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"a\",\"name\":\"n\",\"category\":"
                   "\"Ropa\",\"base_price\":0}]}",
                   "products[0].base_price");
    expect_refused("{\"version\":1,\"products\":[{\"id\":\"a\",\"name\":\"n\",\"category\":"
                   "\"Ropa\",\"base_price\":\"1\"}]}",
                   "products[0].base_price");
}

/* The catalog the repository ships (and `make push` publishes) parses: 300 products, 75 per
 * category, each one found. */
static void test_committed_catalog(void **state)
{
    (void)state;
    char err[512];
    struct sp_catalog *c = sp_catalog_load_file("locust/catalog.json", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(sp_catalog_count(c), 300);
    int per_category[SP_CATEGORIES + 1] = {0};
    const struct sp_catalog_product *p = sp_catalog_find(c, "ELE-001");
    assert_non_null(p);
    assert_string_equal(p->name, "Televisor Quetzal 1");
    assert_int_equal(p->categoria, 1);
    static const char *const prefixes[] = {NULL, "ELE", "ROP", "HOG", "BEL"};
    for (int cat = 1; cat <= SP_CATEGORIES; cat++)
        for (int i = 1; i <= 75; i++) {
            char id[16];
            snprintf(id, sizeof id, "%s-%03d", prefixes[cat], i);
            p = sp_catalog_find(c, id);
            assert_non_null(p);
            per_category[p->categoria]++;
        }
    for (int cat = 1; cat <= SP_CATEGORIES; cat++)
        assert_int_equal(per_category[cat], 75);
    sp_catalog_free(c);

    assert_null(sp_catalog_load_file("locust/no-such-file.json", err, sizeof err));
    assert_non_null(strstr(err, "no-such-file.json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_committed_catalog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
