/* sale_test.c - every validation rule of issue 2, the JSON and protobuf forms of a sale, ids. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "blackfriday.pb-c.h"
#include "sale.h"

/* Parses `json`; returns 0 when valid, else checks the refusal names `field` (NULL: the body)
 * and that its reason contains `words`. */
static void expect_refused(const char *json, const char *field, const char *words)
{
    struct sp_sale s;
    struct sp_sale_error err = {0};
    int rc = sp_sale_parse_json(json, strlen(json), &s, &err);
    if (rc == 0)
        fail_msg("accepted: %s", json);
    if (field)
        assert_string_equal(err.field, field);
    else
        assert_null(err.field);
    if (!strstr(err.reason, words))
        fail_msg("reason '%s' lacks '%s' for %s", err.reason, words, json);
}

static struct sp_sale expect_valid(const char *json)
{
    struct sp_sale s;
    struct sp_sale_error err = {0};
    if (sp_sale_parse_json(json, strlen(json), &s, &err) != 0)
        fail_msg("refused (%s %s): %s", err.field ? err.field : "body", err.reason, json);
    assert_int_equal(sp_sale_validate(&s, &err), 0);
    return s;
}

static void test_body(void **state)
{
    (void)state;
    expect_refused("", NULL, "malformed JSON");
    expect_refused("{", NULL, "malformed JSON");
    expect_refused("{\"categoria\":1,}", NULL, "malformed JSON");
    expect_refused("[1,2]", NULL, "JSON object");
    expect_refused("\"sale\"", NULL, "JSON object");
    expect_refused("42", NULL, "JSON object");
    expect_refused("null", NULL, "JSON object");
}

/* Exactly one JSON value per body: anything but whitespace after it is refused, naming why. */
static void test_one_value_per_body(void **state)
{
    (void)state;
    static const char *const sale = "{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1,"
                                    "\"cantidad_vendida\":1}";
    static const char *const after[] = {" x",   "x",    "{}", " {\"categoria\":2}", "]", "}", "0",
                                        "\"\"", "null", ","};
    char json[256];
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        snprintf(json, sizeof json, "%s%s", sale, after[i]);
        expect_refused(json, NULL, "exactly one JSON value");
    }
    snprintf(json, sizeof json, "%s%s", sale, sale); /* two sales back to back */
    expect_refused(json, NULL, "exactly one JSON value");
    snprintf(json, sizeof json, " \r\n\t%s \r\n\t", sale);
    expect_valid(json);
    /* A NUL byte after the object: the length counts, not the C string. */
    struct sp_sale s;
    struct sp_sale_error err = {0};
    size_t n = (size_t)snprintf(json, sizeof json, "%s", sale);
    json[n] = '\0';
    json[n + 1] = 'x';
    assert_int_equal(sp_sale_parse_json(json, n + 2, &s, &err), -1);
    assert_null(err.field);
    assert_non_null(strstr(err.reason, "exactly one JSON value"));
    assert_int_equal(sp_sale_parse_json(json, n, &s, &err), 0);
}

static void test_categoria(void **state)
{
    (void)state;
    static const char *const bad[] = {"0",    "5",     "-1",    "1.5",    "\"Juguetes\"",
                                      "\"\"", "\"0\"", "\"5\"", "\"12\"", "true",
                                      "null", "[1]",   "{}"};
    char json[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"categoria\":%s,\"producto_id\":\"p\",\"precio\":1,\"cantidad_vendida\":1}",
                 bad[i]);
        expect_refused(json, "categoria", "1-4");
    }
    expect_refused("{\"producto_id\":\"p\",\"precio\":1,\"cantidad_vendida\":1}", "categoria",
                   "is required");
    static const struct {
        const char *text;
        int want;
    } good[] = {{"1", 1},
                {"4", 4},
                {"2.0", 2},
                {"\"Electronica\"", 1},
                {"\"electronica\"", 1},
                {"\"ROPA\"", 2},
                {"\"hOgAr\"", 3},
                {"\"Belleza\"", 4},
                {"\"3\"", 3}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"categoria\":%s,\"producto_id\":\"p\",\"precio\":1,\"cantidad_vendida\":1}",
                 good[i].text);
        assert_int_equal(expect_valid(json).categoria, good[i].want);
    }
}

static void test_producto_id(void **state)
{
    (void)state;
    char json[512], id[80];
    static const char *const bad[] = {"12", "null", "[\"a\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"categoria\":1,\"producto_id\":%s,\"precio\":1,\"cantidad_vendida\":1}",
                 bad[i]);
        expect_refused(json, "producto_id", "string");
    }
    expect_refused("{\"categoria\":1,\"producto_id\":\"\",\"precio\":1,\"cantidad_vendida\":1}",
                   "producto_id", "1-64 characters");
    expect_refused("{\"categoria\":1,\"precio\":1,\"cantidad_vendida\":1}", "producto_id",
                   "is required");
    memset(id, 'x', 65);
    id[65] = '\0';
    snprintf(json, sizeof json,
             "{\"categoria\":1,\"producto_id\":\"%s\",\"precio\":1,\"cantidad_vendida\":1}", id);
    expect_refused(json, "producto_id", "1-64 characters");
    id[64] = '\0'; /* exactly 64 */
    snprintf(json, sizeof json,
             "{\"categoria\":1,\"producto_id\":\"%s\",\"precio\":1,\"cantidad_vendida\":1}", id);
    assert_int_equal(strlen(expect_valid(json).producto_id), 64);
    struct sp_sale s = expect_valid(
        "{\"categoria\":1,\"producto_id\":\" ~a\\\"b\\\\c \",\"precio\":1,\"cantidad_vendida\":1}");
    assert_string_equal(s.producto_id, " ~a\"b\\c ");
}

static struct sp_sale with_id(const char *raw, char *json, size_t cap)
{
    snprintf(json, cap,
             "{\"categoria\":2,\"producto_id\":\"%s\",\"precio\":1,"
             "\"cantidad_vendida\":1}",
             raw);
    return expect_valid(json);
}

static void refused_id(const char *raw, const char *words)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"categoria\":2,\"producto_id\":\"%s\",\"precio\":1,"
             "\"cantidad_vendida\":1}",
             raw);
    expect_refused(json, "producto_id", words);
}

/* producto_id is 1-64 Unicode characters of valid UTF-8, counted in characters, not bytes. */
static void test_producto_id_unicode(void **state)
{
    (void)state;
    char json[1024], id[300];
    assert_string_equal(with_id("Ropa-ni\xc3\xb1o-7", json, sizeof json).producto_id,
                        "Ropa-ni\xc3\xb1o-7");
    assert_string_equal(with_id("Ropa-ni\\u00f1o-7", json, sizeof json).producto_id,
                        "Ropa-ni\xc3\xb1o-7"); /* the same, escaped */
    assert_string_equal(with_id("\xe2\x82\xac-\xf0\x9f\x91\x9f", json, sizeof json).producto_id,
                        "\xe2\x82\xac-\xf0\x9f\x91\x9f"); /* 3- and 4-byte forms */
    assert_string_equal(with_id("\\ud83d\\udc5f", json, sizeof json).producto_id,
                        "\xf0\x9f\x91\x9f"); /* a surrogate pair */
    assert_string_equal(with_id("a\\\\u0000b", json, sizeof json).producto_id,
                        "a\\u0000b"); /* an escaped backslash */
    /* 64 four-byte characters (256 bytes) are fine; a 65th is one too many. */
    for (int i = 0; i < 64; i++)
        memcpy(id + 4 * i, "\xf4\x8f\xbf\xbf", 4); /* U+10FFFF */
    id[256] = '\0';
    assert_int_equal(strlen(with_id(id, json, sizeof json).producto_id), 256);
    memcpy(id + 256, "\xc3\xb1", 3);
    refused_id(id, "1-64 characters");

    static const char *const not_utf8[] = {
        "\xc3",             /* cut short */
        "a\xc3(",           /* a lead byte without its continuation */
        "\x80",             /* a continuation byte first */
        "\xc0\xaf",         /* overlong '/' in 2 bytes */
        "\xc1\xbf",         /* overlong U+007F */
        "\xe0\x80\xaf",     /* overlong '/' in 3 bytes */
        "\xe0\x9f\xbf",     /* overlong U+07FF */
        "\xf0\x80\x80\xaf", /* overlong '/' in 4 bytes */
        "\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
        "\xed\xa0\x80",     /* a surrogate (U+D800) encoded directly */
        "\xed\xbf\xbf",     /* U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000: past Unicode */
        "\xf5\x80\x80\x80", /* lead byte past F4 */
        "\xfe",
        "\xff",
        "\xe2\x82",     /* a 3-byte form cut short */
        "\xf0\x9f\x91", /* a 4-byte form cut short */
    };
    for (size_t i = 0; i < sizeof not_utf8 / sizeof not_utf8[0]; i++)
        refused_id(not_utf8[i], "valid UTF-8");
    static const char *const control[] = {"a\\u0001b", "tab\\there", "new\\nline", "del\\u007f",
                                          "c1\\u0085", "c1\xc2\x9f", "esc\x1b",    "\x7f"};
    for (size_t i = 0; i < sizeof control / sizeof control[0]; i++)
        refused_id(control[i], "control characters");
    /* \u0000 would cut the string where cJSON ends it: refused for the body, never shortened. */
    expect_refused("{\"categoria\":1,\"producto_id\":\"a\\u0000b\",\"precio\":1,"
                   "\"cantidad_vendida\":1}",
                   NULL, "NUL");
    expect_refused("{\"categoria\":\"Ropa\\u0000x\",\"producto_id\":\"p\",\"precio\":1,"
                   "\"cantidad_vendida\":1}",
                   NULL, "NUL");
    /* The struct check (writer, consumer) applies the same rule. */
    struct sp_sale s = {.categoria = 1, .precio = 1, .cantidad_vendida = 1};
    struct sp_sale_error err;
    strcpy(s.producto_id, "\xc0\xaf");
    assert_int_equal(sp_sale_validate(&s, &err), -1);
    assert_string_equal(err.field, "producto_id");
    strcpy(s.producto_id, "Ropa-ni\xc3\xb1o-7");
    assert_int_equal(sp_sale_validate(&s, &err), 0);
}

static void test_precio(void **state)
{
    (void)state;
    char json[160];
    static const char *const bad[] = {"0", "-0", "-1", "1000000.01", "1e7", "1e999", "-1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"categoria\":1,\"producto_id\":\"p\",\"precio\":%s,\"cantidad_vendida\":1}",
                 bad[i]);
        expect_refused(json, "precio", "greater than 0 and at most 1000000");
    }
    static const char *const wrong_type[] = {"\"10\"", "null", "true", "[1]"};
    for (size_t i = 0; i < sizeof wrong_type / sizeof wrong_type[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"categoria\":1,\"producto_id\":\"p\",\"precio\":%s,\"cantidad_vendida\":1}",
                 wrong_type[i]);
        expect_refused(json, "precio", "must be a number");
    }
    expect_refused("{\"categoria\":1,\"producto_id\":\"p\",\"cantidad_vendida\":1}", "precio",
                   "is required");
    assert_true(expect_valid("{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1000000,"
                             "\"cantidad_vendida\":1}")
                    .precio == 1000000.0);
    assert_true(expect_valid("{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1e-9,"
                             "\"cantidad_vendida\":1}")
                    .precio == 1e-9);
}

static void test_cantidad(void **state)
{
    (void)state;
    char json[160];
    static const char *const bad[] = {"0",    "-1",   "100001", "1.5", "\"2\"",
                                      "null", "true", "1e9",    "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1,\"cantidad_vendida\":%s}",
                 bad[i]);
        expect_refused(json, "cantidad_vendida", "integer from 1 to 100000");
    }
    expect_refused("{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1}", "cantidad_vendida",
                   "is required");
    assert_int_equal(expect_valid("{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1,"
                                  "\"cantidad_vendida\":100000}")
                         .cantidad_vendida,
                     100000);
    assert_int_equal(expect_valid("{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1,"
                                  "\"cantidad_vendida\":3.0}")
                         .cantidad_vendida,
                     3);
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    struct sp_sale s = expect_valid(
        "{\"extra\":{\"a\":[1,2]},\"categoria\":\"Hogar\",\"producto_id\":\"sku\","
        "\"precio\":19.99,\"cantidad_vendida\":2,\"Categoria\":99}");
    assert_int_equal(s.categoria, 3);
    assert_string_equal(s.producto_id, "sku");
}

/* The first failing field is reported, in the order categoria, producto_id, precio,
 * cantidad_vendida. */
static void test_first_error_wins(void **state)
{
    (void)state;
    expect_refused("{\"categoria\":9,\"producto_id\":\"\",\"precio\":0,\"cantidad_vendida\":0}",
                   "categoria", "1-4");
    expect_refused("{\"categoria\":1,\"producto_id\":\"\",\"precio\":0,\"cantidad_vendida\":0}",
                   "producto_id", "1-64");
    expect_refused("{\"categoria\":1,\"producto_id\":\"p\",\"precio\":0,\"cantidad_vendida\":0}",
                   "precio", "greater");
}

static void test_validate_struct(void **state)
{
    (void)state;
    struct sp_sale s = {.categoria = 2, .producto_id = "p", .precio = 5, .cantidad_vendida = 1};
    struct sp_sale_error err;
    assert_int_equal(sp_sale_validate(&s, &err), 0);
    s.categoria = 0;
    assert_int_equal(sp_sale_validate(&s, &err), -1);
    assert_string_equal(err.field, "categoria");
    s.categoria = 2;
    s.producto_id[0] = '\0';
    assert_int_equal(sp_sale_validate(&s, &err), -1);
    assert_string_equal(err.field, "producto_id");
    strcpy(s.producto_id, "p");
    s.precio = NAN;
    assert_int_equal(sp_sale_validate(&s, &err), -1);
    assert_string_equal(err.field, "precio");
    s.precio = 1;
    s.cantidad_vendida = 100001;
    assert_int_equal(sp_sale_validate(&s, &err), -1);
    assert_string_equal(err.field, "cantidad_vendida");
}

static void test_error_json(void **state)
{
    (void)state;
    char buf[256];
    struct sp_sale_error err = {.field = "precio", .reason = "is required"};
    size_t n = sp_sale_error_json(&err, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf, "{\"error\":\"precio is required\",\"field\":\"precio\"}");
    err = (struct sp_sale_error){.field = NULL, .reason = "malformed JSON"};
    sp_sale_error_json(&err, buf, sizeof buf);
    assert_string_equal(buf, "{\"error\":\"malformed JSON\",\"field\":null}");
}

static void test_category_names(void **state)
{
    (void)state;
    assert_string_equal(sp_category_name(1), "Electronica");
    assert_string_equal(sp_category_name(4), "Belleza");
    assert_null(sp_category_name(0));
    assert_null(sp_category_name(5));
    assert_int_equal(sp_category_parse("belleza"), 4);
    assert_int_equal(sp_category_parse("2"), 2);
    assert_int_equal(sp_category_parse("Electronics"), 0);
}

/* Canonical JSON parses back to the same sale, bit for bit (precio included). */
static void test_json_round_trip(void **state)
{
    (void)state;
    const double prices[] = {0.1, 19.99, 1e-9, 999999.99999999988, 1000000, 1.0 / 3.0};
    for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++) {
        struct sp_sale in = {.categoria = (int)(i % 4) + 1,
                             .precio = prices[i],
                             .cantidad_vendida = (int32_t)(i * 17 + 1)},
                       out;
        snprintf(in.producto_id, sizeof in.producto_id, "id \"%zu\" \\ ~", i);
        char buf[384];
        struct sp_sale_error err;
        size_t n = sp_sale_to_json(&in, buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(n, strlen(buf));
        assert_int_equal(sp_sale_parse_json(buf, n, &out, &err), 0);
        assert_int_equal(out.categoria, in.categoria);
        assert_string_equal(out.producto_id, in.producto_id);
        assert_memory_equal(&out.precio, &in.precio, sizeof in.precio);
        assert_int_equal(out.cantidad_vendida, in.cantidad_vendida);
    }
    struct sp_sale s = {.categoria = 1, .producto_id = "p", .precio = 2.5, .cantidad_vendida = 3};
    char buf[384];
    sp_sale_to_json(&s, buf, sizeof buf);
    assert_string_equal(buf, "{\"categoria\":1,\"producto_id\":\"p\",\"precio\":2.5,"
                             "\"cantidad_vendida\":3}");
    assert_int_equal(sp_sale_to_json(&s, buf, 10), 0); /* too small: 0, never cut */
}

/* The longest valid sales still fit SP_SALE_JSON_MAX and SP_SALE_PB_MAX: 64 characters that
 * each need escaping, and 64 characters of 4 bytes. */
static void test_largest_sale_fits(void **state)
{
    (void)state;
    struct sp_sale s = {.categoria = 4, .precio = 0.123456789012345678, .cantidad_vendida = 100000};
    struct sp_sale_error err;
    char json[SP_SALE_JSON_MAX];
    uint8_t pb[SP_SALE_PB_MAX];
    memset(s.producto_id, '"', SP_PRODUCT_ID_MAX);
    s.producto_id[SP_PRODUCT_ID_MAX] = '\0';
    assert_int_equal(sp_sale_validate(&s, &err), 0);
    assert_true(sp_sale_to_json(&s, json, sizeof json) > 0);
    assert_true(sp_sale_pack(&s, pb, sizeof pb) > 0);
    for (int i = 0; i < SP_PRODUCT_ID_MAX; i++)
        memcpy(s.producto_id + 4 * i, "\xf4\x8f\xbf\xbf", 4);
    s.producto_id[SP_PRODUCT_ID_BYTES] = '\0';
    assert_int_equal(sp_sale_validate(&s, &err), 0);
    assert_true(sp_sale_to_json(&s, json, sizeof json) > 0);
    assert_true(sp_sale_pack(&s, pb, sizeof pb) > 0);
    struct sp_sale back;
    assert_int_equal(sp_sale_unpack(pb, sp_sale_pack(&s, pb, sizeof pb), &back), 0);
    assert_string_equal(back.producto_id, s.producto_id);
}

/* Exact wire bytes of blackfriday.ProductSaleRequest, as any stock protobuf encoder writes them. */
static void test_protobuf_wire(void **state)
{
    (void)state;
    struct sp_sale s = {
        .categoria = 2, .producto_id = "ab", .precio = 1.5, .cantidad_vendida = 300};
    uint8_t buf[64];
    size_t n = sp_sale_pack(&s, buf, sizeof buf);
    static const uint8_t want[] = {
        0x08, 0x02,                                 /* 1: categoria = Ropa */
        0x12, 0x02, 'a',  'b',                      /* 2: producto_id */
        0x19, 0,    0,    0,   0, 0, 0, 0xf8, 0x3f, /* 3: precio, fixed64 1.5 */
        0x20, 0xac, 0x02,                           /* 4: cantidad_vendida, varint 300 */
    };
    assert_int_equal(n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    assert_int_equal(sp_sale_pack(&s, buf, 5), 0); /* too small */
}

static void test_protobuf_round_trip(void **state)
{
    (void)state;
    struct sp_sale in = {.categoria = 3,
                         .producto_id = "sku-9 \"x\"",
                         .precio = 123.456,
                         .cantidad_vendida = 99999},
                   out;
    uint8_t buf[256];
    size_t n = sp_sale_pack(&in, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(sp_sale_unpack(buf, n, &out), 0);
    assert_int_equal(out.categoria, in.categoria);
    assert_string_equal(out.producto_id, in.producto_id);
    assert_true(out.precio == in.precio);
    assert_int_equal(out.cantidad_vendida, in.cantidad_vendida);
    struct sp_sale_error err;
    assert_int_equal(sp_sale_validate(&out, &err), 0);

    /* Decoded with the generated code directly, as a peer would. */
    Blackfriday__ProductSaleRequest *msg = blackfriday__product_sale_request__unpack(NULL, n, buf);
    assert_non_null(msg);
    assert_int_equal(msg->categoria, BLACKFRIDAY__CATEGORIA_PRODUCTO__Hogar);
    assert_string_equal(msg->producto_id, in.producto_id);
    blackfriday__product_sale_request__free_unpacked(msg, NULL);
}

static void test_protobuf_bad_input(void **state)
{
    (void)state;
    struct sp_sale out;
    struct sp_sale_error err;
    static const uint8_t garbage[] = {0x12, 0x10, 'a'}; /* length past the end */
    assert_int_equal(sp_sale_unpack(garbage, sizeof garbage, &out), -1);
    /* An empty message decodes (proto3 defaults) but is not a valid sale. */
    assert_int_equal(sp_sale_unpack((const uint8_t *)"", 0, &out), 0);
    assert_int_equal(sp_sale_validate(&out, &err), -1);
    assert_string_equal(err.field, "categoria");
    /* An id over 64 characters decodes as empty, so validation refuses it. */
    Blackfriday__ProductSaleRequest msg = BLACKFRIDAY__PRODUCT_SALE_REQUEST__INIT;
    char id[100];
    memset(id, 'x', 99);
    id[99] = '\0';
    msg.categoria = 1;
    msg.producto_id = id;
    msg.precio = 1;
    msg.cantidad_vendida = 1;
    uint8_t buf[256];
    size_t n = blackfriday__product_sale_request__pack(&msg, buf);
    assert_int_equal(sp_sale_unpack(buf, n, &out), 0);
    assert_int_equal(sp_sale_validate(&out, &err), -1);
    assert_string_equal(err.field, "producto_id");
}

static void test_sale_ids(void **state)
{
    (void)state;
    char a[SP_SALE_ID_LEN + 1], b[SP_SALE_ID_LEN + 1];
    sp_sale_id_new(a);
    sp_sale_id_new(b);
    assert_int_equal(strlen(a), SP_SALE_ID_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), SP_SALE_ID_LEN);
    assert_string_not_equal(a, b);
    assert_memory_equal(a, b, 16); /* one process prefix, then a counter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_categoria),
        cmocka_unit_test(test_one_value_per_body),
        cmocka_unit_test(test_producto_id),
        cmocka_unit_test(test_producto_id_unicode),
        cmocka_unit_test(test_precio),
        cmocka_unit_test(test_cantidad),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_validate_struct),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_category_names),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_largest_sale_fits),
        cmocka_unit_test(test_protobuf_wire),
        cmocka_unit_test(test_protobuf_round_trip),
        cmocka_unit_test(test_protobuf_bad_input),
        cmocka_unit_test(test_sale_ids),
    };
    return cmocka_run_group_tests_name("sale", tests, NULL, NULL);
}
