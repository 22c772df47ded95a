/* seen.c - see seen.h. */
#include "seen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "desired.h"
#include "workqueue.h"

#define SEEN_BUCKETS 256
#define SEEN_OBJS (DESIRED_MAX + 8)

struct seen_obj {
    uint64_t name_hash, fp;
    uint8_t kind;
};

struct seen_owner {
    struct seen_owner *next;
    char key[WQ_KEY_MAX];
    int n;
    struct seen_obj objs[SEEN_OBJS];
};

struct seen {
    pthread_mutex_t lock;
    struct seen_owner *buckets[SEEN_BUCKETS];
    size_t owners, max_owners;
};

static uint64_t fnv(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (; a && *a; a++)
        h = (h ^ (unsigned char)*a) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (; b && *b; b++)
        h = (h ^ (unsigned char)*b) * 1099511628211ull;
    return h;
}

struct seen *seen_new(size_t max_owners)
{
    struct seen *s = calloc(1, sizeof *s);
    if (s) {
        pthread_mutex_init(&s->lock, NULL);
        s->max_owners = max_owners;
    }
    return s;
}

static void clear(struct seen *s)
{
    for (int b = 0; b < SEEN_BUCKETS; b++) {
        for (struct seen_owner *o = s->buckets[b], *next; o; o = next) {
            next = o->next;
            free(o);
        }
        s->buckets[b] = NULL;
    }
    s->owners = 0;
}

void seen_free(struct seen *s)
{
    if (!s)
        return;
    clear(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static struct seen_owner **find(struct seen *s, const char *owner)
{
    struct seen_owner **p = &s->buckets[fnv(owner, NULL) % SEEN_BUCKETS];
    while (*p && strcmp((*p)->key, owner))
        p = &(*p)->next;
    return p;
}

static struct seen_owner *find_or_add(struct seen *s, const char *owner)
{
    struct seen_owner **p = find(s, owner);
    if (*p || strlen(owner) >= WQ_KEY_MAX)
        return *p;
    if (s->owners >= s->max_owners) {
        clear(s); /* losing this memory only costs a few "changed" messages */
        p = find(s, owner);
    }
    struct seen_owner *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    strcpy(o->key, owner);
    *p = o;
    s->owners++;
    return o;
}

/* Our own Apply entry in managedFields: the server moves its time (and changes its field set)
 * only when one of our applies changed the object, not when someone else writes other fields
 * (status, labels) and not on a no-op apply. Its time has one-second resolution, so a change
 * within the second of the one before shows only in the body we sent. */
static const cJSON *our_entry(const cJSON *md)
{
    const cJSON *m;
    cJSON_ArrayForEach (m, cJSON_GetObjectItemCaseSensitive(md, "managedFields")) {
        const char *mgr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "manager"));
        const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "operation"));
        const char *sub = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "subresource"));
        if (mgr && op && !strcmp(mgr, OP_FIELD_MANAGER) && !strcmp(op, "Apply") && (!sub || !*sub))
            return m;
    }
    return NULL;
}

/* fnv() of a JSON value's compact text; 0 when it cannot be printed (out of memory). */
static uint64_t json_hash(const char *salt, const cJSON *v)
{
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    uint64_t h = text ? fnv(salt, text) : 0;
    free(text);
    return h;
}

static uint64_t fingerprint(const cJSON *sent, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata"), *m = our_entry(md);
    uint64_t body = json_hash("b", sent);
    if (m)
        return body ^ json_hash(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "time")),
                                cJSON_GetObjectItemCaseSensitive(m, "fieldsV1"));
    return body ^
           fnv("r", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion")));
}

enum seen_result seen_record(struct seen *s, const char *owner, enum kind_id kind,
                             const cJSON *sent, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    uint64_t name = fnv(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name")), NULL);
    uint64_t fp = fingerprint(sent, obj);
    enum seen_result r = SEEN_NEW;
    pthread_mutex_lock(&s->lock);
    struct seen_owner *o = find_or_add(s, owner);
    for (int i = 0; o && i < o->n; i++)
        if (o->objs[i].kind == kind && o->objs[i].name_hash == name) {
            r = o->objs[i].fp == fp ? SEEN_SAME : SEEN_CHANGED;
            o->objs[i].fp = fp;
            goto out;
        }
    if (o && o->n < SEEN_OBJS)
        o->objs[o->n++] = (struct seen_obj){.name_hash = name, .fp = fp, .kind = (uint8_t)kind};
out:
    pthread_mutex_unlock(&s->lock);
    return r;
}

void seen_forget(struct seen *s, const char *owner, enum kind_id kind, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct seen_owner **p = find(s, owner), *o = *p;
    if (o && kind == KIND_COUNT) {
        *p = o->next;
        free(o);
        s->owners--;
    } else if (o) {
        uint64_t h = fnv(name, NULL);
        for (int i = 0; i < o->n; i++)
            if (o->objs[i].kind == kind && o->objs[i].name_hash == h) {
                o->objs[i] = o->objs[--o->n];
                break;
            }
    }
    pthread_mutex_unlock(&s->lock);
}
