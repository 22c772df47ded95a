/* workqueue.c - deduplicating delayed work queue. See workqueue.h.
 *
 * Every known key has one entry in a chained hash table; ready entries are also linked in a FIFO
 * through the entry itself (no allocation to queue a key). Delayed entries carry a due time and
 * are promoted by wq_get(), which scans them: their number is bounded by max_keys, small. */
#include "workqueue.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

#define WQ_BUCKETS 1024

struct wq_entry {
    struct wq_entry *hnext; /* hash chain */
    struct wq_entry *qnext; /* ready FIFO */
    bool dirty;             /* needs a reconcile */
    bool processing;        /* handed out, wq_done() not yet called */
    bool queued;            /* in the ready FIFO */
    double due;             /* >0: delayed until this sp_now() */
    int failures;
    char key[WQ_KEY_MAX];
};

struct wq {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct wq_entry *buckets[WQ_BUCKETS];
    struct wq_entry *head, *tail;
    size_t ready, size, delayed, max_keys;
    double base_delay, max_delay;
    bool shutdown;
};

static unsigned hash_key(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % WQ_BUCKETS;
}

struct wq *wq_new(size_t max_keys, double base_delay, double max_delay)
{
    struct wq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&q->lock, NULL);
    q->max_keys = max_keys;
    q->base_delay = base_delay;
    q->max_delay = max_delay;
    return q;
}

void wq_free(struct wq *q)
{
    if (!q)
        return;
    for (int b = 0; b < WQ_BUCKETS; b++)
        for (struct wq_entry *e = q->buckets[b], *next; e; e = next) {
            next = e->hnext;
            free(e);
        }
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static struct wq_entry *lookup(struct wq *q, const char *key)
{
    for (struct wq_entry *e = q->buckets[hash_key(key)]; e; e = e->hnext)
        if (!strcmp(e->key, key))
            return e;
    return NULL;
}

static struct wq_entry *lookup_or_create(struct wq *q, const char *key)
{
    struct wq_entry *e = lookup(q, key);
    if (e)
        return e;
    if (strlen(key) >= WQ_KEY_MAX || q->size >= q->max_keys || !(e = calloc(1, sizeof *e)))
        return NULL;
    strcpy(e->key, key);
    unsigned b = hash_key(key);
    e->hnext = q->buckets[b];
    q->buckets[b] = e;
    q->size++;
    return e;
}

/* Drops an entry that has nothing left to remember. */
static void maybe_remove(struct wq *q, struct wq_entry *e)
{
    if (e->dirty || e->processing || e->queued || e->due > 0 || e->failures)
        return;
    for (struct wq_entry **p = &q->buckets[hash_key(e->key)]; *p; p = &(*p)->hnext)
        if (*p == e) {
            *p = e->hnext;
            break;
        }
    q->size--;
    free(e);
}

static void push_ready(struct wq *q, struct wq_entry *e)
{
    e->queued = true;
    e->qnext = NULL;
    if (q->tail)
        q->tail->qnext = e;
    else
        q->head = e;
    q->tail = e;
    q->ready++;
    pthread_cond_signal(&q->cond);
}

static void mark_dirty(struct wq *q, struct wq_entry *e)
{
    if (e->due > 0) {
        e->due = 0;
        q->delayed--;
    }
    if (e->dirty)
        return;
    e->dirty = true;
    if (!e->processing && !e->queued)
        push_ready(q, e);
}

int wq_add(struct wq *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct wq_entry *e = q->shutdown ? NULL : lookup_or_create(q, key);
    if (e)
        mark_dirty(q, e);
    pthread_mutex_unlock(&q->lock);
    return e ? 0 : -1;
}

static int add_after_locked(struct wq *q, const char *key, double delay)
{
    struct wq_entry *e = q->shutdown ? NULL : lookup_or_create(q, key);
    if (!e)
        return -1;
    if (delay <= 0) {
        mark_dirty(q, e);
        return 0;
    }
    if (e->dirty)
        return 0; /* it will run sooner anyway */
    double due = sp_now() + delay;
    if (e->due == 0)
        q->delayed++;
    if (e->due == 0 || due < e->due)
        e->due = due;
    pthread_cond_broadcast(&q->cond); /* a waiter may need to wake earlier */
    return 0;
}

int wq_add_after(struct wq *q, const char *key, double delay)
{
    pthread_mutex_lock(&q->lock);
    int rc = add_after_locked(q, key, delay);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int wq_add_rate_limited(struct wq *q, const char *key, double *delay)
{
    pthread_mutex_lock(&q->lock);
    struct wq_entry *e = q->shutdown ? NULL : lookup_or_create(q, key);
    int rc = -1;
    if (e) {
        int f = e->failures < 60 ? e->failures++ : e->failures;
        double d = fmin(q->base_delay * ldexp(1.0, f), q->max_delay);
        if (delay)
            *delay = d;
        rc = add_after_locked(q, key, d);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void wq_forget(struct wq *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct wq_entry *e = lookup(q, key);
    if (e) {
        e->failures = 0;
        maybe_remove(q, e);
    }
    pthread_mutex_unlock(&q->lock);
}

int wq_failures(struct wq *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct wq_entry *e = lookup(q, key);
    int f = e ? e->failures : 0;
    pthread_mutex_unlock(&q->lock);
    return f;
}

/* Moves due entries to the ready FIFO; returns the earliest remaining due time (0: none). */
static double promote_due(struct wq *q, double now)
{
    double next = 0;
    if (q->delayed == 0)
        return 0;
    for (int b = 0; b < WQ_BUCKETS; b++)
        for (struct wq_entry *e = q->buckets[b]; e; e = e->hnext) {
            if (e->due <= 0)
                continue;
            if (e->due <= now)
                mark_dirty(q, e);
            else if (next == 0 || e->due < next)
                next = e->due;
        }
    return next;
}

static void wait_until(struct wq *q, double due)
{
    if (due == 0) {
        pthread_cond_wait(&q->cond, &q->lock);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double wait = due - sp_now();
    if (wait < 0)
        wait = 0;
    ts.tv_sec += (time_t)wait;
    ts.tv_nsec += (long)((wait - floor(wait)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

int wq_get(struct wq *q, char key[WQ_KEY_MAX])
{
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->shutdown) {
            pthread_mutex_unlock(&q->lock);
            return 0;
        }
        double next = promote_due(q, sp_now());
        if (q->head) {
            struct wq_entry *e = q->head;
            q->head = e->qnext;
            if (!q->head)
                q->tail = NULL;
            q->ready--;
            e->queued = false;
            e->dirty = false;
            e->processing = true;
            memcpy(key, e->key, WQ_KEY_MAX);
            pthread_mutex_unlock(&q->lock);
            return 1;
        }
        wait_until(q, next);
    }
}

void wq_done(struct wq *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct wq_entry *e = lookup(q, key);
    if (e) {
        e->processing = false;
        if (e->dirty && !e->queued)
            push_ready(q, e);
        maybe_remove(q, e);
    }
    pthread_mutex_unlock(&q->lock);
}

void wq_shutdown(struct wq *q)
{
    pthread_mutex_lock(&q->lock);
    q->shutdown = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

size_t wq_depth(struct wq *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->ready;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t wq_size(struct wq *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->size;
    pthread_mutex_unlock(&q->lock);
    return n;
}
