/* dashboard.h - the dashboard's panels read from Valkey (layout: common/sales_keys.h), as a
 * table for people or as JSON for scripts and tests.
 *
 * Every panel is the plain read that Grafana issues (GET, HGETALL, ZRANGE/ZREVRANGE 0 0
 * WITHSCORES, XRANGE); they are sent in one MULTI/EXEC so the numbers are one snapshot. */
#ifndef SALESCTL_DASHBOARD_H
#define SALESCTL_DASHBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "catalog.h"
#include "sale.h"

#define DASH_CARNET_MAX 32

struct dash_product {
    int present;
    char id[SP_PRODUCT_ID_BYTES + 1];
    double units;
};

struct dash_price {
    int present;
    char id[SP_PRODUCT_ID_BYTES + 1];
    double precio;
};

struct dash_point {
    int64_t ts_ms;
    double precio;
};

struct dashboard {
    long long total_sales;
    long long reports[SP_CATEGORIES + 1]; /* indexed by categoria 1..4 */
    double avg_units[SP_CATEGORIES + 1];
    double avg_price[SP_CATEGORIES + 1];
    struct dash_price max_price, min_price;
    struct dash_product best, least;
    char carnet[DASH_CARNET_MAX + 1];
    int categoria; /* from the carnet's last digit */
    struct dash_product cat_best, cat_least;
    struct dash_point *points; /* price series of cat_best, by time */
    size_t npoints;
    const struct sp_catalog *catalog; /* names the products when set; not owned */
};

/* Reads every panel. 0, or -1 with the reason in `err`. Free with dashboard_free(). Set
 * `catalog` afterwards to have products named in the output. */
int dashboard_read(redisContext *c, const char *carnet, struct dashboard *d, char *err,
                   size_t errlen);
void dashboard_free(struct dashboard *d);

/* The JSON documented in issue 3 (plus a "name" beside each producto_id the catalog knows);
 * the caller frees the string. NULL when out of memory. */
char *dashboard_json(const struct dashboard *d);
/* Every panel as a table; prints at most `max_points` of the series (the latest). */
void dashboard_print(const struct dashboard *d, FILE *out, size_t max_points);

#endif
