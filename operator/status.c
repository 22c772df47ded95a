/* status.c - status and conditions. See status.h for the contract. */
#include "status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "component.h"
#include "jb.h"
#include "kinds.h"

#define MSG_MAX 1024
#define N_CONDS 7

struct cond {
    const char *type, *status, *reason;
    char message[MSG_MAX];
};

static long num(const cJSON *o, const char *key, long def)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(n) ? (long)n->valuedouble : def;
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

static void read_failure(const cJSON *status, struct comp_status *cs)
{
    const cJSON *c;
    cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(status, "conditions")) {
        const char *type = str(c, "type"), *st = str(c, "status"), *reason = str(c, "reason");
        if ((!strcmp(type, "Progressing") && !strcmp(st, "False") &&
             !strcmp(reason, "ProgressDeadlineExceeded")) ||
            (!strcmp(type, "ReplicaFailure") && !strcmp(st, "True"))) {
            cs->failed = true;
            snprintf(cs->failure, sizeof cs->failure, "%s: %s", reason, str(c, "message"));
            return;
        }
    }
}

void status_read_deployment(const cJSON *deploy, struct comp_status *cs)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(deploy, "metadata"),
                *spec = cJSON_GetObjectItemCaseSensitive(deploy, "spec"),
                *st = cJSON_GetObjectItemCaseSensitive(deploy, "status");
    long generation = num(md, "generation", 0), observed = num(st, "observedGeneration", 0);
    long total = num(st, "replicas", 0);
    cs->known = true;
    cs->replicas = num(spec, "replicas", 1);
    cs->ready = num(st, "readyReplicas", 0);
    cs->updated = num(st, "updatedReplicas", 0);
    /* Rolled out (as `kubectl rollout status` judges): the controller saw this generation,
     * every wanted replica runs the new template and is ready, and no old pod remains. */
    cs->is_ready = observed >= generation && cs->updated >= cs->replicas &&
                   cs->ready >= cs->replicas && total <= cs->replicas;
    read_failure(st, cs);
}

void status_read_hpa(const cJSON *hpa, struct hpa_status *hs)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(hpa, "status"), *m;
    *hs = (struct hpa_status){.cpu = -1};
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(st, "currentReplicas")))
        return; /* the HPA controller has not looked at it yet */
    hs->known = true;
    hs->current = num(st, "currentReplicas", 0);
    /* 0 until the controller could compute a recommendation (it never wants 0 pods). */
    hs->desired = num(st, "desiredReplicas", 0) > 0 ? num(st, "desiredReplicas", 0) : -1;
    snprintf(hs->last_scale, sizeof hs->last_scale, "%s", str(st, "lastScaleTime"));
    cJSON_ArrayForEach (m, cJSON_GetObjectItemCaseSensitive(st, "currentMetrics")) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(m, "resource");
        if (!strcmp(str(m, "type"), "Resource") && !strcmp(str(res, "name"), "cpu"))
            hs->cpu = num(cJSON_GetObjectItemCaseSensitive(res, "current"), "averageUtilization",
                          -1);
    }
}

void status_read_ingress(const cJSON *ingress, char *addr, size_t cap)
{
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ingress, "status"), "loadBalancer");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lb, "ingress"), 0);
    const char *ip = str(first, "ip"), *host = str(first, "hostname");
    snprintf(addr, cap, "%s", *ip ? ip : host);
}

void status_now(char *buf, size_t cap, bool micro)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (micro)
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---------------------------------------------------------------- conditions */

static void waiting_message(const struct status_input *in, char *msg, size_t cap)
{
    size_t n = (size_t)snprintf(msg, cap, "waiting for:");
    for (int i = 0; i < in->n_comps && n < cap; i++) {
        const struct comp_status *c = &in->comps[i];
        if (!c->is_ready)
            n += (size_t)snprintf(msg + n, cap - n, " %s %ld/%ld", c->name, c->ready, c->replicas);
    }
}

static const struct comp_status *first_failed(const struct status_input *in)
{
    for (int i = 0; i < in->n_comps; i++)
        if (in->comps[i].failed)
            return &in->comps[i];
    return NULL;
}

static void set(struct cond *c, const char *status, const char *reason, const char *msg)
{
    c->status = status;
    c->reason = reason;
    snprintf(c->message, sizeof c->message, "%s", msg);
}

static bool workers_ready(const struct status_input *in)
{
    for (int i = 0; i < in->n_comps; i++)
        if (!in->comps[i].known || !in->comps[i].is_ready)
            return false;
    return true;
}

static bool all_ready(const struct status_input *in)
{
    return workers_ready(in) && in->kafka.ready && in->valkey.ready && in->dashboards &&
           !in->error && in->observed_generation == in->p->generation;
}

void status_merge_part(struct part_status *part, const struct part_status *one)
{
    if (!part->known) { /* the first object of the part */
        *part = *one;
        return;
    }
    if (!one->ready && part->ready)
        snprintf(part->message, sizeof part->message, "%s", one->message);
    part->ready = part->ready && one->ready;
    part->restart_required = part->restart_required || one->restart_required;
    if (one->restart_required && part->ready && !*part->message)
        snprintf(part->message, sizeof part->message, "%s", one->message);
}

/* Appends "; text" (or " text" right after "waiting for:") to msg. */
static size_t append_part(char *msg, size_t n, size_t cap, bool first, const char *text)
{
    if (n < cap)
        n += (size_t)snprintf(msg + n, cap - n, "%s%s", first ? " " : "; ", text);
    return n;
}

/* "waiting for: api 0/1 ..." then the other parts' own messages, for Ready. */
static void ready_message(const struct status_input *in, char *msg, size_t cap)
{
    bool workers = workers_ready(in);
    if (workers)
        snprintf(msg, cap, "waiting for:");
    else
        waiting_message(in, msg, cap);
    size_t n = strlen(msg);
    bool first = workers;
    if (!in->kafka.ready) {
        n = append_part(msg, n, cap, first, in->kafka.message);
        first = false;
    }
    if (!in->valkey.ready) {
        n = append_part(msg, n, cap, first, in->valkey.message);
        first = false;
    }
    if (!in->dashboards)
        append_part(msg, n, cap, first, "the Grafana dashboards");
}

static void part_conditions(const struct status_input *in, struct cond out[4])
{
    char msg[MSG_MAX];
    out[0].type = "WorkersReady";
    waiting_message(in, msg, sizeof msg);
    if (workers_ready(in))
        set(&out[0], "True", "AllComponentsReady", "every worker Deployment rolled out");
    else
        set(&out[0], "False", "ComponentsNotReady", msg);
    out[1].type = "KafkaReady";
    if (in->kafka.ready && pipeline_kafka_external(in->p))
        set(&out[1], "True", "ExternalKafka", in->kafka.message);
    else if (in->kafka.ready)
        set(&out[1], "True", "KafkaReady",
            in->p->kafka.managed ? "Kafka, node pool and topic ready"
                                 : "topic ready on the existing cluster");
    else
        set(&out[1], "False", "KafkaNotReady", in->kafka.message);
    out[2].type = "ValkeyReady";
    if (in->valkey.ready && pipeline_valkey_external(in->p))
        set(&out[2], "True", "ExternalValkey", in->valkey.message);
    else if (in->valkey.ready)
        set(&out[2], "True", "ValkeyReady",
            in->valkey.restart_required ? in->valkey.message : "every Valkey VM running and ready");
    else
        set(&out[2], "False", "ValkeyNotReady", in->valkey.message);
    out[3].type = "DashboardReady";
    if (in->dashboards)
        set(&out[3], "True", "DashboardsPublished",
            "dashboards and data source published for the Grafana sidecars");
    else
        set(&out[3], "False", "DashboardsNotPublished", "not applied yet");
}

static void conditions(const struct status_input *in, struct cond out[N_CONDS])
{
    const struct comp_status *failed = first_failed(in);
    bool ready = all_ready(in), applied = in->observed_generation == in->p->generation;
    char msg[MSG_MAX];
    out[0].type = "Ready";
    out[1].type = "Progressing";
    out[2].type = "Degraded";
    part_conditions(in, &out[3]);
    ready_message(in, msg, sizeof msg);
    if (in->error)
        set(&out[0], "False", in->invalid_spec ? "InvalidSpec" : "ReconcileFailed", in->error);
    else if (ready)
        set(&out[0], "True", "AllComponentsReady", "all components are ready");
    else
        set(&out[0], "False", "ComponentsNotReady", msg);

    if (in->invalid_spec)
        set(&out[1], "False", "InvalidSpec", in->error);
    else if (failed)
        set(&out[1], "False", "ProgressDeadlineExceeded", failed->failure);
    else if (in->error || !applied)
        set(&out[1], "True", "Reconciling", "the latest spec is not applied yet");
    else if (!ready)
        set(&out[1], "True", "RollingOut", msg);
    else
        set(&out[1], "False", "Complete", "every component runs the latest spec");

    if (in->error)
        set(&out[2], "True", in->invalid_spec ? "InvalidSpec" : "ReconcileFailed", in->error);
    else if (failed) {
        snprintf(msg, sizeof msg, "%s: %s", failed->deployment, failed->failure);
        set(&out[2], "True", "DeploymentFailed", msg);
    } else
        set(&out[2], "False", "AsExpected", "no problem seen");
}

/* The current condition's lastTransitionTime when its status is unchanged, else `now`. */
static const char *transition_time(const cJSON *current, const struct cond *c, const char *now)
{
    const cJSON *old;
    cJSON_ArrayForEach (old, cJSON_GetObjectItemCaseSensitive(current, "conditions")) {
        if (strcmp(str(old, "type"), c->type))
            continue;
        const char *t = str(old, "lastTransitionTime");
        return !strcmp(str(old, "status"), c->status) && *t ? t : now;
    }
    return now;
}

static void add_conditions(struct jb *b, cJSON *st, const struct status_input *in,
                           const cJSON *current, const char *now)
{
    struct cond conds[N_CONDS];
    conditions(in, conds);
    cJSON *arr = jb_arr(b, st, "conditions");
    for (int i = 0; i < N_CONDS; i++) {
        cJSON *c = jb_obj(b, arr, NULL);
        jb_str(b, c, "type", conds[i].type);
        jb_str(b, c, "status", conds[i].status);
        jb_str(b, c, "reason", conds[i].reason);
        jb_str(b, c, "message", conds[i].message);
        jb_int(b, c, "observedGeneration", in->p->generation);
        jb_str(b, c, "lastTransitionTime", transition_time(current, &conds[i], now));
    }
}

static void add_components(struct jb *b, cJSON *st, const struct status_input *in)
{
    cJSON *arr = jb_arr(b, st, "components");
    for (int i = 0; i < in->n_comps; i++) {
        const struct comp_status *cs = &in->comps[i];
        cJSON *c = jb_obj(b, arr, NULL);
        jb_str(b, c, "name", cs->name);
        jb_str(b, c, "deployment", cs->deployment);
        jb_int(b, c, "replicas", cs->replicas);
        jb_int(b, c, "readyReplicas", cs->ready);
        jb_int(b, c, "updatedReplicas", cs->updated);
        jb_bool(b, c, "ready", cs->known && cs->is_ready);
    }
}

static void add_api(struct jb *b, cJSON *st, const struct status_input *in)
{
    char cpu[48];
    cJSON *api = jb_obj(b, st, "api");
    jb_int(b, api, "currentReplicas", in->api.current);
    if (in->api.desired > 0)
        jb_int(b, api, "desiredReplicas", in->api.desired);
    if (in->api.cpu >= 0) {
        jb_int(b, api, "cpuUtilization", in->api.cpu);
        snprintf(cpu, sizeof cpu, "%ld%%/%d%%", in->api.cpu, in->p->api.cpu_target);
    } else {
        snprintf(cpu, sizeof cpu, "<unknown>/%d%%", in->p->api.cpu_target);
    }
    jb_str(b, api, "cpu", cpu);
    if (*in->api.last_scale)
        jb_str(b, api, "lastScaleTime", in->api.last_scale);
}

static void api_url(const struct status_input *in, char *buf, size_t cap)
{
    const struct pipeline *p = in->p;
    const char *host = *p->ingress.host ? p->ingress.host : in->ingress_address;
    if (!p->ingress.enabled)
        snprintf(buf, cap, "http://%s-api.%s.svc:%d/ventas", p->name, p->ns,
                 component_port("api", SP_FROM_PORT_HTTP));
    else if (*host)
        snprintf(buf, cap, "http://%s/ventas", host);
    else
        buf[0] = '\0';
}

cJSON *status_build(const struct status_input *in, const cJSON *current, const char *now)
{
    struct jb b = {0};
    char url[512];
    cJSON *o = cJSON_CreateObject();
    jb_str(&b, o, "apiVersion", OP_API_VERSION);
    jb_str(&b, o, "kind", OP_KIND);
    cJSON *md = jb_obj(&b, o, "metadata");
    jb_str(&b, md, "name", in->p->name);
    jb_str(&b, md, "namespace", in->p->ns);
    cJSON *st = jb_obj(&b, o, "status");
    if (in->observed_generation > 0)
        jb_int(&b, st, "observedGeneration", in->observed_generation);
    add_conditions(&b, st, in, current, now);
    add_components(&b, st, in);
    if (in->api.known)
        add_api(&b, st, in);
    if (*in->ingress_address)
        jb_str(&b, st, "ingressAddress", in->ingress_address);
    api_url(in, url, sizeof url);
    if (*url)
        jb_str(&b, st, "apiURL", url);
    if (*pipeline_category(in->p->carnet))
        jb_str(&b, st, "category", pipeline_category(in->p->carnet));
    return jb_done(&b, o);
}

bool status_same(const cJSON *built, const cJSON *current)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(built, "status");
    return current && cJSON_Compare(st, current, true);
}
