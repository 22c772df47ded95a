/* pipeline.c - SalesPipeline parsing. See pipeline.h. Defaults mirror the CRD's
 * (crds/salespipelines.sales.blackfriday.dev.yaml); pipeline_test.c checks that they agree. */
#include "pipeline.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "contract.h"
#include "infra.h"
#include "sale.h"

/* Where a field lives, for error messages: "spec.api" + "minReplicas". */
struct at {
    const char *path;
    char *err;
    size_t errcap;
};

static const cJSON *child(const cJSON *o, const char *key)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(c) ? NULL : c;
}

static int fail(const struct at *at, const char *key, const char *why)
{
    snprintf(at->err, at->errcap, "%s.%s: %s", at->path, key, why);
    return -1;
}

/* A string (or, for int-or-string quantities, an integer) into dst; `def` when absent. */
static int get_str(const cJSON *o, const char *key, const char *def, char *dst, size_t cap,
                   const struct at *at)
{
    const cJSON *c = child(o, key);
    int n;
    if (!c)
        n = snprintf(dst, cap, "%s", def);
    else if (cJSON_IsString(c))
        n = snprintf(dst, cap, "%s", c->valuestring);
    else if (cJSON_IsNumber(c) && c->valuedouble == floor(c->valuedouble) &&
             fabs(c->valuedouble) < 1e15)
        n = snprintf(dst, cap, "%.0f", c->valuedouble);
    else
        return fail(at, key, "must be a string");
    return (size_t)n >= cap ? fail(at, key, "too long") : 0;
}

static int get_int(const cJSON *o, const char *key, long def, long min, long max, long *dst,
                   const struct at *at)
{
    const cJSON *c = child(o, key);
    if (!c) {
        *dst = def;
        return 0;
    }
    if (!cJSON_IsNumber(c) || c->valuedouble != floor(c->valuedouble))
        return fail(at, key, "must be an integer");
    if (c->valuedouble < (double)min || c->valuedouble > (double)max)
        return fail(at, key, "out of range");
    *dst = (long)c->valuedouble;
    return 0;
}

static int get_int32(const cJSON *o, const char *key, int def, int min, int max, int *dst,
                     const struct at *at)
{
    long v;
    if (get_int(o, key, def, min, max, &v, at) < 0)
        return -1;
    *dst = (int)v;
    return 0;
}

static int get_bool(const cJSON *o, const char *key, bool def, bool *dst, const struct at *at)
{
    const cJSON *c = child(o, key);
    if (!c)
        *dst = def;
    else if (cJSON_IsBool(c))
        *dst = cJSON_IsTrue(c);
    else
        return fail(at, key, "must be a boolean");
    return 0;
}

static int parse_resources(const cJSON *parent, const char *path, struct pl_resources *r, char *err,
                           size_t errcap)
{
    char p[128];
    const cJSON *res = child(parent, "resources");
    snprintf(p, sizeof p, "%s.resources.requests", path);
    struct at req = {p, err, errcap};
    const cJSON *requests = child(res, "requests"), *limits = child(res, "limits");
    if (get_str(requests, "cpu", "100m", r->req_cpu, sizeof r->req_cpu, &req) ||
        get_str(requests, "memory", "64Mi", r->req_mem, sizeof r->req_mem, &req))
        return -1;
    snprintf(p, sizeof p, "%s.resources.limits", path);
    struct at lim = {p, err, errcap};
    return get_str(limits, "cpu", "500m", r->lim_cpu, sizeof r->lim_cpu, &lim) ||
                   get_str(limits, "memory", "128Mi", r->lim_mem, sizeof r->lim_mem, &lim)
               ? -1
               : 0;
}

static bool one_of(const char *s, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (!strcmp(s, *allowed))
            return true;
    return false;
}

/* spec.api.behavior.scaleUp / scaleDown; the defaults are Kubernetes' own (the CRD's). */
static int parse_scaling(const cJSON *behavior, const char *key, struct pl_scaling *s, char *err,
                         size_t errcap)
{
    static const char *const selects[] = {"Max", "Min", "Disabled", NULL};
    static const char *const types[] = {"Pods", "Percent", NULL};
    char path[96];
    bool up = !strcmp(key, "scaleUp");
    const cJSON *o = child(behavior, key), *list = child(o, "policies"), *item;
    snprintf(path, sizeof path, "spec.api.behavior.%s", key);
    struct at at = {path, err, errcap};
    if (get_int32(o, "stabilizationWindowSeconds", up ? 0 : 300, 0, 3600, &s->window_s, &at) ||
        get_str(o, "selectPolicy", "Max", s->select, sizeof s->select, &at))
        return -1;
    if (!one_of(s->select, selects))
        return fail(&at, "selectPolicy", "must be Max, Min or Disabled");
    if (!list) {
        s->n_policies = up ? 2 : 1;
        s->policies[0] = (struct pl_scaling_policy){"Percent", 100, 15};
        if (up)
            s->policies[1] = (struct pl_scaling_policy){"Pods", 4, 15};
        return 0;
    }
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1 ||
        cJSON_GetArraySize(list) > PL_SCALING_POLICIES_MAX)
        return fail(&at, "policies", "must be a list of 1 to 4 policies");
    s->n_policies = 0;
    cJSON_ArrayForEach (item, list) {
        char ipath[128];
        snprintf(ipath, sizeof ipath, "%s.policies[%d]", path, s->n_policies);
        struct at ai = {ipath, err, errcap};
        struct pl_scaling_policy *pol = &s->policies[s->n_policies++];
        if (get_str(item, "type", "", pol->type, sizeof pol->type, &ai) ||
            get_int32(item, "value", 0, 1, 1000, &pol->value, &ai) ||
            get_int32(item, "periodSeconds", 0, 1, 1800, &pol->period_s, &ai))
            return -1;
        if (!one_of(pol->type, types))
            return fail(&ai, "type", "must be Pods or Percent");
        if (!pol->value || !pol->period_s)
            return fail(&ai, "value", "value and periodSeconds are required");
    }
    return 0;
}

static int parse_metadata(const cJSON *obj, struct pipeline *p, char *err, size_t errcap)
{
    const cJSON *md = child(obj, "metadata");
    struct at at = {"metadata", err, errcap};
    if (get_str(md, "namespace", "", p->ns, sizeof p->ns, &at) ||
        get_str(md, "name", "", p->name, sizeof p->name, &at) ||
        get_str(md, "uid", "", p->uid, sizeof p->uid, &at) ||
        get_int(md, "generation", 0, 0, 1L << 62, &p->generation, &at))
        return -1;
    if (!*p->ns || !*p->name || !*p->uid)
        return fail(&at, "name", "namespace, name and uid are required");
    return 0;
}

static int parse_top(const cJSON *spec, struct pipeline *p, char *err, size_t errcap)
{
    struct at at = {"spec", err, errcap};
    if (get_str(spec, "registry", "", p->registry, sizeof p->registry, &at) ||
        get_str(spec, "version", "0.1.0", p->version, sizeof p->version, &at) ||
        get_str(spec, "imagePullSecret", "", p->pull_secret, sizeof p->pull_secret, &at) ||
        get_str(spec, "logLevel", "info", p->log_level, sizeof p->log_level, &at))
        return -1;
    if (!*p->registry)
        return fail(&at, "registry", "required");
    const cJSON *ing = child(spec, "ingress");
    struct at ai = {"spec.ingress", err, errcap};
    if (get_bool(ing, "enabled", true, &p->ingress.enabled, &ai) ||
        get_str(ing, "className", "nginx", p->ingress.class_name, sizeof p->ingress.class_name,
                &ai) ||
        get_str(ing, "host", "", p->ingress.host, sizeof p->ingress.host, &ai))
        return -1;
    const cJSON *np = child(spec, "networkPolicies");
    struct at an = {"spec.networkPolicies", err, errcap};
    if (get_bool(np, "enabled", true, &p->netpol.enabled, &an) ||
        get_str(np, "ingressNamespace", "ingress-nginx", p->netpol.ingress_ns,
                sizeof p->netpol.ingress_ns, &an) ||
        get_str(np, "monitoringNamespace", "monitoring", p->netpol.monitoring_ns,
                sizeof p->netpol.monitoring_ns, &an))
        return -1;
    const cJSON *g = child(spec, "grafana"), *cat = child(spec, "catalog");
    struct at ag = {"spec.grafana", err, errcap}, ac = {"spec.catalog", err, errcap};
    return get_str(g, "carnet", "", p->carnet, sizeof p->carnet, &ag) ||
                   get_str(cat, "artifact", "", p->catalog, sizeof p->catalog, &ac) ||
                   get_str(cat, "caConfigMap", "", p->catalog_ca, sizeof p->catalog_ca, &ac)
               ? -1
               : 0;
}

static int parse_components(const cJSON *spec, struct pipeline *p, char *err, size_t errcap)
{
    const cJSON *api = child(spec, "api"), *bridge = child(spec, "bridge"),
                *consumer = child(spec, "consumer");
    struct at aa = {"spec.api", err, errcap}, ab = {"spec.bridge", err, errcap},
              ac = {"spec.consumer", err, errcap};
    if (get_int32(api, "minReplicas", 1, 1, 1000, &p->api.min_replicas, &aa) ||
        get_int32(api, "maxReplicas", 3, 1, 1000, &p->api.max_replicas, &aa) ||
        get_int32(api, "targetCPUUtilizationPercentage", 30, 1, 1000, &p->api.cpu_target, &aa) ||
        get_int32(api, "downstreamTimeoutMs", SP_DEADLINE_DEFAULT_MS, SP_DEADLINE_MIN_MS,
                  SP_DEADLINE_MAX_MS, &p->api.timeout_ms, &aa) ||
        parse_resources(api, "spec.api", &p->api.res, err, errcap) ||
        parse_scaling(child(api, "behavior"), "scaleUp", &p->api.scale_up, err, errcap) ||
        parse_scaling(child(api, "behavior"), "scaleDown", &p->api.scale_down, err, errcap) ||
        get_int32(bridge, "replicas", 1, 0, 1000, &p->bridge.replicas, &ab) ||
        parse_resources(bridge, "spec.bridge", &p->bridge.res, err, errcap) ||
        get_int32(consumer, "replicas", 1, 0, 1000, &p->consumer.replicas, &ac) ||
        parse_resources(consumer, "spec.consumer", &p->consumer.res, err, errcap))
        return -1;
    if (p->api.min_replicas > p->api.max_replicas)
        return fail(&aa, "minReplicas", "must be <= maxReplicas");
    return 0;
}

static int parse_writers(const cJSON *spec, struct pipeline *p, char *err, size_t errcap)
{
    const cJSON *ws = child(spec, "writers"), *w;
    static const char *const def_names[] = {"writer-a", "writer-b"};
    static const int def_replicas[] = {1, 2};
    char path[64];
    if (!ws) { /* the CRD's default */
        p->n_writers = 2;
        for (int i = 0; i < 2; i++) {
            snprintf(p->writers[i].name, sizeof p->writers[i].name, "%s", def_names[i]);
            p->writers[i].replicas = def_replicas[i];
            parse_resources(NULL, "", &p->writers[i].res, err, errcap);
        }
        return 0;
    }
    struct at at = {"spec", err, errcap};
    if (!cJSON_IsArray(ws) || cJSON_GetArraySize(ws) < 1 || cJSON_GetArraySize(ws) > PL_WRITERS_MAX)
        return fail(&at, "writers", "must be a list of 1 to 8 groups");
    p->n_writers = 0;
    cJSON_ArrayForEach (w, ws) {
        struct pl_writer *pw = &p->writers[p->n_writers];
        snprintf(path, sizeof path, "spec.writers[%d]", p->n_writers);
        struct at aw = {path, err, errcap};
        if (get_str(w, "name", "", pw->name, sizeof pw->name, &aw) ||
            get_int32(w, "replicas", 1, 0, 1000, &pw->replicas, &aw) ||
            parse_resources(w, path, &pw->res, err, errcap))
            return -1;
        if (!*pw->name)
            return fail(&aw, "name", "required");
        for (int i = 0; i < p->n_writers; i++)
            if (!strcmp(p->writers[i].name, pw->name))
                return fail(&aw, "name", "duplicate writer group name");
        p->n_writers++;
    }
    return 0;
}

/* spec.kafka.security: how the workers reach an external Kafka (the CRD's enums and rules). */
static int parse_kafka_security(const cJSON *k, struct pipeline *p, char *err, size_t errcap)
{
    static const char *const protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", NULL};
    static const char *const mechanisms[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
    const cJSON *sec = child(k, "security");
    struct at as = {"spec.kafka.security", err, errcap};
    if (get_str(sec, "protocol", "PLAINTEXT", p->kafka.security.protocol,
                sizeof p->kafka.security.protocol, &as) ||
        get_str(sec, "saslMechanism", "SCRAM-SHA-512", p->kafka.security.sasl_mechanism,
                sizeof p->kafka.security.sasl_mechanism, &as) ||
        get_str(sec, "credentialsSecret", "", p->kafka.security.credentials_secret,
                sizeof p->kafka.security.credentials_secret, &as) ||
        get_str(sec, "caConfigMap", "", p->kafka.security.ca_configmap,
                sizeof p->kafka.security.ca_configmap, &as))
        return -1;
    if (!one_of(p->kafka.security.protocol, protocols))
        return fail(&as, "protocol", "must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL");
    if (!one_of(p->kafka.security.sasl_mechanism, mechanisms))
        return fail(&as, "saslMechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    if (strcmp(p->kafka.security.protocol, "PLAINTEXT") && !pipeline_kafka_external(p))
        return fail(&as, "protocol", "only for an external Kafka (spec.kafka.bootstrapServers)");
    if (pipeline_kafka_sasl(p) != !!*p->kafka.security.credentials_secret)
        return fail(&as, "credentialsSecret", "required with a SASL protocol, and only then");
    if (pipeline_kafka_tls(p) != !!*p->kafka.security.ca_configmap)
        return fail(&as, "caConfigMap", "required with a TLS protocol, and only then");
    return 0;
}

static int parse_kafka(const cJSON *spec, struct pipeline *p, char *err, size_t errcap)
{
    const cJSON *k = child(spec, "kafka"), *t = child(k, "topic");
    struct at ak = {"spec.kafka", err, errcap}, at = {"spec.kafka.topic", err, errcap};
    if (get_bool(k, "managed", true, &p->kafka.managed, &ak) ||
        get_str(k, "clusterRef", "", p->kafka.cluster_ref, sizeof p->kafka.cluster_ref, &ak) ||
        get_str(k, "bootstrapServers", "", p->kafka.bootstrap_servers,
                sizeof p->kafka.bootstrap_servers, &ak) ||
        get_int32(k, "brokers", 1, 1, 100, &p->kafka.brokers, &ak) ||
        get_str(k, "storage", "10Gi", p->kafka.storage, sizeof p->kafka.storage, &ak) ||
        get_str(t, "name", "sales", p->kafka.topic, sizeof p->kafka.topic, &at) ||
        get_int32(t, "partitions", 6, 1, 10000, &p->kafka.partitions, &at) ||
        get_int32(t, "replicas", 1, 1, 100, &p->kafka.topic_replicas, &at) ||
        get_int32(t, "retentionHours", 24, 1, 1000000, &p->kafka.retention_hours, &at))
        return -1;
    if (p->kafka.managed + !!*p->kafka.cluster_ref + !!*p->kafka.bootstrap_servers != 1)
        return fail(&ak, "managed",
                    "exactly one Kafka source: managed, clusterRef or "
                    "bootstrapServers");
    return parse_kafka_security(k, p, err, errcap);
}

/* The VMs' image and namespace, when the spec leaves them to the operator: our disk image from
 * the pipeline's registry, and a namespace of their own beside the workers' (KubeVirt's
 * virt-launcher pods need the privileged Pod Security level; the workers keep restricted). */
static int valkey_defaults(struct pipeline *p, const struct at *av)
{
    int n;
    if (pipeline_valkey_external(p)) {
        if (*p->valkey.ns || *p->valkey.image)
            return fail(av, *p->valkey.ns ? "namespace" : "image",
                        "only for the operator's Valkey VMs, not with valkey.url");
        return 0;
    }
    if (!*p->valkey.image) {
        n = snprintf(p->valkey.image, sizeof p->valkey.image, "%s/valkey-vm:%s", p->registry,
                     p->version);
        if ((size_t)n >= sizeof p->valkey.image)
            return fail(av, "image", "<registry>/valkey-vm:<version> is too long: set it");
    }
    if (!*p->valkey.ns) {
        n = snprintf(p->valkey.ns, sizeof p->valkey.ns, "%s-data", p->ns);
        if ((size_t)n > 63)
            return fail(av, "namespace", "<namespace>-data is longer than 63 characters: set it");
    }
    if (!strcmp(p->valkey.ns, p->ns))
        return fail(av, "namespace",
                    "must differ from the pipeline's namespace: the VMs need the "
                    "privileged Pod Security level, the workers' namespace keeps its own");
    return 0;
}

static int parse_valkey(const cJSON *spec, struct pipeline *p, char *err, size_t errcap)
{
    const cJSON *v = child(spec, "valkey");
    struct at av = {"spec.valkey", err, errcap};
    return get_int32(v, "replicas", 2, 1, 100, &p->valkey.replicas, &av) ||
                   get_str(v, "cpu", "1", p->valkey.cpu, sizeof p->valkey.cpu, &av) ||
                   get_str(v, "memory", "1Gi", p->valkey.memory, sizeof p->valkey.memory, &av) ||
                   get_str(v, "storage", "2Gi", p->valkey.storage, sizeof p->valkey.storage, &av) ||
                   get_str(v, "image", "", p->valkey.image, sizeof p->valkey.image, &av) ||
                   get_str(v, "namespace", "", p->valkey.ns, sizeof p->valkey.ns, &av) ||
                   get_bool(v, "persistence", true, &p->valkey.persistence, &av) ||
                   get_int(v, "ttlSeconds", 86400, 1, 1L << 40, &p->valkey.ttl_seconds, &av) ||
                   get_bool(v, "waitForReplica", false, &p->valkey.wait_for_replica, &av) ||
                   get_str(v, "passwordSecret", "", p->valkey.password_secret,
                           sizeof p->valkey.password_secret, &av) ||
                   get_str(v, "url", "", p->valkey.url, sizeof p->valkey.url, &av) ||
                   valkey_defaults(p, &av)
               ? -1
               : 0;
}

int pipeline_parse(const cJSON *obj, struct pipeline *p, char *err, size_t errcap)
{
    memset(p, 0, sizeof *p);
    const cJSON *spec = child(obj, "spec");
    if (parse_metadata(obj, p, err, errcap) < 0)
        return -1;
    if (!cJSON_IsObject(spec)) {
        snprintf(err, errcap, "spec: required");
        return -1;
    }
    return parse_top(spec, p, err, errcap) || parse_components(spec, p, err, errcap) ||
                   parse_writers(spec, p, err, errcap) || parse_kafka(spec, p, err, errcap) ||
                   parse_valkey(spec, p, err, errcap)
               ? -1
               : 0;
}

const char *pipeline_category(const char *carnet)
{
    int c = sp_category_of_carnet(carnet);
    return c ? sp_category_name(c) : "";
}

char *pipeline_object_name(const struct pipeline *p, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%s", p->name, suffix);
    return buf;
}

bool pipeline_kafka_external(const struct pipeline *p)
{
    return *p->kafka.bootstrap_servers != '\0';
}

bool pipeline_valkey_external(const struct pipeline *p)
{
    return *p->valkey.url != '\0';
}

bool pipeline_kafka_sasl(const struct pipeline *p)
{
    return !strncmp(p->kafka.security.protocol, "SASL_", 5);
}

bool pipeline_kafka_tls(const struct pipeline *p)
{
    size_t n = strlen(p->kafka.security.protocol);
    return n >= 3 && !strcmp(p->kafka.security.protocol + n - 3, "SSL");
}

void pipeline_kafka_bootstrap(const struct pipeline *p, char *buf, size_t cap)
{
    if (pipeline_kafka_external(p)) {
        snprintf(buf, cap, "%s", p->kafka.bootstrap_servers);
        return;
    }
    /* A managed cluster is a Strimzi Kafka named like the pipeline (issue 6 creates it). */
    const char *cluster = p->kafka.managed ? p->name : p->kafka.cluster_ref;
    snprintf(buf, cap, "%s-kafka-bootstrap.%s.svc:%d", cluster, p->ns, INFRA_KAFKA_PORT);
}
