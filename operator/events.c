/* events.c - see events.h. */
#include "events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jb.h"
#include "kinds.h"
#include "log.h"
#include "metrics.h"
#include "status.h"

#define RECENT_MAX 128

struct recent {
    uint64_t hash;
    double at;
};

struct events {
    pthread_mutex_t lock;
    const char *instance;
    struct recent recent[RECENT_MAX]; /* ring of recently posted events */
    unsigned next;
    unsigned long posted, counter;
};

struct events *events_new(const char *instance)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (ev) {
        pthread_mutex_init(&ev->lock, NULL);
        ev->instance = instance;
    }
    return ev;
}

void events_free(struct events *ev)
{
    if (!ev)
        return;
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

static uint64_t hash3(const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 3; i++) {
        for (const char *s = parts[i]; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

/* Returns 1 if this event was posted recently (skip it), else records it and returns 0. */
static int recently_posted(struct events *ev, uint64_t h, unsigned long *seq)
{
    double now = sp_now();
    int dup = 0;
    pthread_mutex_lock(&ev->lock);
    for (int i = 0; i < RECENT_MAX && !dup; i++)
        dup = ev->recent[i].hash == h && ev->recent[i].at > 0 &&
              now - ev->recent[i].at < EVENTS_DEDUP_SECONDS;
    if (!dup) {
        ev->recent[ev->next++ % RECENT_MAX] = (struct recent){h, now};
        *seq = ++ev->counter;
    }
    pthread_mutex_unlock(&ev->lock);
    return dup;
}

static cJSON *event_body(struct events *ev, const struct event_ref *ref, const char *type,
                         const char *reason, const char *msg, unsigned long seq)
{
    struct jb b = {0};
    char name[128], now[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof name, "%s.%llx%04lx", ref->name,
             (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec,
             seq & 0xffff);
    status_now(now, sizeof now, false);
    cJSON *o = cJSON_CreateObject();
    jb_str(&b, o, "apiVersion", "v1");
    jb_str(&b, o, "kind", "Event");
    cJSON *md = jb_obj(&b, o, "metadata");
    jb_str(&b, md, "name", name);
    jb_str(&b, md, "namespace", ref->ns);
    cJSON *inv = jb_obj(&b, o, "involvedObject");
    jb_str(&b, inv, "apiVersion", OP_API_VERSION);
    jb_str(&b, inv, "kind", OP_KIND);
    jb_str(&b, inv, "namespace", ref->ns);
    jb_str(&b, inv, "name", ref->name);
    jb_str(&b, inv, "uid", ref->uid);
    jb_str(&b, o, "type", type);
    jb_str(&b, o, "reason", reason);
    jb_str(&b, o, "message", msg);
    jb_str(&b, o, "firstTimestamp", now);
    jb_str(&b, o, "lastTimestamp", now);
    jb_int(&b, o, "count", 1);
    jb_str(&b, jb_obj(&b, o, "source"), "component", OP_FIELD_MANAGER);
    jb_str(&b, o, "reportingComponent", OP_FIELD_MANAGER);
    jb_str(&b, o, "reportingInstance", ev->instance);
    return jb_done(&b, o);
}

void events_emit(struct events *ev, struct kube_client *kc, const struct event_ref *ref,
                 const char *type, const char *reason, const char *fmt, ...)
{
    char msg[1024], path[256], err[KUBE_ERR_MAX];
    unsigned long seq = 0;
    long status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char key[400];
    snprintf(key, sizeof key, "%s/%s/%s", ref->ns, ref->name, ref->uid);
    if (recently_posted(ev, hash3(key, reason, msg), &seq))
        return;
    cJSON *body = event_body(ev, ref, type, reason, msg, seq);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ref->ns);
    cJSON *r = body ? kube_create(kc, path, body, &status, err, sizeof err) : NULL;
    if (!r)
        sp_warn("event_failed", "%s/%s %s: %s", ref->ns, ref->name, reason,
                body ? err : "out of memory");
    else
        __atomic_add_fetch(&ev->posted, 1, __ATOMIC_RELAXED);
    cJSON_Delete(r);
    cJSON_Delete(body);
}

unsigned long events_posted(struct events *ev)
{
    return __atomic_load_n(&ev->posted, __ATOMIC_RELAXED);
}
