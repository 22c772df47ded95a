/* metrics.h - Prometheus text exposition of counters, gauges and histograms.
 *
 * Metrics are registered once at start-up (not thread-safe) and updated lock-free from any
 * thread afterwards. A metric's labels are fixed at registration: register one instance per
 * label value (e.g. one counter per HTTP status class). */
#ifndef SP_METRICS_H
#define SP_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct sp_metric;

/* `labels` is the inside of the braces, e.g. "code=\"202\"", or NULL. Strings must be literals
 * or otherwise outlive the process. Returns NULL only when the registry is full (a bug). */
struct sp_metric *sp_counter_new(const char *name, const char *labels, const char *help);
struct sp_metric *sp_gauge_new(const char *name, const char *labels, const char *help);
/* A gauge whose value is read from `fn(arg)` at scrape time. */
struct sp_metric *sp_gauge_fn_new(const char *name, const char *labels, const char *help,
                                  double (*fn)(void *arg), void *arg);
/* Latency histogram with fixed buckets from 100 microseconds to 10 seconds. */
struct sp_metric *sp_histogram_new(const char *name, const char *labels, const char *help);

void sp_counter_add(struct sp_metric *m, uint64_t n);
void sp_gauge_set(struct sp_metric *m, int64_t v);
void sp_gauge_add(struct sp_metric *m, int64_t delta);
int64_t sp_gauge_get(const struct sp_metric *m);
uint64_t sp_counter_get(const struct sp_metric *m);
void sp_histogram_observe(struct sp_metric *m, double seconds);

/* Renders every metric; the caller frees the returned string. NULL on out of memory. */
char *sp_metrics_render(size_t *len);

/* Monotonic clock in seconds, for latencies. */
double sp_now(void);
/* Wall clock in milliseconds since the epoch, for timestamps other processes read. */
int64_t sp_wall_ms(void);

#endif
