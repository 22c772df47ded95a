/* dashboard.c - see dashboard.h. */
#include "dashboard.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sales_keys.h"
#include "log.h"
#include "valkey.h"

enum panel {
    P_TOTAL,
    P_REPORTS,
    P_AVG_UNITS,
    P_AVG_PRICE,
    P_MAX,
    P_MIN,
    P_BEST,
    P_LEAST,
    P_CAT_BEST,
    P_CAT_LEAST,
    P_COUNT
};

static int is_string(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_STRING;
}

static void copy_id(char *dst, const redisReply *r)
{
    size_t n = r->len < SP_PRODUCT_ID_BYTES ? r->len : SP_PRODUCT_ID_BYTES;
    memcpy(dst, r->str, n);
    dst[n] = '\0';
}

/* A flat HGETALL reply keyed by category name into `out[1..4]`. */
static void read_by_category(const redisReply *r, double *out)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        int c = is_string(k) ? sp_category_parse(k->str) : 0;
        if (c && is_string(v))
            out[c] = strtod(v->str, NULL);
    }
}

/* HGETALL of a max/min price hash. */
static void read_price(const redisReply *r, struct dash_price *p)
{
    int have_price = 0, have_id = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (!is_string(k) || !is_string(v))
            continue;
        if (!strcmp(k->str, SP_FIELD_PRICE)) {
            p->precio = strtod(v->str, NULL);
            have_price = 1;
        } else if (!strcmp(k->str, SP_FIELD_PRODUCT)) {
            copy_id(p->id, v);
            have_id = 1;
        }
    }
    p->present = have_price && have_id;
}

/* ZRANGE ... 0 0 WITHSCORES: [member, score] or empty. */
static void read_product(const redisReply *r, struct dash_product *p)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_string(r->element[0]) ||
        !is_string(r->element[1]))
        return;
    copy_id(p->id, r->element[0]);
    p->units = strtod(r->element[1]->str, NULL);
    p->present = 1;
}

static void read_panels(const redisReply *exec, struct dashboard *d)
{
    const redisReply *const *e = (const redisReply *const *)exec->element;
    if (is_string(e[P_TOTAL]))
        d->total_sales = strtoll(e[P_TOTAL]->str, NULL, 10);
    double reports[SP_CATEGORIES + 1] = {0};
    read_by_category(e[P_REPORTS], reports);
    for (int c = 1; c <= SP_CATEGORIES; c++)
        d->reports[c] = (long long)reports[c];
    read_by_category(e[P_AVG_UNITS], d->avg_units);
    read_by_category(e[P_AVG_PRICE], d->avg_price);
    read_price(e[P_MAX], &d->max_price);
    read_price(e[P_MIN], &d->min_price);
    read_product(e[P_BEST], &d->best);
    read_product(e[P_LEAST], &d->least);
    read_product(e[P_CAT_BEST], &d->cat_best);
    read_product(e[P_CAT_LEAST], &d->cat_least);
}

/* Queues MULTI, one read per panel, EXEC. */
static int queue_panels(redisContext *c, const char *cat_key)
{
    int rc = 0;
    rc |= redisAppendCommand(c, "MULTI");
    rc |= redisAppendCommand(c, "GET %s", SP_KEY_TOTAL_SALES);
    rc |= redisAppendCommand(c, "HGETALL %s", SP_KEY_REPORTS);
    rc |= redisAppendCommand(c, "HGETALL %s", SP_KEY_AVG_UNITS);
    rc |= redisAppendCommand(c, "HGETALL %s", SP_KEY_AVG_PRICE);
    rc |= redisAppendCommand(c, "HGETALL %s", SP_KEY_MAX_PRICE);
    rc |= redisAppendCommand(c, "HGETALL %s", SP_KEY_MIN_PRICE);
    rc |= redisAppendCommand(c, "ZREVRANGE %s 0 0 WITHSCORES", SP_KEY_UNITS);
    rc |= redisAppendCommand(c, "ZRANGE %s 0 0 WITHSCORES", SP_KEY_UNITS);
    rc |= redisAppendCommand(c, "ZREVRANGE %s 0 0 WITHSCORES", cat_key);
    rc |= redisAppendCommand(c, "ZRANGE %s 0 0 WITHSCORES", cat_key);
    rc |= redisAppendCommand(c, "EXEC");
    return rc ? -1 : 0;
}

static int read_snapshot(redisContext *c, struct dashboard *d, char *err, size_t errlen)
{
    char cat_key[64], why[200];
    snprintf(cat_key, sizeof cat_key, "%s%s", SP_KEY_UNITS_CAT, sp_category_name(d->categoria));
    if (queue_panels(c, cat_key) < 0)
        return sp_fail(err, errlen, "queueing the reads: %s", c->errstr);
    redisReply *r = NULL;
    /* MULTI's +OK and each +QUEUED, then EXEC's array. */
    for (int i = 0; i < P_COUNT + 1; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR) {
            sp_fail(err, errlen, "reading the dashboard: %s",
                    sp_valkey_strerror(c, r, "OK", why, sizeof why));
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    int rc = 0;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_ARRAY ||
        r->elements != P_COUNT)
        rc = sp_fail(err, errlen, "reading the dashboard: %s",
                     sp_valkey_strerror(c, r, "EXEC's array", why, sizeof why));
    else
        read_panels(r, d);
    freeReplyObject(r);
    return rc;
}

static int point_cmp(const void *a, const void *b)
{
    const struct dash_point *x = a, *y = b;
    return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
}

/* One XRANGE entry: [id, [field, value, ...]]. 0 when it holds a price. */
static int read_point(const redisReply *e, struct dash_point *pt)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !is_string(e->element[0]) ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    int have_price = 0;
    pt->ts_ms = strtoll(e->element[0]->str, NULL, 10); /* the id's time, if no ts field */
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (!is_string(f->element[i]) || !is_string(f->element[i + 1]))
            continue;
        if (!strcmp(f->element[i]->str, SP_FIELD_TS))
            pt->ts_ms = strtoll(f->element[i + 1]->str, NULL, 10);
        else if (!strcmp(f->element[i]->str, SP_FIELD_PRICE)) {
            pt->precio = strtod(f->element[i + 1]->str, NULL);
            have_price = 1;
        }
    }
    return have_price ? 0 : -1;
}

static int read_series(redisContext *c, struct dashboard *d, char *err, size_t errlen)
{
    if (!d->cat_best.present)
        return 0;
    char why[200];
    redisReply *r = redisCommand(c, "XRANGE %s%s - +", SP_KEY_SERIES, d->cat_best.id);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        sp_fail(err, errlen, "reading the price series: %s",
                sp_valkey_strerror(c, r, "an array", why, sizeof why));
        freeReplyObject(r);
        return -1;
    }
    d->points = calloc(r->elements ? r->elements : 1, sizeof *d->points);
    if (!d->points) {
        freeReplyObject(r);
        return sp_fail(err, errlen, "out of memory for %zu points", r->elements);
    }
    for (size_t i = 0; i < r->elements; i++)
        if (read_point(r->element[i], &d->points[d->npoints]) == 0)
            d->npoints++;
    freeReplyObject(r);
    /* Entries are in arrival order; sales from several partitions may interleave in time. */
    qsort(d->points, d->npoints, sizeof *d->points, point_cmp);
    return 0;
}

int dashboard_read(redisContext *c, const char *carnet, struct dashboard *d, char *err,
                   size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->categoria = sp_category_of_carnet(carnet);
    if (!d->categoria || strlen(carnet) > DASH_CARNET_MAX)
        return sp_fail(err, errlen, "the carnet '%s' must end in a digit (at most %d characters)",
                       carnet, DASH_CARNET_MAX);
    snprintf(d->carnet, sizeof d->carnet, "%s", carnet);
    if (read_snapshot(c, d, err, errlen) < 0 || read_series(c, d, err, errlen) < 0) {
        dashboard_free(d);
        return -1;
    }
    return 0;
}

void dashboard_free(struct dashboard *d)
{
    free(d->points);
    d->points = NULL;
    d->npoints = 0;
}

/* ---------------------------------------------------------------- JSON */

/* cJSON prints doubles with 15 digits unless that is "close enough" to the value, which
 * changes some prices in the last digit. The shortest text that reads back as the same double
 * goes in raw instead. */
static cJSON *json_double(double v)
{
    char text[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return cJSON_CreateRaw(text);
}

/* The catalog's name of a product, or NULL. */
static const char *name_of(const struct dashboard *d, int present, const char *id)
{
    const struct sp_catalog_product *p = present ? sp_catalog_find(d->catalog, id) : NULL;
    return p ? p->name : NULL;
}

static void json_name(cJSON *o, const struct dashboard *d, int present, const char *id)
{
    const char *name = name_of(d, present, id);
    if (name)
        cJSON_AddStringToObject(o, "name", name);
}

static cJSON *json_product(const struct dashboard *d, const struct dash_product *p)
{
    cJSON *o = cJSON_CreateObject();
    if (p->present) {
        cJSON_AddStringToObject(o, "producto_id", p->id);
        json_name(o, d, p->present, p->id);
        cJSON_AddNumberToObject(o, "units", p->units);
    } else {
        cJSON_AddNullToObject(o, "producto_id");
        cJSON_AddNumberToObject(o, "units", 0);
    }
    return o;
}

static cJSON *json_price(const struct dashboard *d, const struct dash_price *p)
{
    cJSON *o = cJSON_CreateObject();
    if (p->present) {
        cJSON_AddItemToObject(o, "precio", json_double(p->precio));
        cJSON_AddStringToObject(o, "producto_id", p->id);
        json_name(o, d, p->present, p->id);
    } else {
        cJSON_AddNullToObject(o, "precio");
        cJSON_AddNullToObject(o, "producto_id");
    }
    return o;
}

static cJSON *json_by_category(const double *v)
{
    cJSON *o = cJSON_CreateObject();
    for (int c = 1; c <= SP_CATEGORIES; c++)
        cJSON_AddItemToObject(o, sp_category_name(c), json_double(v[c]));
    return o;
}

static cJSON *json_series(const struct dashboard *d)
{
    cJSON *s = cJSON_CreateObject(), *points = cJSON_CreateArray();
    if (d->cat_best.present) {
        cJSON_AddStringToObject(s, "producto_id", d->cat_best.id);
        json_name(s, d, 1, d->cat_best.id);
    } else
        cJSON_AddNullToObject(s, "producto_id");
    for (size_t i = 0; i < d->npoints; i++) {
        cJSON *pt = cJSON_CreateArray();
        cJSON_AddItemToArray(pt, cJSON_CreateNumber((double)d->points[i].ts_ms));
        cJSON_AddItemToArray(pt, json_double(d->points[i].precio));
        cJSON_AddItemToArray(points, pt);
    }
    cJSON_AddItemToObject(s, "points", points);
    return s;
}

static cJSON *json_assigned(const struct dashboard *d)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "carnet", d->carnet);
    cJSON_AddStringToObject(a, "categoria", sp_category_name(d->categoria));
    cJSON_AddItemToObject(a, "best_selling_product", json_product(d, &d->cat_best));
    cJSON_AddItemToObject(a, "least_selling_product", json_product(d, &d->cat_least));
    cJSON_AddItemToObject(a, "price_series", json_series(d));
    return a;
}

char *dashboard_json(const struct dashboard *d)
{
    cJSON *root = cJSON_CreateObject();
    double reports[SP_CATEGORIES + 1] = {0};
    for (int c = 1; c <= SP_CATEGORIES; c++)
        reports[c] = (double)d->reports[c];
    cJSON_AddNumberToObject(root, "total_sales", (double)d->total_sales);
    cJSON_AddItemToObject(root, "reports_by_category", json_by_category(reports));
    cJSON_AddItemToObject(root, "avg_units_by_category", json_by_category(d->avg_units));
    cJSON_AddItemToObject(root, "avg_price_by_category", json_by_category(d->avg_price));
    cJSON_AddItemToObject(root, "max_price", json_price(d, &d->max_price));
    cJSON_AddItemToObject(root, "min_price", json_price(d, &d->min_price));
    cJSON_AddItemToObject(root, "best_selling_product", json_product(d, &d->best));
    cJSON_AddItemToObject(root, "least_selling_product", json_product(d, &d->least));
    cJSON_AddItemToObject(root, "assigned", json_assigned(d));
    /* cJSON returns NULL from Print if any allocation above failed. */
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* ---------------------------------------------------------------- table */

static const char *id_or_dash(int present, const char *id)
{
    return present ? id : "-";
}

static void print_by_category(const struct dashboard *d, FILE *out)
{
    fprintf(out, "%-12s %12s %18s %18s\n", "categoria", "reports", "avg units", "avg price");
    for (int c = 1; c <= SP_CATEGORIES; c++)
        fprintf(out, "%-12s %12lld %18.4f %18.4f\n", sp_category_name(c), d->reports[c],
                d->avg_units[c], d->avg_price[c]);
}

/* "  (Name)" after a product the catalog knows, else nothing. */
static const char *name_suffix(const struct dashboard *d, int present, const char *id, char *buf,
                               size_t cap)
{
    const char *name = name_of(d, present, id);
    snprintf(buf, cap, "%s%s%s", name ? "  (" : "", name ? name : "", name ? ")" : "");
    return buf;
}

static void print_product(FILE *out, const struct dashboard *d, const char *label,
                          const struct dash_product *p)
{
    char name[600];
    fprintf(out, "%-28s %-24s %14.0f units%s\n", label, id_or_dash(p->present, p->id), p->units,
            name_suffix(d, p->present, p->id, name, sizeof name));
}

static void print_price(FILE *out, const struct dashboard *d, const char *label,
                        const struct dash_price *p)
{
    char name[600];
    fprintf(out, "%-28s %-24s %14.2f%s\n", label, id_or_dash(p->present, p->id), p->precio,
            name_suffix(d, p->present, p->id, name, sizeof name));
}

void dashboard_print(const struct dashboard *d, FILE *out, size_t max_points)
{
    fprintf(out, "Total sales: %lld\n\n", d->total_sales);
    print_by_category(d, out);
    fprintf(out, "\n");
    print_price(out, d, "Highest price", &d->max_price);
    print_price(out, d, "Lowest price", &d->min_price);
    print_product(out, d, "Best-selling product", &d->best);
    print_product(out, d, "Least-selling product", &d->least);
    fprintf(out, "\nCarnet %s -> %s\n", d->carnet, sp_category_name(d->categoria));
    print_product(out, d, "Best-selling in category", &d->cat_best);
    print_product(out, d, "Least-selling in category", &d->cat_least);
    size_t from = d->npoints > max_points ? d->npoints - max_points : 0;
    fprintf(out, "\nPrice series of %s: %zu points%s\n",
            id_or_dash(d->cat_best.present, d->cat_best.id), d->npoints,
            from ? " (latest shown)" : "");
    fprintf(out, "%-16s %14s\n", "unix_ms", "precio");
    for (size_t i = from; i < d->npoints; i++)
        fprintf(out, "%-16" PRId64 " %14.2f\n", d->points[i].ts_ms, d->points[i].precio);
}
