/* reconcile.c - see reconcile.h. */
#include "reconcile.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "build.h"
#include "data_namespace.h"
#include "desired.h"
#include "infra.h"
#include "infra_status.h"
#include "kinds.h"
#include "log.h"
#include "valkey_password.h"
#include "pipeline.h"
#include "status.h"
#include "workqueue.h"

/* What one reconcile carries between its steps. */
struct run {
    struct reconciler *r;
    const struct pipeline *p;
    struct event_ref ref;
    char owner[WQ_KEY_MAX];
    struct status_input in;
    char error[KUBE_ERR_MAX + 128];         /* the first failure; later ones are only logged */
    int dashboards;                         /* Grafana objects applied */
    char data_ns_error[KUBE_ERR_MAX + 256]; /* why the data namespace cannot be used, or "" */
};

static void fail(struct run *run, const char *fmt, const char *what, const char *err)
{
    char msg[sizeof run->error];
    snprintf(msg, sizeof msg, fmt, what, err);
    sp_warn("reconcile_step_failed", "%s: %s", run->owner, msg);
    events_emit(run->r->events, run->r->kc, &run->ref, "Warning", "ReconcileFailed", "%s", msg);
    if (!*run->error)
        snprintf(run->error, sizeof run->error, "%s", msg);
}

static void note_change(struct run *run, const char *reason, const char *kind, const char *name)
{
    sp_counter_add(run->r->changes, 1);
    sp_info("object_changed", "%s: %s %s %s", run->owner, reason, kind, name);
    events_emit(run->r->events, run->r->kc, &run->ref, "Normal", reason, "%s %s %s", reason, kind,
                name);
}

/* The part (KafkaReady, ValkeyReady) an object's readiness counts for, or NULL. */
static struct part_status *part_of(struct run *run, enum kind_id kind)
{
    switch (kind) {
    case KIND_KAFKA:
    case KIND_KAFKA_NODEPOOL:
    case KIND_KAFKA_TOPIC:
        return &run->in.kafka;
    case KIND_VM:
        return &run->in.valkey;
    default:
        return NULL;
    }
}

/* Readiness of the Strimzi and KubeVirt objects, from the apply's answer (it holds the status
 * their operators wrote), or, when the apply failed, a part that cannot be ready. */
static void read_part(struct run *run, const struct desired_obj *o, const cJSON *live,
                      const char *err)
{
    struct part_status one, *part = part_of(run, o->kind);
    if (!part)
        return;
    if (!live) {
        one = (struct part_status){.known = true};
        snprintf(one.message, sizeof one.message, "%s %s not applied: %.160s", kinds[o->kind].kind,
                 o->name, err);
    } else if (o->kind == KIND_KAFKA_NODEPOOL) {
        infra_read_nodepool(live, &one);
    } else if (o->kind == KIND_VM) {
        infra_read_vm(live, &one);
        if (one.ready && one.restart_required)
            snprintf(one.message, sizeof one.message,
                     "VirtualMachine %s runs an older spec until "
                     "it restarts (virtctl restart %s)",
                     o->name, o->name);
    } else {
        infra_read_strimzi(live, &one);
    }
    status_merge_part(part, &one);
}

/* Server-side apply of one desired object; reads back what the status needs. */
static void apply_one(struct run *run, const struct desired_obj *o)
{
    char path[512], err[KUBE_ERR_MAX], what[400];
    long status;
    snprintf(what, sizeof what, "%s %s/%s", kinds[o->kind].kind, o->ns, o->name);
    if (strcmp(o->ns, run->p->ns) && *run->data_ns_error) {
        read_part(run, o, NULL, run->data_ns_error); /* not tried: its namespace is unusable */
        return;
    }
    if (kinds_path(path, sizeof path, o->kind, o->ns, o->name) < 0) {
        fail(run, "apply %s: %s", what, "path too long");
        return;
    }
    cJSON *live = kube_apply(run->r->kc, path, o->obj, &status, err, sizeof err);
    sp_counter_add(run->r->applies, 1);
    read_part(run, o, live, err);
    if (!live) {
        fail(run, "apply %s: %s", what, err);
        return;
    }
    if (o->comp == DESIRED_DASHBOARD)
        run->dashboards++;
    enum seen_result seen = seen_record(run->r->seen, run->owner, o->kind, o->obj, live);
    if (status == 201)
        note_change(run, "Created", kinds[o->kind].kind, o->name);
    else if (seen == SEEN_CHANGED)
        note_change(run, "Updated", kinds[o->kind].kind, o->name);
    if (o->kind == KIND_DEPLOYMENT && o->comp >= 0)
        status_read_deployment(live, &run->in.comps[o->comp]);
    else if (o->kind == KIND_INGRESS)
        status_read_ingress(live, run->in.ingress_address, sizeof run->in.ingress_address);
    else if (o->kind == KIND_HPA)
        status_read_hpa(live, &run->in.api);
    cJSON_Delete(live);
}

/* Deletes the objects of `kind` this pipeline owns but `d` does not want. In the pipeline's
 * namespace they are the ones it controls (owner reference); elsewhere (`data`: the data
 * namespace, whichever it is or was) the ones labelled with its namespace and name. */
static void prune_kind(struct run *run, const struct desired *d, enum kind_id kind, bool data)
{
    char path[1024], sel[512], esc[700], err[KUBE_ERR_MAX];
    long status;
    const cJSON *item;
    int n = snprintf(sel, sizeof sel, OP_OWNED_SELECTOR "," OP_INSTANCE_LABEL "=%s", run->p->name);
    if (data)
        snprintf(sel + n, sizeof sel - (size_t)n, "," OP_PIPELINE_NS_LABEL "=%s", run->p->ns);
    /* Cluster-wide, the data namespace may be any (or have moved): every namespace is listed. */
    n = kinds_path(path, sizeof path, kind, data ? run->r->data_ns : run->p->ns, NULL);
    if (n < 0 || kube_escape(esc, sizeof esc, sel) < 0) {
        fail(run, "prune %s: %s", kinds[kind].plural, "path too long");
        return;
    }
    snprintf(path + n, sizeof path - (size_t)n, "?labelSelector=%s", esc);
    cJSON *list = kube_call(run->r->kc, "GET", path, KUBE_ACCEPT_META_LIST, NULL, NULL, &status,
                            err, sizeof err);
    if (!list && status == 404 && kinds[kind].optional)
        return; /* the kind is not served (its operator is not installed): nothing to prune */
    if (!list) {
        fail(run, "list %s: %s", kinds[kind].plural, err);
        return;
    }
    cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive(list, "items")) {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(item, "metadata");
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
        const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
        if (!name || !ns || desired_has(d, kind, ns, name) ||
            (data ? !strcmp(ns, run->p->ns) : !build_controlled_by(item, run->p->uid)) ||
            cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp"))
            continue;
        if (kinds_path(path, sizeof path, kind, ns, name) < 0 ||
            kube_delete(run->r->kc, path, err, sizeof err) < 0) {
            fail(run, "delete %s: %s", name, err);
            continue;
        }
        seen_forget(run->r->seen, run->owner, kind, name);
        note_change(run, "Deleted", kinds[kind].kind, name);
    }
    cJSON_Delete(list);
}

/* `keep`: the data namespace in use, or NULL when the pipeline goes (then only the objects
 * outside its namespace: the garbage collector takes the ones it owns). */
static void prune(struct run *run, const struct desired *d, const char *keep)
{
    char err[KUBE_ERR_MAX];
    for (int k = 0; k < KIND_COUNT; k++)
        if (kinds[k].owned) {
            if (keep)
                prune_kind(run, d, (enum kind_id)k, false);
            prune_kind(run, d, (enum kind_id)k, true);
        }
    if (*run->error || run->r->data_ns)
        return; /* collected only once everything of ours in it was deleted, and only the
                   * namespaces a cluster-wide operator made */
    if (data_ns_collect(run->r->kc, run->p, keep, err, sizeof err) < 0)
        fail(run, "%s: %s", "data namespaces", err);
}

/* Applies the status if it differs from the object's; returns 0 or -1 (err set). */
static int write_status(struct run *run, const cJSON *current, char *err, size_t errcap)
{
    char path[512], now[40];
    long status;
    status_now(now, sizeof now, false);
    cJSON *st = status_build(&run->in, current, now);
    if (!st) {
        snprintf(err, errcap, "status: out of memory");
        return -1;
    }
    int rc = 0;
    if (!status_same(st, current)) {
        kinds_path(path, sizeof path, KIND_PIPELINE, run->p->ns, run->p->name);
        strncat(path, "/status", sizeof path - strlen(path) - 1);
        cJSON *live = kube_apply(run->r->kc, path, st, &status, err, errcap);
        rc = live ? 0 : -1;
        cJSON_Delete(live);
    }
    cJSON_Delete(st);
    return rc;
}

static void init_components(struct run *run, const struct desired *d)
{
    run->in.n_comps = d->n_comps;
    for (int i = 0; i < d->n_comps; i++) {
        struct comp_status *cs = &run->in.comps[i];
        snprintf(cs->name, sizeof cs->name, "%s", d->comps[i].name);
        component_deployment_name(run->p, &d->comps[i], cs->deployment, sizeof cs->deployment);
        cs->replicas = d->comps[i].replicas < 0 ? run->p->api.min_replicas : d->comps[i].replicas;
    }
}

/* An external Kafka or Valkey has no object whose status the operator could read: the part
 * counts as ready, and the workers' readiness (each checks its Kafka or Valkey) tells whether
 * it answers. */
static void external_parts(struct run *run)
{
    const struct pipeline *p = run->p;
    if (pipeline_kafka_external(p)) {
        run->in.kafka = (struct part_status){.known = true, .ready = true};
        snprintf(run->in.kafka.message, sizeof run->in.kafka.message,
                 "external Kafka %.120s; "
                 "the writers' and the consumer's readiness check it",
                 p->kafka.bootstrap_servers);
    }
    if (pipeline_valkey_external(p)) {
        run->in.valkey = (struct part_status){.known = true, .ready = true};
        snprintf(run->in.valkey.message, sizeof run->in.valkey.message,
                 "external Valkey %.120s; "
                 "the consumer's readiness checks it",
                 p->valkey.url);
    }
}

/* spec.imagePullSecret, copied into the data namespace for KubeVirt's pull of the disk image.
 * Missing, or not opted in to be read (the user's Secret: valkey_secret_get), it is reported,
 * not fatal: the workers' pods would not pull either. */
static void add_pull_secret_copy(struct run *run, struct desired *d)
{
    char err[KUBE_ERR_MAX];
    long status;
    bool refused;
    if (!*run->p->pull_secret || pipeline_valkey_external(run->p))
        return;
    cJSON *source = valkey_secret_get(run->r->kc, run->p, run->p->pull_secret, &status, &refused,
                                      err, sizeof err);
    if (refused) {
        events_emit(run->r->events, run->r->kc, &run->ref, "Warning", "PullSecretNotReadable",
                    "spec.imagePullSecret %s is not copied next to the Valkey VMs in %s: %s",
                    run->p->pull_secret, run->p->valkey.ns, err);
        return;
    }
    if (!source && status == 404) {
        events_emit(run->r->events, run->r->kc, &run->ref, "Warning", "PullSecretMissing",
                    "spec.imagePullSecret %s does not exist in %s: the Valkey VMs pull %s "
                    "without credentials",
                    run->p->pull_secret, run->p->ns, run->p->valkey.image);
        return;
    }
    if (!source) { /* not known to be gone: no pruning of the copy on a passing failure */
        fail(run, "%s: %s", "reading spec.imagePullSecret", err);
        return;
    }
    if (desired_add(d, KIND_SECRET, build_valkey_pull_secret(run->p, source)) < 0)
        fail(run, "%s: %s", "pull Secret copy", "out of memory");
    cJSON_Delete(source);
}

static long observed_generation(const cJSON *status)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(status, "observedGeneration");
    return cJSON_IsNumber(g) ? (long)g->valuedouble : 0;
}

/* A spec the operator cannot use: say so in the status and an Event, do not retry. */
static enum rec_result invalid(struct run *run, const cJSON *current, const char *why, char *err,
                               size_t errcap)
{
    snprintf(run->error, sizeof run->error, "invalid spec: %s", why);
    run->in.error = run->error;
    run->in.invalid_spec = true;
    events_emit(run->r->events, run->r->kc, &run->ref, "Warning", "InvalidSpec", "%s", run->error);
    snprintf(err, errcap, "%s", run->error);
    char serr[KUBE_ERR_MAX];
    if (write_status(run, current, serr, sizeof serr) < 0)
        sp_warn("status_failed", "%s: %s", run->owner, serr);
    return REC_INVALID;
}

static enum rec_result reconcile_object(struct run *run, struct pipeline *p, const cJSON *obj,
                                        char *err, size_t errcap)
{
    const cJSON *current = cJSON_GetObjectItemCaseSensitive(obj, "status");
    struct desired d;
    char perr[256];
    int parsed = pipeline_parse(obj, p, perr, sizeof perr);
    run->ref = (struct event_ref){p->ns, p->name, p->uid};
    run->in.observed_generation = observed_generation(current);
    if (parsed < 0 && !*p->uid) {
        snprintf(err, errcap, "unusable object: %s", perr);
        return REC_INVALID;
    }
    if (parsed < 0)
        return invalid(run, current, perr, err, errcap);
    /* Before anything is made outside the pipeline's namespace: its deletion must wait for
     * the operator to clean up there (no owner reference reaches across namespaces). */
    if (!pipeline_has_finalizer(obj) &&
        pipeline_set_finalizer(run->r->kc, obj, true, perr, sizeof perr) < 0) {
        snprintf(err, errcap, "adding finalizer " OP_FINALIZER ": %s", perr);
        return REC_ERROR;
    }
    char pw[INFRA_PASSWORD_LEN + 64] = "", perr2[KUBE_ERR_MAX];
    bool generated = false;
    if (infra_valkey_has_password(p) &&
        valkey_password_fetch(run->r->kc, p, pw, sizeof pw, &generated, perr2, sizeof perr2) < 0) {
        fail(run, "%s: %s", "Valkey password", perr2);
        run->in.error = run->error;
        if (write_status(run, current, perr2, sizeof perr2) < 0)
            sp_warn("status_failed", "%s: %s", run->owner, perr2);
        snprintf(err, errcap, "%s", run->error);
        return REC_ERROR;
    }
    if (generated)
        events_emit(run->r->events, run->r->kc, &run->ref, "Normal", "PasswordGenerated",
                    "generated the Valkey password (Secret %s-valkey)", p->name);
    int rc = desired_build(p, pw, &d);
    OPENSSL_cleanse(pw, sizeof pw);
    if (rc < 0) {
        snprintf(err, errcap, "out of memory building objects");
        return REC_ERROR;
    }
    init_components(run, &d);
    external_parts(run);
    add_pull_secret_copy(run, &d);
    bool ns_created = false;
    if (pipeline_valkey_external(p)) {
        ; /* no VMs, so no data namespace (an old one of ours is collected by prune) */
    } else if (run->r->data_ns && strcmp(p->valkey.ns, run->r->data_ns)) {
        snprintf(run->data_ns_error, sizeof run->data_ns_error,
                 "spec.valkey.namespace is %s, but this operator is installed for one namespace "
                 "and may use the data namespace %s only: set spec.valkey.namespace to %s, or "
                 "install the operator cluster-wide (manifests/cluster-wide/)",
                 p->valkey.ns, run->r->data_ns, run->r->data_ns);
        fail(run, "%s: %s", "Valkey VMs", run->data_ns_error);
    } else if (data_ns_ensure(run->r->kc, p, &ns_created, run->data_ns_error,
                              sizeof run->data_ns_error) < 0)
        fail(run, "%s: %s", "Valkey VMs", run->data_ns_error);
    else if (ns_created)
        note_change(run, "Created", "Namespace", p->valkey.ns);
    int dashboards = 0;
    for (int i = 0; i < d.n; i++) {
        apply_one(run, &d.objs[i]);
        dashboards += d.objs[i].comp == DESIRED_DASHBOARD;
    }
    run->in.dashboards = run->dashboards == dashboards;
    if (!*run->error && p->generation != run->in.observed_generation)
        prune(run, &d, p->valkey.ns);
    desired_free(&d);
    if (!*run->error)
        run->in.observed_generation = p->generation;
    run->in.error = *run->error ? run->error : NULL;
    if (write_status(run, current, err, errcap) < 0 && !*run->error)
        return REC_ERROR;
    if (*run->error)
        snprintf(err, errcap, "%s", run->error);
    return *run->error ? REC_ERROR : REC_OK;
}

/* The pipeline is being deleted: its objects in the pipeline's namespace go with it (owner
 * references); the ones elsewhere are deleted here, then the data namespace if nothing of ours
 * is left in it, then the finalizer is removed and the deletion completes. */
static enum rec_result finalize(struct run *run, struct pipeline *p, const cJSON *obj, char *err,
                                size_t errcap)
{
    struct desired none = {0};
    char perr[256];
    if (!pipeline_has_finalizer(obj))
        return REC_OK;
    /* The labels need only the namespace and name: a spec that does not parse is cleaned up too. */
    if (pipeline_parse(obj, p, perr, sizeof perr) < 0 && (!*p->ns || !*p->name)) {
        snprintf(err, errcap, "unusable object: %s", perr);
        return REC_INVALID;
    }
    run->ref = (struct event_ref){p->ns, p->name, p->uid};
    prune(run, &none, NULL);
    if (*run->error) {
        snprintf(err, errcap, "cleaning up before deletion: %s", run->error);
        return REC_ERROR;
    }
    if (pipeline_set_finalizer(run->r->kc, obj, false, perr, sizeof perr) < 0) {
        snprintf(err, errcap, "removing finalizer " OP_FINALIZER ": %s", perr);
        return REC_ERROR;
    }
    seen_forget(run->r->seen, run->owner, KIND_COUNT, NULL);
    return REC_OK;
}

enum rec_result reconcile_pipeline(struct reconciler *r, const char *ns, const char *name,
                                   char *err, size_t errcap)
{
    char path[512];
    long status;
    struct pipeline p;
    struct run run = {.r = r, .p = &p, .in = {.p = &p}};
    snprintf(run.owner, sizeof run.owner, "%s/%s", ns, name);
    if (kinds_path(path, sizeof path, KIND_PIPELINE, ns, name) < 0) {
        snprintf(err, errcap, "name too long");
        return REC_INVALID;
    }
    cJSON *obj = kube_get(r->kc, path, &status, err, errcap);
    if (!obj && status == 404) {
        seen_forget(r->seen, run.owner, KIND_COUNT, NULL); /* gone: the GC removes the rest */
        return REC_OK;
    }
    if (!obj)
        return REC_ERROR;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    enum rec_result res;
    if (cJSON_GetObjectItemCaseSensitive(md, "deletionTimestamp"))
        res = finalize(&run, &p, obj, err, errcap);
    else
        res = reconcile_object(&run, &p, obj, err, errcap);
    cJSON_Delete(obj);
    return res;
}
