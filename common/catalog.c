/* catalog.c - the product catalog. See catalog.h.
 *
 * One allocation for the products, one for their strings, one for the index: an open
 * addressing hash table (FNV-1a, linear probing, at most half full) of product positions. */
#include "catalog.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sale.h"

#define CATALOG_ID_MAX 256 /* bytes; a sale's producto_id is shorter still */
#define CATALOG_NAME_MAX 512
#define CATALOG_EMPTY UINT32_MAX /* a free slot of the index */

struct sp_catalog {
    struct sp_catalog_product *products;
    size_t count;
    char *strings;     /* every id and name, NUL-terminated, back to back */
    uint32_t *index;   /* product positions; CATALOG_EMPTY where free */
    size_t index_mask; /* slots - 1, slots a power of two */
    char digest[SP_OCI_DIGEST_MAX];
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding `id`, or the free slot where it would go. */
static size_t slot_of(const struct sp_catalog *c, const char *id)
{
    size_t i = (size_t)hash_id(id) & c->index_mask;
    while (c->index[i] != CATALOG_EMPTY && strcmp(c->products[c->index[i]].id, id) != 0)
        i = (i + 1) & c->index_mask;
    return i;
}

const struct sp_catalog_product *sp_catalog_find(const struct sp_catalog *c, const char *id)
{
    if (!c || !c->count)
        return NULL;
    uint32_t at = c->index[slot_of(c, id)];
    return at == CATALOG_EMPTY ? NULL : &c->products[at];
}

size_t sp_catalog_count(const struct sp_catalog *c)
{
    return c ? c->count : 0;
}

const struct sp_catalog_product *sp_catalog_at(const struct sp_catalog *c, size_t i)
{
    return &c->products[i];
}

const char *sp_catalog_digest(const struct sp_catalog *c)
{
    return c->digest;
}

void sp_catalog_free(struct sp_catalog *c)
{
    if (!c)
        return;
    free(c->products);
    free(c->strings);
    free(c->index);
    free(c);
}

static int text_ok(const cJSON *item, size_t max)
{
    if (!cJSON_IsString(item))
        return 0;
    size_t n = strlen(item->valuestring);
    if (n == 0 || n > max)
        return 0;
    for (const unsigned char *p = (const unsigned char *)item->valuestring; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* Checks product `i` and copies its strings to `*strings`. 0, or -1 with the reason. */
static int take_product(const cJSON *p, size_t i, struct sp_catalog_product *out, char **strings,
                        char *err, size_t cap)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
    const cJSON *cat = cJSON_GetObjectItemCaseSensitive(p, "category");
    const cJSON *price = cJSON_GetObjectItemCaseSensitive(p, "base_price");
    if (!cJSON_IsObject(p))
        return sp_fail(err, cap, "products[%zu] is not an object", i);
    if (!text_ok(id, CATALOG_ID_MAX))
        return sp_fail(err, cap,
                       "products[%zu].id must be 1-%d characters, no control "
                       "characters",
                       i, CATALOG_ID_MAX);
    if (!text_ok(name, CATALOG_NAME_MAX))
        return sp_fail(err, cap,
                       "products[%zu].name must be 1-%d characters, no control "
                       "characters",
                       i, CATALOG_NAME_MAX);
    int categoria = cJSON_IsString(cat) ? sp_category_parse(cat->valuestring) : 0;
    if (!categoria || !sp_category_name(categoria) ||
        strcmp(cat->valuestring, sp_category_name(categoria)) != 0)
        return sp_fail(err, cap,
                       "products[%zu].category must be Electronica, Ropa, Hogar or "
                       "Belleza",
                       i);
    if (!cJSON_IsNumber(price) || !isfinite(price->valuedouble) || price->valuedouble <= 0 ||
        price->valuedouble > SP_PRICE_MAX)
        return sp_fail(err, cap, "products[%zu].base_price must be a number > 0 and <= %.0f", i,
                       SP_PRICE_MAX);
    size_t id_len = strlen(id->valuestring) + 1, name_len = strlen(name->valuestring) + 1;
    memcpy(*strings, id->valuestring, id_len);
    out->id = *strings;
    *strings += id_len;
    memcpy(*strings, name->valuestring, name_len);
    out->name = *strings;
    *strings += name_len;
    out->categoria = categoria;
    out->base_price = price->valuedouble;
    return 0;
}

/* Sizes the index and fills it; a second product with the same id is an error. */
static int build_index(struct sp_catalog *c, char *err, size_t cap)
{
    size_t slots = 16;
    while (slots < 2 * c->count)
        slots *= 2;
    if (!(c->index = malloc(slots * sizeof *c->index)))
        return sp_fail(err, cap, "out of memory");
    memset(c->index, 0xff, slots * sizeof *c->index); /* CATALOG_EMPTY */
    c->index_mask = slots - 1;
    for (size_t i = 0; i < c->count; i++) {
        size_t s = slot_of(c, c->products[i].id);
        if (c->index[s] != CATALOG_EMPTY)
            return sp_fail(err, cap, "products[%zu].id '%s' is already products[%u]", i,
                           c->products[i].id, c->index[s]);
        c->index[s] = (uint32_t)i;
    }
    return 0;
}

struct sp_catalog *sp_catalog_parse(const char *json, size_t len, char *err, size_t errcap)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    struct sp_catalog *c = calloc(1, sizeof *c);
    if (!c) {
        sp_fail(err, errcap, "out of memory");
        goto fail;
    }
    sp_oci_sha256(json, len, c->digest);
    if (!cJSON_IsObject(root)) {
        sp_fail(err, errcap, "not a JSON object");
        goto fail;
    }
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *products = cJSON_GetObjectItemCaseSensitive(root, "products");
    if (!cJSON_IsNumber(version) || version->valuedouble != 1) {
        sp_fail(err, errcap, "\"version\" must be 1");
        goto fail;
    }
    if (!cJSON_IsArray(products)) {
        sp_fail(err, errcap, "\"products\" must be an array");
        goto fail;
    }
    size_t n = (size_t)cJSON_GetArraySize(products);
    if (n >= CATALOG_EMPTY) {
        sp_fail(err, errcap, "too many products");
        goto fail;
    }
    /* The strings of every product fit in the text they came from. */
    if (!(c->products = calloc(n ? n : 1, sizeof *c->products)) ||
        !(c->strings = malloc(len + 1))) {
        sp_fail(err, errcap, "out of memory");
        goto fail;
    }
    char *strings = c->strings;
    const cJSON *p;
    cJSON_ArrayForEach (p, products) {
        if (take_product(p, c->count, &c->products[c->count], &strings, err, errcap) < 0)
            goto fail;
        c->count++;
    }
    if (build_index(c, err, errcap) < 0)
        goto fail;
    cJSON_Delete(root);
    return c;
fail:
    cJSON_Delete(root);
    sp_catalog_free(c);
    return NULL;
}

struct sp_catalog *sp_catalog_load_file(const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sp_fail(err, errcap, "cannot open %s", path);
        return NULL;
    }
    char *text = malloc(SP_CATALOG_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, SP_CATALOG_MAX_BYTES + 1, f) : 0;
    int bad = !text || ferror(f) || n > SP_CATALOG_MAX_BYTES;
    fclose(f);
    struct sp_catalog *c = NULL;
    if (bad) {
        sp_fail(err, errcap, "cannot read %s (or it is over %u bytes)", path, SP_CATALOG_MAX_BYTES);
    } else {
        char why[256];
        if (!(c = sp_catalog_parse(text, n, why, sizeof why)))
            sp_fail(err, errcap, "%s: %s", path, why);
    }
    free(text);
    return c;
}

struct sp_catalog *sp_catalog_pull(struct sp_oci_client *client, const char *reference, char *err,
                                   size_t errcap)
{
    struct sp_oci_blob blob;
    if (sp_oci_pull_layer(client, reference, SP_CATALOG_MEDIA_TYPE, SP_CATALOG_MAX_BYTES, &blob,
                          err, errcap) < 0)
        return NULL;
    char why[256];
    struct sp_catalog *c = sp_catalog_parse(blob.data, blob.len, why, sizeof why);
    if (!c)
        sp_fail(err, errcap, "%s (layer %s): %s", reference, blob.digest, why);
    sp_oci_blob_free(&blob);
    return c;
}
