/* lease.c - Lease-based leader election. See lease.h. */
#include "lease.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jb.h"
#include "log.h"
#include "status.h"

#define THREAD_STACK (256 * 1024)

enum try_result { TRY_LEADING, TRY_FOLLOWING, TRY_ERROR };

static void lease_path(struct lease *l, char *buf, size_t cap, bool item)
{
    snprintf(buf, cap, "/apis/coordination.k8s.io/v1/namespaces/%s/leases%s%s", l->cfg.ns,
             item ? "/" : "", item ? l->cfg.name : "");
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

static void set_str(cJSON *o, const char *key, const char *value)
{
    cJSON *s = cJSON_CreateString(value);
    if (s && !cJSON_ReplaceItemInObjectCaseSensitive(o, key, s) &&
        !cJSON_AddItemToObject(o, key, s))
        cJSON_Delete(s);
}

static void set_num(cJSON *o, const char *key, double value)
{
    cJSON *n = cJSON_CreateNumber(value);
    if (n && !cJSON_ReplaceItemInObjectCaseSensitive(o, key, n) &&
        !cJSON_AddItemToObject(o, key, n))
        cJSON_Delete(n);
}

static enum try_result create_lease(struct lease *l)
{
    struct jb b = {0};
    char path[512], now[40], err[KUBE_ERR_MAX];
    long status;
    status_now(now, sizeof now, true);
    cJSON *o = cJSON_CreateObject();
    jb_str(&b, o, "apiVersion", "coordination.k8s.io/v1");
    jb_str(&b, o, "kind", "Lease");
    cJSON *md = jb_obj(&b, o, "metadata");
    jb_str(&b, md, "name", l->cfg.name);
    jb_str(&b, md, "namespace", l->cfg.ns);
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, spec, "holderIdentity", l->cfg.identity);
    jb_int(&b, spec, "leaseDurationSeconds", lround(l->cfg.duration));
    jb_str(&b, spec, "acquireTime", now);
    jb_str(&b, spec, "renewTime", now);
    jb_int(&b, spec, "leaseTransitions", 0);
    if (!(o = jb_done(&b, o)))
        return TRY_ERROR;
    lease_path(l, path, sizeof path, false);
    cJSON *r = kube_create(&l->kc, path, o, &status, err, sizeof err);
    cJSON_Delete(o);
    if (!r && status != 409)
        sp_warn("lease_failed", "create %s/%s: %s", l->cfg.ns, l->cfg.name, err);
    cJSON_Delete(r);
    return r ? TRY_LEADING : status == 409 ? TRY_FOLLOWING : TRY_ERROR;
}

/* Remembers when the record last changed, by our clock. */
static void observe(struct lease *l, const char *holder, const char *rv)
{
    if (strcmp(holder, l->observed_holder) || strcmp(rv, l->observed_rv)) {
        snprintf(l->observed_holder, sizeof l->observed_holder, "%s", holder);
        snprintf(l->observed_rv, sizeof l->observed_rv, "%s", rv);
        l->observed_at = sp_now();
    }
}

static enum try_result take(struct lease *l, cJSON *obj, const char *holder)
{
    char path[512], now[40], err[KUBE_ERR_MAX];
    long status;
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    bool ours = !strcmp(holder, l->cfg.identity);
    status_now(now, sizeof now, true);
    if (!ours) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, "leaseTransitions");
        set_num(spec, "leaseTransitions",
                (cJSON_IsNumber(t) ? t->valuedouble : 0) + (*holder ? 1 : 0));
        set_str(spec, "acquireTime", now);
    }
    set_str(spec, "holderIdentity", l->cfg.identity);
    set_num(spec, "leaseDurationSeconds", lround(l->cfg.duration));
    set_str(spec, "renewTime", now);
    lease_path(l, path, sizeof path, true);
    cJSON *r = kube_update(&l->kc, path, obj, &status, err, sizeof err);
    if (!r && status != 409)
        sp_warn("lease_failed", "update %s/%s: %s", l->cfg.ns, l->cfg.name, err);
    if (r && !ours)
        sp_counter_add(l->transitions, 1);
    cJSON_Delete(r);
    return r ? TRY_LEADING : status == 409 ? TRY_FOLLOWING : TRY_ERROR;
}

static enum try_result try_acquire_or_renew(struct lease *l)
{
    char path[512], err[KUBE_ERR_MAX];
    long status;
    lease_path(l, path, sizeof path, true);
    cJSON *obj = kube_get(&l->kc, path, &status, err, sizeof err);
    if (!obj && status == 404)
        return create_lease(l);
    if (!obj) {
        sp_warn("lease_failed", "get %s/%s: %s", l->cfg.ns, l->cfg.name, err);
        return TRY_ERROR;
    }
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds");
    char holder[256];
    snprintf(holder, sizeof holder, "%s", str(spec, "holderIdentity"));
    observe(l, holder, str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion"));
    double duration = cJSON_IsNumber(dur) ? dur->valuedouble : l->cfg.duration;
    enum try_result r = TRY_FOLLOWING;
    if (!*holder || !strcmp(holder, l->cfg.identity) || sp_now() - l->observed_at > duration)
        r = take(l, obj, holder);
    cJSON_Delete(obj);
    return r;
}

static void set_leading(struct lease *l, bool leading)
{
    if (atomic_load(&l->leading) == leading)
        return;
    pthread_mutex_lock(&l->lock);
    atomic_store(&l->leading, leading);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    sp_gauge_set(l->leader_gauge, leading);
    if (leading)
        sp_info("leader_elected", "%s leads (lease %s/%s)", l->cfg.identity, l->cfg.ns,
                l->cfg.name);
    else
        sp_warn("leader_lost", "%s stopped leading: no renewal for %.0f s", l->cfg.identity,
                l->cfg.renew_deadline);
}

/* Sleeps `seconds` unless lease_stop() is called. */
static void nap(struct lease *l, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)seconds;
    ts.tv_nsec += (long)((seconds - floor(seconds)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->lock);
    while (!atomic_load(&l->stop) && pthread_cond_timedwait(&l->cond, &l->lock, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&l->lock);
}

static void release(struct lease *l)
{
    char path[512], now[40], err[KUBE_ERR_MAX];
    long status;
    lease_path(l, path, sizeof path, true);
    cJSON *obj = kube_get(&l->kc, path, &status, err, sizeof err);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (!obj || strcmp(str(spec, "holderIdentity"), l->cfg.identity)) {
        cJSON_Delete(obj);
        return;
    }
    status_now(now, sizeof now, true);
    cJSON_DeleteItemFromObjectCaseSensitive(spec, "holderIdentity");
    set_num(spec, "leaseDurationSeconds", 1);
    set_str(spec, "renewTime", now);
    cJSON *r = kube_update(&l->kc, path, obj, &status, err, sizeof err);
    if (r)
        sp_info("leader_released", "%s gave up lease %s/%s", l->cfg.identity, l->cfg.ns,
                l->cfg.name);
    else
        sp_warn("lease_failed", "release %s/%s: %s", l->cfg.ns, l->cfg.name, err);
    cJSON_Delete(r);
    cJSON_Delete(obj);
}

static void *lease_main(void *arg)
{
    struct lease *l = arg;
    while (!atomic_load(&l->stop)) {
        enum try_result r = try_acquire_or_renew(l);
        double now = sp_now();
        if (r == TRY_LEADING) {
            l->last_renew = now;
            set_leading(l, true);
        } else if (atomic_load(&l->leading) &&
                   (r == TRY_FOLLOWING || now - l->last_renew > l->cfg.renew_deadline)) {
            set_leading(l, false); /* someone else holds it, or we could not renew in time */
        }
        nap(l, l->cfg.retry);
    }
    if (atomic_load(&l->leading))
        release(l);
    atomic_store(&l->leading, false);
    sp_gauge_set(l->leader_gauge, 0);
    return NULL;
}

void lease_init(struct lease *l)
{
    pthread_condattr_t cattr;
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &cattr);
    pthread_condattr_destroy(&cattr);
}

void lease_destroy(struct lease *l)
{
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
}

int lease_start(struct lease *l)
{
    pthread_attr_t attr;
    if (kube_client_init(&l->kc, l->kcfg, NULL) < 0) {
        sp_error("lease_failed", "cannot set up curl");
        return -1;
    }
    l->kc.timeout_ms = (long)(l->cfg.retry * 1000) +
                       3000; /* a hung call must not outlive a renewal */
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    int rc = pthread_create(&l->thread, &attr, lease_main, l);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        sp_error("lease_failed", "cannot start a thread");
        kube_client_free(&l->kc);
        return -1;
    }
    l->started = true;
    return 0;
}

bool lease_wait_leading(struct lease *l, const atomic_bool *stop)
{
    pthread_mutex_lock(&l->lock);
    while (!atomic_load(&l->leading) && !atomic_load(stop))
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
    return !atomic_load(stop);
}

void lease_wake(struct lease *l)
{
    pthread_mutex_lock(&l->lock);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

void lease_stop(struct lease *l)
{
    if (!l->started)
        return;
    pthread_mutex_lock(&l->lock);
    atomic_store(&l->stop, true);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    kube_client_free(&l->kc);
    l->started = false;
}
