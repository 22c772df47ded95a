/* build_grafana.c - the Grafana side of a pipeline, for the Grafana Helm chart's sidecars:
 *
 *  - <name>-dashboard-sales (ConfigMap, label grafana_dashboard): the dashboard of MISSION.md
 *    (assignment-dashboard.png) over Valkey through the Redis data source plugin
 *    (redis-datasource). Every panel is one read of one key of common/sales_keys.h, the same
 *    read `salesctl dashboard` makes (ARCHITECTURE.md, "Valkey: the key layout"); the carnet and its category are
 *    written in, so each pipeline gets its own assigned-category section.
 *  - <name>-dashboard-health (ConfigMap, same label): the pipeline's health from the workers'
 *    /metrics and kube-state-metrics, for any Prometheus data source (a dashboard variable).
 *  - <name>-grafana-datasource (Secret, label grafana_datasource): the Valkey replica Service
 *    as a redis-datasource. A Secret because it carries the password; the sidecar reads both.
 *
 * Panel targets use the plugin's query model (pkg/types.go of grafana-redis-datasource):
 * type "command", command, keyName and, per command, min/max (zrange) or start/end (xrange).
 * Transformations work on the data frames the plugin makes of each reply (its pkg/redis-*.go,
 * v2.2.0): HGETALL and ZRANGE give ONE row with a column per hash field / member (numbers
 * where they parse), GET a column "Value", XRANGE columns $streamId, $time and one per entry
 * field. tests/operator_infra/test_dashboard.py builds those frames from a real Valkey and
 * runs each panel's transformations on them. Panel options carry every field the Grafana
 * Foundation SDK's types require (tools/dashcheck decodes the dashboards strictly). */
#include "build.h"
#include "grafana.h"
#include "infra.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sales_keys.h"
#include "yamljson.h"

#define REDIS_PLUGIN "redis-datasource"
#define SCHEMA_VERSION 39
#define PRODUCT_VAR "producto"

void grafana_uid(const struct pipeline *p, const char *suffix, char *buf, size_t cap)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = p->ns; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *s = p->name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    snprintf(buf, cap, "sp-%016llx-%s", (unsigned long long)h, suffix);
}

/* What every panel builder needs. */
struct dash {
    struct jb b;
    const struct pipeline *p;
    cJSON *panels;
    int next_id;
    char ds_uid[48];
};

static cJSON *datasource_ref(struct dash *d, cJSON *parent, const char *type, const char *uid)
{
    cJSON *ds = jb_obj(&d->b, parent, "datasource");
    jb_str(&d->b, ds, "type", type);
    jb_str(&d->b, ds, "uid", uid);
    return ds;
}

static cJSON *panel(struct dash *d, const char *type, const char *title, int x, int y, int w, int h)
{
    cJSON *pn = jb_obj(&d->b, d->panels, NULL);
    jb_int(&d->b, pn, "id", ++d->next_id);
    jb_str(&d->b, pn, "type", type);
    jb_str(&d->b, pn, "title", title);
    cJSON *pos = jb_obj(&d->b, pn, "gridPos");
    jb_int(&d->b, pos, "x", x);
    jb_int(&d->b, pos, "y", y);
    jb_int(&d->b, pos, "w", w);
    jb_int(&d->b, pos, "h", h);
    return pn;
}

/* One Redis read: the panel's only target. Returns it for command-specific fields. */
static cJSON *redis_read(struct dash *d, cJSON *pn, const char *command, const char *key)
{
    datasource_ref(d, pn, REDIS_PLUGIN, d->ds_uid);
    cJSON *t = jb_obj(&d->b, jb_arr(&d->b, pn, "targets"), NULL);
    jb_str(&d->b, t, "refId", "A");
    datasource_ref(d, t, REDIS_PLUGIN, d->ds_uid);
    jb_str(&d->b, t, "type", "command");
    jb_str(&d->b, t, "command", command);
    jb_str(&d->b, t, "keyName", key);
    jb_bool(&d->b, t, "streaming", false);
    return t;
}

/* ZRANGE key i i WITHSCORES: index 0 is the fewest units, -1 the most (the plugin's zrange
 * has no REV: ZRANGE -1 -1 is ZREVRANGE 0 0, ties included). */
static void zrange_one(struct dash *d, cJSON *pn, const char *key, const char *index)
{
    cJSON *t = redis_read(d, pn, "zrange", key);
    jb_str(&d->b, t, "zrangeQuery", "");
    jb_str(&d->b, t, "min", index);
    jb_str(&d->b, t, "max", index);
}

static void convert(struct dash *d, cJSON *conversions, const char *field, const char *to)
{
    cJSON *c = jb_obj(&d->b, conversions, NULL);
    jb_str(&d->b, c, "targetField", field);
    jb_str(&d->b, c, "destinationType", to);
}

/* Legend and tooltip as Grafana's own defaults for the panel. */
static void legend_tooltip(struct dash *d, cJSON *opt, bool show_legend)
{
    cJSON *lg = jb_obj(&d->b, opt, "legend");
    jb_str(&d->b, lg, "displayMode", "list");
    jb_str(&d->b, lg, "placement", "bottom");
    jb_bool(&d->b, lg, "showLegend", show_legend);
    jb_arr(&d->b, lg, "calcs");
    cJSON *tt = jb_obj(&d->b, opt, "tooltip");
    jb_str(&d->b, tt, "mode", "single");
    jb_str(&d->b, tt, "sort", "none");
}

/* HGETALL of a category hash is one row with a column per category: "reduce" (series to
 * rows) turns each column into a row (Field = the category, "Last *" = its number), one bar
 * per category. */
static void hash_bars(struct dash *d, const char *title, const char *key, int x, int y, int w,
                      int h)
{
    cJSON *pn = panel(d, "barchart", title, x, y, w, h);
    redis_read(d, pn, "hgetall", key);
    cJSON *tr = jb_obj(&d->b, jb_arr(&d->b, pn, "transformations"), NULL);
    jb_str(&d->b, tr, "id", "reduce");
    cJSON *ro = jb_obj(&d->b, tr, "options");
    jb_str(&d->b, ro, "mode", "seriesToRows");
    jb_str(&d->b, jb_arr(&d->b, ro, "reducers"), NULL, "lastNotNull");
    cJSON *opt = jb_obj(&d->b, pn, "options");
    jb_str(&d->b, opt, "xField", "Field");
    jb_str(&d->b, opt, "orientation", "auto");
    jb_int(&d->b, opt, "xTickLabelRotation", 0);
    jb_int(&d->b, opt, "xTickLabelMaxLength", 0);
    jb_str(&d->b, opt, "stacking", "none");
    jb_str(&d->b, opt, "showValue", "always");
    jb_num(&d->b, opt, "barWidth", 0.97);
    jb_num(&d->b, opt, "groupWidth", 0.7);
    jb_bool(&d->b, opt, "fullHighlight", false);
    legend_tooltip(d, opt, false);
}

static void stat_options(struct dash *d, cJSON *pn, const char *fields)
{
    cJSON *opt = jb_obj(&d->b, pn, "options");
    jb_str(&d->b, opt, "textMode", "value_and_name");
    jb_str(&d->b, opt, "colorMode", "none");
    jb_str(&d->b, opt, "graphMode", "none");
    jb_str(&d->b, opt, "justifyMode", "auto");
    jb_str(&d->b, opt, "orientation", "auto");
    jb_bool(&d->b, opt, "wideLayout", true);
    jb_bool(&d->b, opt, "showPercentChange", false);
    jb_str(&d->b, opt, "percentChangeColorMode", "standard");
    cJSON *red = jb_obj(&d->b, opt, "reduceOptions");
    jb_bool(&d->b, red, "values", false);
    jb_str(&d->b, red, "fields", fields);
    jb_str(&d->b, jb_arr(&d->b, red, "calcs"), NULL, "lastNotNull");
}

/* A price hash is one row with the columns precio (a number: the plugin parses it) and
 * producto_id: the stat shows both as they come. */
static void price_stat(struct dash *d, const char *title, const char *key, int x, int y, int w,
                       int h)
{
    cJSON *pn = panel(d, "stat", title, x, y, w, h);
    redis_read(d, pn, "hgetall", key);
    stat_options(d, pn, "/.*/");
}

static void product_stat(struct dash *d, const char *title, const char *key, const char *index,
                         int x, int y, int w, int h)
{
    cJSON *pn = panel(d, "stat", title, x, y, w, h);
    zrange_one(d, pn, key, index);
    stat_options(d, pn, "/.*/");
}

static void text_panel(struct dash *d, const char *title, const char *content, int x, int y, int w,
                       int h)
{
    cJSON *pn = panel(d, "text", title, x, y, w, h);
    cJSON *opt = jb_obj(&d->b, pn, "options");
    jb_str(&d->b, opt, "mode", "markdown");
    jb_str(&d->b, opt, "content", content);
}

/* The price of one product over time: XRANGE of its stream, plotted by the sale's own time
 * (field ts, unix ms, already a number in the frame), not the stream id (the write's time). */
static void series_panel(struct dash *d, const char *category, int x, int y, int w, int h)
{
    char title[128], key[64];
    snprintf(title, sizeof title, "Variación de precio de $%s (%s)", PRODUCT_VAR, category);
    snprintf(key, sizeof key, "%s$%s", SP_KEY_SERIES, PRODUCT_VAR);
    cJSON *pn = panel(d, "timeseries", title, x, y, w, h);
    cJSON *t = redis_read(d, pn, "xrange", key);
    jb_str(&d->b, t, "start", "-"); /* the whole series, whatever the time picker says */
    jb_str(&d->b, t, "end", "+");
    cJSON *trs = jb_arr(&d->b, pn, "transformations"), *tr = jb_obj(&d->b, trs, NULL);
    jb_str(&d->b, tr, "id", "convertFieldType");
    cJSON *conv = jb_arr(&d->b, jb_obj(&d->b, tr, "options"), "conversions");
    convert(d, conv, SP_FIELD_TS, "time");
    tr = jb_obj(&d->b, trs, NULL);
    jb_str(&d->b, tr, "id", "organize");
    cJSON *ex = jb_obj(&d->b, jb_obj(&d->b, tr, "options"), "excludeByName");
    jb_bool(&d->b, ex, "$streamId", true);
    jb_bool(&d->b, ex, "$time", true);
    tr = jb_obj(&d->b, trs, NULL);
    jb_str(&d->b, tr, "id", "sortBy");
    jb_str(&d->b, jb_obj(&d->b, jb_arr(&d->b, jb_obj(&d->b, tr, "options"), "sort"), NULL), "field",
           SP_FIELD_TS);
}

static void top_section(struct dash *d)
{
    hash_bars(d, "Producto promedio por categoría (unidades)", SP_KEY_AVG_UNITS, 0, 0, 8, 8);
    price_stat(d, "Precio más alto registrado", SP_KEY_MAX_PRICE, 8, 0, 8, 4);
    product_stat(d, "Producto más vendido", SP_KEY_UNITS, "-1", 16, 0, 8, 4);
    price_stat(d, "Precio más bajo registrado", SP_KEY_MIN_PRICE, 8, 4, 8, 4);
    product_stat(d, "Producto menos vendido", SP_KEY_UNITS, "0", 16, 4, 8, 4);
    hash_bars(d, "Precio promedio por categoría", SP_KEY_AVG_PRICE, 0, 8, 8, 8);
    hash_bars(d, "Total de reportes por categoría", SP_KEY_REPORTS, 8, 8, 12, 8);
    cJSON *pn = panel(d, "stat", "Ventas registradas", 20, 8, 4, 8);
    redis_read(d, pn, "get", SP_KEY_TOTAL_SALES);
    stat_options(d, pn, "/.*/");
}

static void assigned_section(struct dash *d)
{
    const char *cat = pipeline_category(d->p->carnet);
    char text[160], title[128], key[64];
    cJSON *row = panel(d, "row", "Sección única por terminación de carnet", 0, 16, 24, 1);
    jb_bool(&d->b, row, "collapsed", false);
    jb_arr(&d->b, row, "panels");
    if (!*cat) {
        text_panel(d, "Carnet", "spec.grafana.carnet is empty: no assigned category.", 0, 17, 24,
                   3);
        return;
    }
    snprintf(text, sizeof text, "# %s", d->p->carnet);
    text_panel(d, "Carnet", text, 0, 17, 8, 4);
    snprintf(text, sizeof text, "# %s", cat);
    text_panel(d, "Categoría asignada", text, 0, 21, 8, 9);
    snprintf(key, sizeof key, "%s%s", SP_KEY_UNITS_CAT, cat);
    snprintf(title, sizeof title, "Producto más vendido de %s", cat);
    product_stat(d, title, key, "-1", 8, 17, 8, 4);
    snprintf(title, sizeof title, "Producto menos vendido de %s", cat);
    product_stat(d, title, key, "0", 16, 17, 8, 4);
    series_panel(d, cat, 8, 21, 16, 9);
}

/* A variable's selection before Grafana fills it in. */
static void empty_current(struct dash *d, cJSON *v)
{
    cJSON *c = jb_obj(&d->b, v, "current");
    jb_str(&d->b, c, "text", "");
    jb_str(&d->b, c, "value", "");
}

/* $producto: the category's products by units, best first, so the series panel opens on the
 * best seller (as salesctl shows) and any other product of the category can be picked. */
static void product_variable(struct dash *d, cJSON *list)
{
    const char *cat = pipeline_category(d->p->carnet);
    char q[96], label[64];
    if (!*cat)
        return;
    snprintf(q, sizeof q, "ZREVRANGE %s%s 0 -1", SP_KEY_UNITS_CAT, cat);
    snprintf(label, sizeof label, "Producto de %s", cat);
    cJSON *v = jb_obj(&d->b, list, NULL);
    jb_str(&d->b, v, "name", PRODUCT_VAR);
    jb_str(&d->b, v, "label", label);
    jb_str(&d->b, v, "type", "query");
    datasource_ref(d, v, REDIS_PLUGIN, d->ds_uid);
    jb_str(&d->b, v, "query", q);
    jb_str(&d->b, v, "definition", q);
    jb_int(&d->b, v, "refresh", 2); /* on time range change: the best seller moves */
    jb_int(&d->b, v, "sort", 0);    /* keep the read's order: best first */
    jb_bool(&d->b, v, "multi", false);
    jb_bool(&d->b, v, "includeAll", false);
    empty_current(d, v);
    jb_arr(&d->b, v, "options");
}

static cJSON *dashboard_root(struct dash *d, const char *uid_suffix, const char *title)
{
    char uid[64], full[256];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        d->b.oom = true;
    grafana_uid(d->p, uid_suffix, uid, sizeof uid);
    snprintf(full, sizeof full, "%s (%s/%s)", title, d->p->ns, d->p->name);
    jb_str(&d->b, o, "uid", uid);
    jb_str(&d->b, o, "title", full);
    cJSON *tags = jb_arr(&d->b, o, "tags");
    jb_str(&d->b, tags, NULL, "salespipeline");
    jb_str(&d->b, tags, NULL, d->p->ns);
    jb_str(&d->b, tags, NULL, d->p->name);
    jb_int(&d->b, o, "schemaVersion", SCHEMA_VERSION);
    jb_int(&d->b, o, "version", 1);
    jb_bool(&d->b, o, "editable", true);
    jb_str(&d->b, o, "refresh", "10s");
    jb_str(&d->b, o, "timezone", "browser");
    cJSON *time = jb_obj(&d->b, o, "time");
    jb_str(&d->b, time, "from", "now-1h");
    jb_str(&d->b, time, "to", "now");
    jb_arr(&d->b, jb_obj(&d->b, o, "annotations"), "list");
    d->panels = jb_arr(&d->b, o, "panels");
    return o;
}

cJSON *grafana_sales_dashboard(const struct pipeline *p)
{
    struct dash d = {.p = p};
    grafana_uid(p, "valkey", d.ds_uid, sizeof d.ds_uid);
    cJSON *o = dashboard_root(&d, "sales", "Black Friday: ventas");
    top_section(&d);
    assigned_section(&d);
    product_variable(&d, jb_arr(&d.b, jb_obj(&d.b, o, "templating"), "list"));
    return jb_done(&d.b, o);
}

/* ---------------------------------------------------------------- health (Prometheus) */

static void prom_target(struct dash *d, cJSON *pn, const char *ref, const char *expr,
                        const char *legend)
{
    cJSON *t = jb_obj(&d->b, cJSON_GetObjectItemCaseSensitive(pn, "targets"), NULL);
    jb_str(&d->b, t, "refId", ref);
    datasource_ref(d, t, "prometheus", "${datasource}");
    jb_str(&d->b, t, "expr", expr);
    jb_str(&d->b, t, "legendFormat", legend);
}

static cJSON *prom_panel(struct dash *d, const char *title, const char *unit, int x, int y)
{
    cJSON *pn = panel(d, "timeseries", title, x, y, 12, 8);
    datasource_ref(d, pn, "prometheus", "${datasource}");
    jb_arr(&d->b, pn, "targets");
    jb_str(&d->b, jb_obj(&d->b, jb_obj(&d->b, pn, "fieldConfig"), "defaults"), "unit", unit);
    return pn;
}

/* Series of this pipeline's pods: the labels Prometheus' kubernetes-pods job copies from the
 * pods (namespace, and the app.kubernetes.io labels as app_kubernetes_io_<label>). */
#define SEL "namespace=\"%s\",app_kubernetes_io_instance=\"%s\""
#define RATE "[$__rate_interval]"

static void hop_latency(struct dash *d, cJSON *pn, const char *ref, const char *metric,
                        const char *component, const char *legend)
{
    char e[512];
    snprintf(e, sizeof e,
             "histogram_quantile(0.99, sum by (le) (rate(%s_bucket{" SEL "%s%s%s}" RATE ")))",
             metric, d->p->ns, d->p->name, component ? ",app_kubernetes_io_component=\"" : "",
             component ? component : "", component ? "\"" : "");
    prom_target(d, pn, ref, e, legend);
}

static void health_panels(struct dash *d)
{
    const char *ns = d->p->ns, *n = d->p->name;
    char e[512], hpa[256];
    cJSON *pn = prom_panel(d, "Sales/s by HTTP status (api, bridge)", "reqps", 0, 0);
    snprintf(e, sizeof e,
             "sum by (app_kubernetes_io_component, code) "
             "(rate(sp_http_requests_total{" SEL "}" RATE "))",
             ns, n);
    prom_target(d, pn, "A", e, "{{app_kubernetes_io_component}} {{code}}");
    pn = prom_panel(d, "Writer calls/s by gRPC status, sales applied/s", "reqps", 12, 0);
    snprintf(e, sizeof e, "sum by (code) (rate(sp_writer_requests_total{" SEL "}" RATE "))", ns, n);
    prom_target(d, pn, "A", e, "writer {{code}}");
    snprintf(e, sizeof e, "sum(rate(sp_consumer_sales_applied_total{" SEL "}" RATE "))", ns, n);
    prom_target(d, pn, "B", e, "consumer applied");
    pn = prom_panel(d, "p99 latency per hop", "s", 0, 8);
    hop_latency(d, pn, "A", "sp_http_request_duration_seconds", "api", "api");
    hop_latency(d, pn, "B", "sp_http_request_duration_seconds", "bridge", "bridge");
    hop_latency(d, pn, "C", "sp_writer_request_duration_seconds", NULL, "writer (to Kafka ack)");
    hop_latency(d, pn, "D", "sp_consumer_batch_seconds", NULL, "consumer batch (to Valkey)");
    pn = prom_panel(d, "Consumer lag (records)", "short", 12, 8);
    snprintf(e, sizeof e, "sum by (pod) (sp_consumer_lag{" SEL "})", ns, n);
    prom_target(d, pn, "A", e, "{{pod}}");
    pn = prom_panel(d, "api HPA replicas", "short", 0, 16);
    snprintf(hpa, sizeof hpa, "namespace=\"%s\",horizontalpodautoscaler=\"%s-api\"", ns, n);
    snprintf(e, sizeof e, "kube_horizontalpodautoscaler_status_current_replicas{%s}", hpa);
    prom_target(d, pn, "A", e, "current");
    snprintf(e, sizeof e, "kube_horizontalpodautoscaler_status_desired_replicas{%s}", hpa);
    prom_target(d, pn, "B", e, "desired");
    snprintf(e, sizeof e, "kube_horizontalpodautoscaler_spec_max_replicas{%s}", hpa);
    prom_target(d, pn, "C", e, "max");
    pn = prom_panel(d, "Available pods per Deployment", "short", 12, 16);
    snprintf(e, sizeof e,
             "kube_deployment_status_replicas_available{namespace=\"%s\","
             "deployment=~\"%s-.*\"}",
             ns, n);
    prom_target(d, pn, "A", e, "{{deployment}}");
}

cJSON *grafana_health_dashboard(const struct pipeline *p)
{
    struct dash d = {.p = p};
    cJSON *o = dashboard_root(&d, "health", "Black Friday: pipeline health");
    cJSON *v = jb_obj(&d.b, jb_arr(&d.b, jb_obj(&d.b, o, "templating"), "list"), NULL);
    jb_str(&d.b, v, "name", "datasource");
    jb_str(&d.b, v, "label", "Prometheus");
    jb_str(&d.b, v, "type", "datasource");
    jb_str(&d.b, v, "query", "prometheus");
    empty_current(&d, v);
    health_panels(&d);
    return jb_done(&d.b, o);
}

/* ---------------------------------------------------------------- delivery */

cJSON *build_grafana_dashboard(const struct pipeline *p, bool health)
{
    struct jb b = {0};
    char name[128], file[140];
    cJSON *dash = health ? grafana_health_dashboard(p) : grafana_sales_dashboard(p);
    char *text = dash ? cJSON_Print(dash) : NULL;
    cJSON_Delete(dash);
    if (!text)
        return NULL;
    pipeline_object_name(p, health ? "dashboard-health" : "dashboard-sales", name, sizeof name);
    snprintf(file, sizeof file, "%s.json", name);
    cJSON *o = build_object(&b, p, KIND_CONFIGMAP, name, "grafana", "grafana");
    jb_str(
        &b,
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels"),
        INFRA_GRAFANA_LABEL, "1");
    /* The chart's sidecar puts a dashboard in this folder when folderAnnotation is set. */
    jb_str(&b, jb_obj(&b, cJSON_GetObjectItemCaseSensitive(o, "metadata"), "annotations"),
           "grafana_folder", "Black Friday");
    jb_str(&b, jb_obj(&b, o, "data"), file, text);
    free(text);
    return jb_done(&b, o);
}

cJSON *build_grafana_datasource(const struct pipeline *p, const char *password)
{
    struct jb b = {0};
    char uid[64], url[320], host[256], title[160], name[128];
    grafana_uid(p, "valkey", uid, sizeof uid);
    /* The dashboards read the replica; an external Valkey at the URL the spec gives. */
    infra_valkey_host(p, VALKEY_REPLICA, host, sizeof host);
    if (pipeline_valkey_external(p))
        snprintf(url, sizeof url, "%s", p->valkey.url);
    else
        snprintf(url, sizeof url, "redis://%s:%d", host, INFRA_VALKEY_PORT);
    snprintf(title, sizeof title, "Valkey %s/%s", p->ns, p->name);
    cJSON *doc = cJSON_CreateObject();
    jb_int(&b, doc, "apiVersion", 1);
    cJSON *ds = jb_obj(&b, jb_arr(&b, doc, "datasources"), NULL);
    jb_str(&b, ds, "name", title);
    jb_str(&b, ds, "uid", uid);
    jb_str(&b, ds, "type", REDIS_PLUGIN);
    jb_str(&b, ds, "access", "proxy");
    jb_str(&b, ds, "url", url);
    jb_bool(&b, ds, "isDefault", false);
    jb_bool(&b, ds, "editable", false);
    cJSON *jd = jb_obj(&b, ds, "jsonData");
    jb_str(&b, jd, "client", "standalone");
    jb_int(&b, jd, "poolSize", 5);
    jb_int(&b, jd, "timeout", 10);
    jb_int(&b, jd, "pingInterval", 0);
    jb_int(&b, jd, "pipelineWindow", 0);
    if (*password)
        jb_str(&b, jb_obj(&b, ds, "secureJsonData"), "password", password);
    doc = jb_done(&b, doc);
    char *yaml = doc ? yamljson_emit(doc, NULL) : NULL;
    cJSON_Delete(doc);
    if (!yaml)
        return NULL;
    pipeline_object_name(p, "grafana-datasource", name, sizeof name);
    cJSON *o = infra_secret(p, name, "grafana", "valkey-datasource.yaml", yaml);
    free(yaml);
    if (o &&
        !cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(
                                     cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels"),
                                 INFRA_DATASOURCE_LABEL, "1")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
