/* data_namespace.c - the Valkey VMs' namespace and the pipeline's finalizer. See
 * data_namespace.h. */
#include "data_namespace.h"

#include <stdio.h>
#include <string.h>

#include "build.h"
#include "infra.h"
#include "kinds.h"

#define PSA_ENFORCE "pod-security.kubernetes.io/enforce"

static const char *str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const cJSON *metadata(const cJSON *obj)
{
    return cJSON_GetObjectItemCaseSensitive(obj, "metadata");
}

static const char *label(const cJSON *obj, const char *key)
{
    return str(cJSON_GetObjectItemCaseSensitive(metadata(obj), "labels"), key);
}

static bool ours(const cJSON *ns)
{
    const char *m = label(ns, "app.kubernetes.io/managed-by");
    return m && !strcmp(m, OP_MANAGED_BY);
}

int data_ns_ensure(struct kube_client *kc, const struct pipeline *p, bool *created, char *why,
                   size_t cap)
{
    char path[128], err[KUBE_ERR_MAX];
    long status;
    *created = false;
    snprintf(path, sizeof path, "/api/v1/namespaces/%s", p->valkey.ns);
    cJSON *live = kube_get(kc, path, &status, err, sizeof err);
    if (!live && status != 404) {
        snprintf(why, cap, "namespace %s: %s", p->valkey.ns, err);
        return -1;
    }
    int rc = 0;
    if (live && cJSON_GetObjectItemCaseSensitive(metadata(live), "deletionTimestamp")) {
        snprintf(why, cap, "namespace %s is being deleted; it is made again once it is gone",
                 p->valkey.ns);
        rc = -1;
    } else if (live && !ours(live)) {
        /* Someone else's: used as it is, never relabelled. */
        const char *level = label(live, PSA_ENFORCE);
        if (!level || strcmp(level, INFRA_DATA_NS_LEVEL)) {
            snprintf(why, cap,
                     "namespace %s enforces Pod Security level %s%s%s; KubeVirt's "
                     "virt-launcher pods need \"" INFRA_DATA_NS_LEVEL "\": label it " PSA_ENFORCE
                     "=" INFRA_DATA_NS_LEVEL " or set spec.valkey.namespace to a "
                     "namespace the operator may create",
                     p->valkey.ns, level ? "\"" : "",
                     level ? level : "(none: the cluster's default)", level ? "\"" : "");
            rc = -1;
        }
    } else if (live && (!label(live, INFRA_WORKERS_NS_LABEL) ||
                        strcmp(label(live, INFRA_WORKERS_NS_LABEL), p->ns))) {
        snprintf(why, cap,
                 "namespace %s holds the Valkey VMs of namespace %s's pipelines; set "
                 "spec.valkey.namespace to another",
                 p->valkey.ns,
                 label(live, INFRA_WORKERS_NS_LABEL) ? label(live, INFRA_WORKERS_NS_LABEL) : "?");
        rc = -1;
    } else {
        /* Missing, or ours: applied (a hand edit of its labels is undone). */
        cJSON *want = build_data_namespace(p);
        cJSON *got = want ? kube_apply(kc, path, want, &status, err, sizeof err) : NULL;
        if (!got) {
            snprintf(why, cap, "namespace %s: %s", p->valkey.ns, want ? err : "out of memory");
            rc = -1;
        }
        *created = got && status == 201;
        cJSON_Delete(want);
        cJSON_Delete(got);
    }
    cJSON_Delete(live);
    return rc;
}

/* Whether `ns` holds an object of ours that is not being deleted. -1 when it cannot tell. */
static int in_use(struct kube_client *kc, const char *ns, char *err, size_t cap)
{
    char path[512], esc[128];
    long status;
    if (kube_escape(esc, sizeof esc, OP_OWNED_SELECTOR) < 0)
        return -1;
    for (int k = 0; k < KIND_COUNT; k++) {
        if (!kinds[k].owned)
            continue;
        int n = kinds_path(path, sizeof path, (enum kind_id)k, ns, NULL);
        if (n < 0) {
            snprintf(err, cap, "namespace %s: path too long", ns);
            return -1;
        }
        snprintf(path + n, sizeof path - (size_t)n, "?labelSelector=%s", esc);
        cJSON *list = kube_call(kc, "GET", path, KUBE_ACCEPT_META_LIST, NULL, NULL, &status, err,
                                cap);
        if (!list && status == 404 && kinds[k].optional)
            continue;
        if (!list)
            return -1;
        const cJSON *item;
        bool used = false;
        cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive(list, "items"))
            used |= !cJSON_GetObjectItemCaseSensitive(metadata(item), "deletionTimestamp");
        cJSON_Delete(list);
        if (used)
            return 1;
    }
    return 0;
}

int data_ns_collect(struct kube_client *kc, const struct pipeline *p, const char *keep, char *err,
                    size_t cap)
{
    char path[512], sel[256], esc[400];
    long status;
    int deleted = 0;
    snprintf(sel, sizeof sel, OP_OWNED_SELECTOR "," INFRA_WORKERS_NS_LABEL "=%s", p->ns);
    if (kube_escape(esc, sizeof esc, sel) < 0) {
        snprintf(err, cap, "namespace selector too long");
        return -1;
    }
    snprintf(path, sizeof path, "/api/v1/namespaces?labelSelector=%s", esc);
    cJSON *list = kube_call(kc, "GET", path, KUBE_ACCEPT_META_LIST, NULL, NULL, &status, err, cap);
    if (!list)
        return -1;
    const cJSON *item;
    cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive(list, "items")) {
        const char *name = str(metadata(item), "name");
        if (!name || (keep && !strcmp(name, keep)) ||
            cJSON_GetObjectItemCaseSensitive(metadata(item), "deletionTimestamp"))
            continue;
        int used = in_use(kc, name, err, cap);
        snprintf(path, sizeof path, "/api/v1/namespaces/%s", name);
        if (used < 0 || (used == 0 && kube_delete(kc, path, err, cap) < 0)) {
            deleted = -1;
            break;
        }
        deleted += used == 0;
    }
    cJSON_Delete(list);
    return deleted;
}

bool pipeline_has_finalizer(const cJSON *obj)
{
    const cJSON *f;
    cJSON_ArrayForEach (f, cJSON_GetObjectItemCaseSensitive(metadata(obj), "finalizers"))
        if (cJSON_IsString(f) && !strcmp(f->valuestring, OP_FINALIZER))
            return true;
    return false;
}

int pipeline_set_finalizer(struct kube_client *kc, const cJSON *obj, bool present, char *err,
                           size_t cap)
{
    char path[512];
    long status;
    const cJSON *md = metadata(obj), *f;
    const char *ns = str(md, "namespace"), *name = str(md, "name"),
               *rv = str(md, "resourceVersion");
    if (!ns || !name || !rv || kinds_path(path, sizeof path, KIND_PIPELINE, ns, name) < 0) {
        snprintf(err, cap, "finalizer: object without namespace, name or resourceVersion");
        return -1;
    }
    /* The whole list, conditioned on the version it was read at: a merge patch replaces lists,
     * and the resourceVersion makes a concurrent change a 409 instead of a lost finalizer. */
    cJSON *patch = cJSON_CreateObject(), *pmd = cJSON_AddObjectToObject(patch, "metadata");
    cJSON *list = cJSON_AddArrayToObject(pmd, "finalizers");
    bool ok = cJSON_AddStringToObject(pmd, "resourceVersion", rv) && list;
    cJSON_ArrayForEach (f, cJSON_GetObjectItemCaseSensitive(md, "finalizers"))
        if (ok && cJSON_IsString(f) && strcmp(f->valuestring, OP_FINALIZER))
            ok = cJSON_AddItemToArray(list, cJSON_CreateString(f->valuestring));
    if (ok && present)
        ok = cJSON_AddItemToArray(list, cJSON_CreateString(OP_FINALIZER));
    cJSON *r = ok ? kube_call(kc, "PATCH", path, NULL, "application/merge-patch+json", patch,
                              &status, err, cap)
                  : NULL;
    if (!ok)
        snprintf(err, cap, "finalizer: out of memory");
    cJSON_Delete(patch);
    cJSON_Delete(r);
    return r ? 0 : -1;
}
