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

static const char *const category_names[SP_CATEGORIES + 1] = {
    NULL, "Electronica", "Ropa", "Hogar", "Belleza"};

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

const char *sp_category_name(int categoria)
{
    return categoria >= 1 && categoria <= SP_CATEGORIES ? category_names[categoria] : NULL;
}

static int product_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > SP_PRODUCT_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || (unsigned char)id[i] > 0x7e)
            return 0;
    return 1;
}

int sp_sale_validate(const struct sp_sale *s, struct sp_sale_error *err)
{
    if (s->categoria < 1 || s->categoria > SP_CATEGORIES)
        return fail(err, "categoria", "must be 1-4 or one of Electronica, Ropa, Hogar, Belleza");
    if (!product_id_valid(s->producto_id, strnlen(s->producto_id, SP_PRODUCT_ID_MAX + 1)))
        return fail(err, "producto_id", "must be 1-64 printable characters");
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
    if (!product_id_valid(item->valuestring, len))
        return fail(err, "producto_id", "must be 1-64 printable characters");
    memcpy(s->producto_id, item->valuestring, len + 1);
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
    cJSON *root = cJSON_ParseWithLength(body, len);
    int rc = -1;
    if (!root)
        return fail(err, NULL, "malformed JSON");
    if (!cJSON_IsObject(root)) {
        fail(err, NULL, "the body must be a JSON object");
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
    /* producto_id is printable ASCII; only '"' and '\\' need escaping. */
    char id[2 * SP_PRODUCT_ID_MAX + 1];
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
    int len = err->field
        ? snprintf(buf, cap, "{\"error\":\"%s %s\",\"field\":\"%s\"}", err->field, err->reason,
                   err->field)
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
    Blackfriday__ProductSaleRequest *msg =
        blackfriday__product_sale_request__unpack(NULL, len, data);
    if (!msg)
        return -1;
    memset(s, 0, sizeof *s);
    s->categoria = (int)msg->categoria;
    /* Too long an id is left empty, so that sp_sale_validate refuses it. */
    size_t idlen = strlen(msg->producto_id);
    if (idlen <= SP_PRODUCT_ID_MAX)
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
