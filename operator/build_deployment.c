/* build_deployment.c - one Deployment per component: image, ports, environment (env.c: only
 * what the worker reads; a change rolls the pods since it is part of the pod template), probes,
 * requests/limits and the restricted pod security profile (non-root, read-only root file
 * system, no capabilities, no privilege escalation, seccomp RuntimeDefault). */
#include "build.h"
#include "contract.h"
#include "env.h"
#include "infra.h"

#include <stdio.h>
#include <string.h>

/* Whether the worker reads an option with source `from`. */
static bool reads(const struct component *c, enum sp_from from)
{
    for (const struct sp_option *o = c->options; o && o->name; o++)
        if (o->from == from)
            return true;
    return false;
}

/* The api pulls the catalog artifact (CATALOG_ARTIFACT) with the pods' own pull credentials and
 * the registry's CA, mounted read-only from the imagePullSecret and spec.catalog.caConfigMap
 * (REGISTRY_AUTH_FILE and REGISTRY_CA name the files: env.c). A rotated Secret reaches the file
 * without a restart (the api reads it on every pull). */
static bool pulls_catalog(const struct pipeline *p, const struct component *c)
{
    return c->type == COMP_API && *p->catalog;
}

static void mount(struct jb *b, cJSON *mounts, const char *name, const char *path, bool ro)
{
    cJSON *m = jb_obj(b, mounts, NULL);
    jb_str(b, m, "name", name);
    jb_str(b, m, "mountPath", path);
    if (ro)
        jb_bool(b, m, "readOnly", true);
}

static void catalog_mounts(struct jb *b, cJSON *mounts, const struct pipeline *p)
{
    if (*p->pull_secret)
        mount(b, mounts, "registry-auth", BUILD_REGISTRY_AUTH_DIR, true);
    if (*p->catalog_ca)
        mount(b, mounts, "registry-ca", BUILD_REGISTRY_CA_DIR, true);
}

/* One key of a Secret or ConfigMap as one file. */
static void key_volume(struct jb *b, cJSON *volumes, const char *name, const char *source_kind,
                       const char *name_key, const char *source, const char *key, const char *file)
{
    cJSON *v = jb_obj(b, volumes, NULL);
    jb_str(b, v, "name", name);
    cJSON *src = jb_obj(b, v, source_kind);
    jb_str(b, src, name_key, source);
    jb_int(b, src, "defaultMode", 0444); /* readable by the non-root user */
    cJSON *item = jb_obj(b, jb_arr(b, src, "items"), NULL);
    jb_str(b, item, "key", key);
    jb_str(b, item, "path", file);
}

/* The writers and the consumer verify an external Kafka's TLS certificates with the CA of
 * spec.kafka.security.caConfigMap, mounted read-only (KAFKA_CA_FILE names it: env.c). */
static bool mounts_kafka_ca(const struct pipeline *p, const struct component *c)
{
    return pipeline_kafka_tls(p) && reads(c, SP_FROM_KAFKA_CA);
}

static void catalog_volumes(struct jb *b, cJSON *volumes, const struct pipeline *p)
{
    if (*p->pull_secret)
        key_volume(b, volumes, "registry-auth", "secret", "secretName", p->pull_secret,
                   ".dockerconfigjson", "config.json");
    if (*p->catalog_ca)
        key_volume(b, volumes, "registry-ca", "configMap", "name", p->catalog_ca, "ca.crt",
                   "ca.crt");
}

static void http_probe(struct jb *b, cJSON *ctr, const char *key, const char *path,
                       const char *port, int period, int failures)
{
    cJSON *pr = jb_obj(b, ctr, key), *get = jb_obj(b, pr, "httpGet");
    jb_str(b, get, "path", path);
    jb_str(b, get, "port", port);
    jb_int(b, pr, "periodSeconds", period);
    jb_int(b, pr, "timeoutSeconds", 2);
    jb_int(b, pr, "failureThreshold", failures);
}

static void probes(struct jb *b, cJSON *ctr, const struct component *c)
{
    if (c->grpc_readiness) {
        cJSON *pr = jb_obj(b, ctr, "readinessProbe");
        jb_int(b, jb_obj(b, pr, "grpc"), "port", c->ports[0].port);
        jb_int(b, pr, "periodSeconds", 5);
        jb_int(b, pr, "timeoutSeconds", 2);
        jb_int(b, pr, "failureThreshold", 3);
    } else {
        http_probe(b, ctr, "readinessProbe", "/readyz", c->http_port_name, 5, 3);
    }
    http_probe(b, ctr, "livenessProbe", "/healthz", c->http_port_name, 10, 3);
}

static void resources(struct jb *b, cJSON *ctr, const struct pl_resources *r)
{
    cJSON *res = jb_obj(b, ctr, "resources"), *req = jb_obj(b, res, "requests"),
          *lim = jb_obj(b, res, "limits");
    jb_str(b, req, "cpu", r->req_cpu);
    jb_str(b, req, "memory", r->req_mem);
    jb_str(b, lim, "cpu", r->lim_cpu);
    jb_str(b, lim, "memory", r->lim_mem);
}

static void container_security(struct jb *b, cJSON *ctr)
{
    cJSON *sc = jb_obj(b, ctr, "securityContext");
    jb_bool(b, sc, "allowPrivilegeEscalation", false);
    jb_bool(b, sc, "readOnlyRootFilesystem", true);
    jb_bool(b, sc, "runAsNonRoot", true);
    jb_str(b, jb_arr(b, jb_obj(b, sc, "capabilities"), "drop"), NULL, "ALL");
    jb_str(b, jb_obj(b, sc, "seccompProfile"), "type", "RuntimeDefault");
}

static void container(struct jb *b, cJSON *containers, const struct pipeline *p,
                      const struct component *c)
{
    char image[512];
    cJSON *ctr = jb_obj(b, containers, NULL);
    jb_str(b, ctr, "name", c->image);
    snprintf(image, sizeof image, "%s/%s:%s", p->registry, c->image, p->version);
    jb_str(b, ctr, "image", image);
    jb_str(b, ctr, "imagePullPolicy", "IfNotPresent");
    cJSON *ports = jb_arr(b, ctr, "ports");
    for (int i = 0; i < c->n_ports; i++) {
        cJSON *port = jb_obj(b, ports, NULL);
        jb_str(b, port, "name", c->ports[i].name);
        jb_int(b, port, "containerPort", c->ports[i].port);
        jb_str(b, port, "protocol", "TCP");
    }
    env_build(b, ctr, p, c);
    resources(b, ctr, c->res);
    probes(b, ctr, c);
    container_security(b, ctr);
    cJSON *mounts = jb_arr(b, ctr, "volumeMounts");
    mount(b, mounts, "tmp", "/tmp", false);
    if (pulls_catalog(p, c))
        catalog_mounts(b, mounts, p);
    if (mounts_kafka_ca(p, c))
        mount(b, mounts, "kafka-ca", BUILD_KAFKA_CA_DIR, true);
}

/* Long enough for the worker's own SIGTERM sequence: an intake's lame-duck delay, its deadline
 * for the sales in flight (+1 s), the forwarder's stop (5 s), and a margin; at least 30 s. */
static int grace_seconds(const struct pipeline *p, const struct component *c)
{
    long deadline_ms = c->type == COMP_API      ? p->api.timeout_ms
                       : c->type == COMP_BRIDGE ? SP_DEADLINE_BRIDGE_MS(p->api.timeout_ms)
                                                : 0;
    long s = deadline_ms ? (BUILD_SHUTDOWN_DELAY_MS + deadline_ms + 999) / 1000 + 1 + 5 + 5 : 0;
    return s > 30 ? (int)s : 30;
}

static void pod_spec(struct jb *b, cJSON *spec, const struct pipeline *p, const struct component *c)
{
    jb_bool(b, spec, "automountServiceAccountToken", false); /* workers never call the API */
    jb_bool(b, spec, "enableServiceLinks", false);
    jb_int(b, spec, "terminationGracePeriodSeconds", grace_seconds(p, c));
    if (*p->pull_secret)
        jb_str(b, jb_obj(b, jb_arr(b, spec, "imagePullSecrets"), NULL), "name", p->pull_secret);
    cJSON *sc = jb_obj(b, spec, "securityContext");
    jb_bool(b, sc, "runAsNonRoot", true);
    jb_int(b, sc, "runAsUser", BUILD_CONTAINER_UID);
    jb_int(b, sc, "runAsGroup", BUILD_CONTAINER_UID);
    jb_str(b, jb_obj(b, sc, "seccompProfile"), "type", "RuntimeDefault");
    container(b, jb_arr(b, spec, "containers"), p, c);
    cJSON *volumes = jb_arr(b, spec, "volumes"), *vol = jb_obj(b, volumes, NULL);
    jb_str(b, vol, "name", "tmp");
    jb_str(b, jb_obj(b, vol, "emptyDir"), "sizeLimit", "64Mi");
    if (pulls_catalog(p, c))
        catalog_volumes(b, volumes, p);
    if (mounts_kafka_ca(p, c))
        key_volume(b, volumes, "kafka-ca", "configMap", "name", p->kafka.security.ca_configmap,
                   "ca.crt", "ca.crt");
}

static void pod_template(struct jb *b, cJSON *spec, const struct pipeline *p,
                         const struct component *c, const char *password_hash)
{
    char port[8] = "";
    cJSON *tpl = jb_obj(b, spec, "template"), *md = jb_obj(b, tpl, "metadata");
    build_labels(b, jb_obj(b, md, "labels"), p, c->name, c->image);
    cJSON *ann = jb_obj(b, md, "annotations");
    if (reads(c, SP_FROM_VALKEY_PASSWORD) && infra_valkey_has_password(p))
        /* through a secretKeyRef: a change must roll */
        jb_str(b, ann, BUILD_PASSWORD_HASH_ANNOTATION, password_hash);
    jb_str(b, ann, "prometheus.io/scrape", "true");
    for (int i = 0; i < c->n_ports; i++)
        if (!strcmp(c->ports[i].name, c->http_port_name))
            snprintf(port, sizeof port, "%d", c->ports[i].port);
    jb_str(b, ann, "prometheus.io/port", port);
    jb_str(b, ann, "prometheus.io/path", "/metrics");
    pod_spec(b, jb_obj(b, tpl, "spec"), p, c);
}

cJSON *build_deployment(const struct pipeline *p, const struct component *c,
                        const char *password_hash)
{
    struct jb b = {0};
    char name[128];
    component_deployment_name(p, c, name, sizeof name);
    cJSON *o = build_object(&b, p, KIND_DEPLOYMENT, name, c->name, c->image);
    cJSON *spec = jb_obj(&b, o, "spec");
    if (c->replicas >= 0) /* the api's count belongs to its HPA: not ours to apply */
        jb_int(&b, spec, "replicas", c->replicas);
    jb_int(&b, spec, "revisionHistoryLimit", 3);
    build_selector_labels(&b, jb_obj(&b, jb_obj(&b, spec, "selector"), "matchLabels"), p, c->name,
                          c->image);
    cJSON *strategy = jb_obj(&b, spec, "strategy");
    jb_str(&b, strategy, "type", "RollingUpdate");
    cJSON *ru = jb_obj(&b, strategy, "rollingUpdate");
    jb_int(&b, ru, "maxSurge", 1);
    jb_int(&b, ru, "maxUnavailable", 0);
    pod_template(&b, spec, p, c, password_hash);
    return jb_done(&b, o);
}
