/* metrics.c - Prometheus text exposition. See metrics.h. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_MAX 128
#define HIST_BUCKETS 14

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_GAUGE_FN, METRIC_HISTOGRAM };

static const double hist_bounds[HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10};

struct sp_metric {
    enum metric_kind kind;
    const char *name, *labels, *help;
    _Atomic int64_t value; /* counter, gauge */
    double (*fn)(void *);  /* gauge_fn */
    void *arg;
    _Atomic uint64_t buckets[HIST_BUCKETS + 1]; /* histogram; last is +Inf */
    _Atomic uint64_t sum_ns;
};

static struct sp_metric registry[METRICS_MAX];
static size_t registry_len;

static struct sp_metric *metric_new(enum metric_kind kind, const char *name, const char *labels,
                                    const char *help)
{
    if (registry_len == METRICS_MAX)
        return NULL;
    struct sp_metric *m = &registry[registry_len++];
    m->kind = kind;
    m->name = name;
    m->labels = labels;
    m->help = help;
    return m;
}

struct sp_metric *sp_counter_new(const char *name, const char *labels, const char *help)
{
    return metric_new(METRIC_COUNTER, name, labels, help);
}

struct sp_metric *sp_gauge_new(const char *name, const char *labels, const char *help)
{
    return metric_new(METRIC_GAUGE, name, labels, help);
}

struct sp_metric *sp_gauge_fn_new(const char *name, const char *labels, const char *help,
                                  double (*fn)(void *), void *arg)
{
    struct sp_metric *m = metric_new(METRIC_GAUGE_FN, name, labels, help);
    if (m) {
        m->fn = fn;
        m->arg = arg;
    }
    return m;
}

struct sp_metric *sp_histogram_new(const char *name, const char *labels, const char *help)
{
    return metric_new(METRIC_HISTOGRAM, name, labels, help);
}

void sp_counter_add(struct sp_metric *m, uint64_t n)
{
    atomic_fetch_add_explicit(&m->value, (int64_t)n, memory_order_relaxed);
}

void sp_gauge_set(struct sp_metric *m, int64_t v)
{
    atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

void sp_gauge_add(struct sp_metric *m, int64_t delta)
{
    atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

int64_t sp_gauge_get(const struct sp_metric *m)
{
    return atomic_load_explicit(&m->value, memory_order_relaxed);
}

uint64_t sp_counter_get(const struct sp_metric *m)
{
    return (uint64_t)atomic_load_explicit(&m->value, memory_order_relaxed);
}

void sp_histogram_observe(struct sp_metric *m, double seconds)
{
    int i = 0;
    while (i < HIST_BUCKETS && seconds > hist_bounds[i])
        i++;
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    if (seconds > 0)
        atomic_fetch_add_explicit(&m->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

double sp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t sp_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* HELP/TYPE once per name, even when label variants were registered apart. */
static int name_seen_before(size_t idx)
{
    for (size_t i = 0; i < idx; i++)
        if (strcmp(registry[i].name, registry[idx].name) == 0)
            return 1;
    return 0;
}

static void render_series(FILE *f, const char *name, const char *suffix, const char *labels,
                          const char *extra, double value)
{
    int has = labels && *labels, hasx = extra && *extra;
    fprintf(f, "%s%s", name, suffix);
    if (has || hasx)
        fprintf(f, "{%s%s%s}", has ? labels : "", has && hasx ? "," : "", hasx ? extra : "");
    fprintf(f, " %.17g\n", value);
}

static void render_histogram(FILE *f, struct sp_metric *m)
{
    uint64_t cumulative = 0;
    char le[48];
    for (int i = 0; i <= HIST_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        if (i < HIST_BUCKETS)
            snprintf(le, sizeof le, "le=\"%g\"", hist_bounds[i]);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        render_series(f, m->name, "_bucket", m->labels, le, (double)cumulative);
    }
    render_series(f, m->name, "_sum", m->labels, NULL,
                  (double)atomic_load_explicit(&m->sum_ns, memory_order_relaxed) / 1e9);
    render_series(f, m->name, "_count", m->labels, NULL, (double)cumulative);
}

static const char *type_name(enum metric_kind kind)
{
    switch (kind) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_HISTOGRAM:
        return "histogram";
    default:
        return "gauge";
    }
}

char *sp_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    for (size_t i = 0; i < registry_len; i++) {
        struct sp_metric *m = &registry[i];
        if (!name_seen_before(i))
            fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                    type_name(m->kind));
        if (m->kind == METRIC_HISTOGRAM)
            render_histogram(f, m);
        else if (m->kind == METRIC_GAUGE_FN)
            render_series(f, m->name, "", m->labels, NULL, m->fn(m->arg));
        else
            render_series(f, m->name, "", m->labels, NULL,
                          (double)atomic_load_explicit(&m->value, memory_order_relaxed));
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = size;
    return buf;
}
