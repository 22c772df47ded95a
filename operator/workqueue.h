/* workqueue.h - the reconcile queue: keys "namespace/name", deduplicated, with delays and
 * per-key exponential back-off (client-go's workqueue semantics).
 *
 * A key is never handed to two workers at once: a key added while it is being processed is
 * marked dirty and handed out again after wq_done(). The number of distinct keys is bounded;
 * adding beyond the bound fails (the caller counts and logs it) instead of growing. */
#ifndef OP_WORKQUEUE_H
#define OP_WORKQUEUE_H

#include <stddef.h>

#define WQ_KEY_MAX 320 /* namespace (63) + '/' + name (253) + NUL, rounded */

struct wq;

/* `base_delay`, `max_delay`: back-off after the 1st failure and its cap, in seconds. */
struct wq *wq_new(size_t max_keys, double base_delay, double max_delay);
void wq_free(struct wq *q);

/* Returns 0, or -1 if the key is too long or the queue is full. */
int wq_add(struct wq *q, const char *key);
/* Adds `key` after `delay` seconds (an earlier pending delay wins). */
int wq_add_after(struct wq *q, const char *key, double delay);
/* Counts a failure of `key` and adds it after its back-off delay; returns that delay via
 * *delay (may be NULL). */
int wq_add_rate_limited(struct wq *q, const char *key, double *delay);
/* Clears the key's failure count (after a success). */
void wq_forget(struct wq *q, const char *key);
int wq_failures(struct wq *q, const char *key);

/* Blocks until a key is ready; copies it into `key` (WQ_KEY_MAX bytes). Returns 1 with a key,
 * 0 once the queue is shut down. Every key got must be given back with wq_done(). */
int wq_get(struct wq *q, char key[WQ_KEY_MAX]);
void wq_done(struct wq *q, const char *key);

/* Wakes every wq_get() caller, which then return 0. */
void wq_shutdown(struct wq *q);

/* Keys ready to be handed out now (the queue depth metric). */
size_t wq_depth(struct wq *q);
/* Keys known to the queue: ready, delayed, in process or remembered for back-off. */
size_t wq_size(struct wq *q);

#endif
