/* sale.c - validation, JSON and protobuf forms of a sale. See sale.h. */
#include "sale.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "blackfriday.pb-c.h"

static const char *const category_names[SP_CATEGORIES + 1] = {NULL, "Electronica", "Ropa", "Hogar",
                                                              "Belleza"};

static int fail(struct sp_sale_error *err, const char *field, const char *reason)
{
    err->field = field;
    err->reason = reason;
    return -1;
}

int sp_category_parse(const char *text)
{
    for (int c = 1; c <= SP_CATEGORIES; c++)
        if (strcasecmp(text, category_names[c]) == 0)
            return c;
    if (text[0] >= '1' && text[0] <= '4' && text[1] == '\0')
        return text[0] - '0';
    return 0;
}

int sp_category_of_carnet(const char *carnet)
{
    static const int by_digit[10] = {1, 1, 1, 2, 2, 2, 3, 3, 4, 4};
    size_t len = strlen(carnet);
    if (len == 0 || carnet[len - 1] < '0' || carnet[len - 1] > '9')
        return 0;
    return by_digit[carnet[len - 1] - '0'];
}

const char *sp_category_name(int categoria)
{
    return categoria >= 1 && categoria <= SP_CATEGORIES ? category_names[categoria] : NULL;
}

/* Why `id` (`len` bytes) is not a product id, or NULL when it is one: 1-64 code points of
 * valid UTF-8 (RFC 3629: shortest form only, no surrogates, nothing past U+10FFFF), none of
 * them a control character (Unicode category Cc). */
static const char *product_id_problem(const char *id, size_t len)
{
    const unsigned char *s = (const unsigned char *)id;
    size_t chars = 0;
    for (size_t i = 0; i < len; chars++) {
        unsigned cp = s[i], more;
        if (cp < 0x80)
            more = 0;
        else if (cp >= 0xc2 && cp <= 0xdf)
            more = 1, cp &= 0x1f;
        else if (cp >= 0xe0 && cp <= 0xef)
            more = 2, cp &= 0x0f;
        else if (cp >= 0xf0 && cp <= 0xf4)
            more = 3, cp &= 0x07;
        else /* a continuation byte first, 0xc0/0xc1 (always overlong), or 0xf5-0xff */
            return "must be valid UTF-8";
        if (len - i - 1 < more)
            return "must be valid UTF-8";
        for (unsigned k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return "must be valid UTF-8";
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return "must be valid UTF-8"; /* overlong, past Unicode, or a surrogate */
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return "must not contain control characters";
        i += more + 1;
    }
    return chars < 1 || chars > SP_PRODUCT_ID_MAX ? "must be 1-64 characters" : NULL;
}

/* Whether a string of the (valid) JSON text holds \u0000: cJSON would cut the value there, so
 * "Ropa\u0000x" would read as "Ropa". Outside strings valid JSON has no backslash, so every
 * backslash starts an escape. */
static int has_escaped_nul(const char *body, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (body[i] != '\\')
            continue;
        if (body[i + 1] == 'u' && len - i >= 6 && !memcmp(body + i + 2, "0000", 4))
            return 1;
        i++; /* the escaped character: a second backslash starts nothing */
    }
    return 0;
}

int sp_sale_validate(const struct sp_sale *s, struct sp_sale_error *err)
{
    if (s->categoria < 1 || s->categoria > SP_CATEGORIES)
        return fail(err, "categoria", "must be 1-4 or one of Electronica, Ropa, Hogar, Belleza");
    const char *problem = product_id_problem(s->producto_id,
                                             strnlen(s->producto_id, SP_PRODUCT_ID_BYTES + 1));
    if (problem)
        return fail(err, "producto_id", problem);
    if (!isfinite(s->precio) || s->precio <= 0 || s->precio > SP_PRICE_MAX)
        return fail(err, "precio", "must be a number greater than 0 and at most 1000000");
    if (s->cantidad_vendida < 1 || s->cantidad_vendida > SP_UNITS_MAX)
        return fail(err, "cantidad_vendida", "must be an integer from 1 to 100000");
    return 0;
}

static int parse_category(const cJSON *item, struct sp_sale *s, struct sp_sale_error *err)
{
    const char *reason = "must be 1-4 or one of Electronica, Ropa, Hogar, Belleza";
    if (cJSON_IsString(item))
        s->categoria = sp_category_parse(item->valuestring);
    else if (cJSON_IsNumber(item) && item->valuedouble == floor(item->valuedouble) &&
             item->valuedouble >= 1 && item->valuedouble <= SP_CATEGORIES)
        s->categoria = (int)item->valuedouble;
    else
        return fail(err, "categoria", item ? reason : "is required");
    return s->categoria ? 0 : fail(err, "categoria", reason);
}

static int parse_product(const cJSON *item, struct sp_sale *s, struct sp_sale_error *err)
{
    if (!item)
        return fail(err, "producto_id", "is required");
    if (!cJSON_IsString(item))
        return fail(err, "producto_id", "must be a string");
    size_t len = strlen(item->valuestring);
    const char *problem = product_id_problem(item->valuestring, len);
    if (problem)
        return fail(err, "producto_id", problem);
    memcpy(s->producto_id, item->valuestring, len + 1); /* <= SP_PRODUCT_ID_BYTES */
    return 0;
}

static int parse_numbers(const cJSON *price, const cJSON *units, struct sp_sale *s,
                         struct sp_sale_error *err)
{
    if (!price)
        return fail(err, "precio", "is required");
    if (!cJSON_IsNumber(price))
        return fail(err, "precio", "must be a number");
    s->precio = price->valuedouble;
    if (!isfinite(s->precio) || s->precio <= 0 || s->precio > SP_PRICE_MAX)
        return fail(err, "precio", "must be a number greater than 0 and at most 1000000");
    if (!units)
        return fail(err, "cantidad_vendida", "is required");
    double u = cJSON_IsNumber(units) ? units->valuedouble : NAN;
    if (!(u >= 1 && u <= SP_UNITS_MAX && u == floor(u)))
        return fail(err, "cantidad_vendida", "must be an integer from 1 to 100000");
    s->cantidad_vendida = (int32_t)u;
    return 0;
}

int sp_sale_parse_json(const char *body, size_t len, struct sp_sale *s, struct sp_sale_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    int rc = -1;
    if (!root)
        return fail(err, NULL, "malformed JSON");
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != body + len) {
        fail(err, NULL, "the body must be exactly one JSON value: there are bytes after it");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        fail(err, NULL, "the body must be a JSON object");
        goto done;
    }
    if (has_escaped_nul(body, len)) {
        fail(err, NULL, "strings must not contain the NUL character");
        goto done;
    }
    memset(s, 0, sizeof *s);
    if (parse_category(cJSON_GetObjectItemCaseSensitive(root, "categoria"), s, err) < 0 ||
        parse_product(cJSON_GetObjectItemCaseSensitive(root, "producto_id"), s, err) < 0 ||
        parse_numbers(cJSON_GetObjectItemCaseSensitive(root, "precio"),
                      cJSON_GetObjectItemCaseSensitive(root, "cantidad_vendida"), s, err) < 0)
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

size_t sp_sale_to_json(const struct sp_sale *s, char *buf, size_t cap)
{
    /* producto_id is UTF-8 without control characters: only '"' and '\\' need escaping. */
    char id[2 * SP_PRODUCT_ID_BYTES + 1];
    size_t n = 0;
    for (const char *p = s->producto_id; *p; p++) {
        if (*p == '"' || *p == '\\')
            id[n++] = '\\';
        id[n++] = *p;
    }
    id[n] = '\0';
    int len = snprintf(buf, cap,
                       "{\"categoria\":%d,\"producto_id\":\"%s\",\"precio\":%.17g,"
                       "\"cantidad_vendida\":%d}",
                       s->categoria, id, s->precio, (int)s->cantidad_vendida);
    return len > 0 && (size_t)len < cap ? (size_t)len : 0;
}

size_t sp_sale_error_json(const struct sp_sale_error *err, char *buf, size_t cap)
{
    int len = err->field ? snprintf(buf, cap, "{\"error\":\"%s %s\",\"field\":\"%s\"}", err->field,
                                    err->reason, err->field)
                         : snprintf(buf, cap, "{\"error\":\"%s\",\"field\":null}", err->reason);
    return len > 0 && (size_t)len < cap ? (size_t)len : cap - 1;
}

size_t sp_sale_pack(const struct sp_sale *s, uint8_t *buf, size_t cap)
{
    Blackfriday__ProductSaleRequest msg = BLACKFRIDAY__PRODUCT_SALE_REQUEST__INIT;
    msg.categoria = (Blackfriday__CategoriaProducto)s->categoria;
    msg.producto_id = (char *)s->producto_id;
    msg.precio = s->precio;
    msg.cantidad_vendida = s->cantidad_vendida;
    size_t len = blackfriday__product_sale_request__get_packed_size(&msg);
    if (len > cap)
        return 0;
    return blackfriday__product_sale_request__pack(&msg, buf);
}

int sp_sale_unpack(const uint8_t *data, size_t len, struct sp_sale *s)
{
    Blackfriday__ProductSaleRequest *msg = blackfriday__product_sale_request__unpack(NULL, len,
                                                                                     data);
    if (!msg)
        return -1;
    memset(s, 0, sizeof *s);
    s->categoria = (int)msg->categoria;
    /* Too long an id is left empty, so that sp_sale_validate refuses it. */
    size_t idlen = strlen(msg->producto_id);
    if (idlen <= SP_PRODUCT_ID_BYTES)
        memcpy(s->producto_id, msg->producto_id, idlen + 1);
    s->precio = msg->precio;
    s->cantidad_vendida = msg->cantidad_vendida;
    blackfriday__product_sale_request__free_unpacked(msg, NULL);
    return 0;
}

void sp_sale_id_new(char out[SP_SALE_ID_LEN + 1])
{
    /* 64 random bits per process, then a counter: unique without a syscall per sale. */
    static _Atomic uint64_t counter;
    static uint64_t prefix;
    static atomic_flag seeded = ATOMIC_FLAG_INIT;
    static _Atomic int ready;
    if (!atomic_flag_test_and_set(&seeded)) {
        if (getrandom(&prefix, sizeof prefix, 0) != (ssize_t)sizeof prefix)
            prefix = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
        atomic_store(&ready, 1);
    }
    while (!atomic_load(&ready))
        ;
    uint64_t n = atomic_fetch_add(&counter, 1);
    snprintf(out, SP_SALE_ID_LEN + 1, "%016llx%016llx", (unsigned long long)prefix,
             (unsigned long long)n);
}
