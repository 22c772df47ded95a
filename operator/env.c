/* env.c - see env.h. One case per source of enum sp_from; -Wswitch names a missing one. */
#include "env.h"

#include <stdio.h>

#include "build.h"
#include "contract.h"
#include "infra.h"

/* WRITER_TARGET: one gRPC target per writer group, ';'-separated; dns:/// resolves every pod
 * behind the group's headless Service and the bridge balances round robin across them. */
static int writer_target(const struct pipeline *p, char *buf, size_t cap)
{
    struct component cs[COMPONENTS_MAX];
    char svc[128];
    int n = component_list(p, cs), port = component_port("writer", SP_FROM_PORT_GRPC);
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (cs[i].type != COMP_WRITER)
            continue;
        component_service_name(p, &cs[i], svc, sizeof svc);
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0,
                                "%sdns:///%s.%s.svc.cluster.local:%d", len ? ";" : "", svc, p->ns,
                                port);
    }
    return len < cap ? 0 : -1;
}

static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

bool env_wanted(const struct pipeline *p, const struct sp_option *o)
{
    switch (o->from) {
    case SP_FROM_NONE:
        return false;
    case SP_FROM_VALKEY_PASSWORD:
        return infra_valkey_has_password(p);
    case SP_FROM_KAFKA_SASL_MECHANISM:
    case SP_FROM_KAFKA_SASL_USERNAME:
    case SP_FROM_KAFKA_SASL_PASSWORD:
        return pipeline_kafka_sasl(p);
    case SP_FROM_KAFKA_CA:
        return pipeline_kafka_tls(p);
    default:
        return true;
    }
}

/* security.protocol as librdkafka spells it. */
static int lower(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    buf[i] = '\0';
    return s[i] ? -1 : 0;
}

int env_value(const struct pipeline *p, const struct sp_option *o, char *buf, size_t cap)
{
    char name[128];
    switch (o->from) {
    case SP_FROM_NONE:
    case SP_FROM_VALKEY_PASSWORD:
    case SP_FROM_KAFKA_SASL_USERNAME:
    case SP_FROM_KAFKA_SASL_PASSWORD:
        return -1;
    case SP_FROM_PORT_HTTP:
    case SP_FROM_PORT_GRPC:
    case SP_FROM_PORT_METRICS:
        return fits(snprintf(buf, cap, "%.0f", o->def_num), cap); /* the container port */
    case SP_FROM_LOG_LEVEL:
        return fits(snprintf(buf, cap, "%s", p->log_level), cap);
    case SP_FROM_API_DEADLINE:
        return fits(snprintf(buf, cap, "%d", p->api.timeout_ms), cap);
    case SP_FROM_BRIDGE_DEADLINE:
        return fits(snprintf(buf, cap, "%d", SP_DEADLINE_BRIDGE_MS(p->api.timeout_ms)), cap);
    case SP_FROM_WRITER_DEADLINE:
        return fits(snprintf(buf, cap, "%d", SP_DEADLINE_WRITER_MS(p->api.timeout_ms)), cap);
    case SP_FROM_BRIDGE_URL:
        return fits(snprintf(buf, cap, "http://%s:%d/ventas",
                             pipeline_object_name(p, "bridge", name, sizeof name),
                             component_port("bridge", SP_FROM_PORT_HTTP)),
                    cap);
    case SP_FROM_WRITER_TARGET:
        return writer_target(p, buf, cap);
    case SP_FROM_KAFKA_BROKERS:
        pipeline_kafka_bootstrap(p, buf, cap);
        return 0;
    case SP_FROM_KAFKA_TOPIC:
        return fits(snprintf(buf, cap, "%s", p->kafka.topic), cap);
    case SP_FROM_KAFKA_GROUP:
        return fits(snprintf(buf, cap, "%s-consumer", p->name), cap);
    case SP_FROM_VALKEY_URL: /* the primary's Service in the data namespace */
        infra_valkey_url(p, buf, cap);
        return 0;
    case SP_FROM_SERIES_TTL:
        return fits(snprintf(buf, cap, "%ld", p->valkey.ttl_seconds), cap);
    case SP_FROM_WAIT_REPLICAS:
        return fits(snprintf(buf, cap, "%d", p->valkey.wait_for_replica ? 1 : 0), cap);
    case SP_FROM_CATALOG_ARTIFACT:
        return fits(snprintf(buf, cap, "%s", p->catalog), cap);
    case SP_FROM_REGISTRY_AUTH_FILE: /* mounted by build_deployment.c with a catalog */
        return fits(
            snprintf(buf, cap, "%s",
                     *p->catalog && *p->pull_secret ? BUILD_REGISTRY_AUTH_DIR "/config.json" : ""),
            cap);
    case SP_FROM_REGISTRY_CA:
        return fits(snprintf(buf, cap, "%s",
                             *p->catalog && *p->catalog_ca ? BUILD_REGISTRY_CA_DIR "/ca.crt" : ""),
                    cap);
    case SP_FROM_KAFKA_PROTOCOL:
        return lower(p->kafka.security.protocol, buf, cap);
    case SP_FROM_KAFKA_SASL_MECHANISM:
        return fits(snprintf(buf, cap, "%s", p->kafka.security.sasl_mechanism), cap);
    case SP_FROM_SHUTDOWN_DELAY:
        return fits(snprintf(buf, cap, "%d", BUILD_SHUTDOWN_DELAY_MS), cap);
    case SP_FROM_KAFKA_CA: /* mounted by build_deployment.c */
        return fits(snprintf(buf, cap, "%s", BUILD_KAFKA_CA_DIR "/ca.crt"), cap);
    }
    return -1;
}

static void add_secret_ref(struct jb *b, cJSON *env, const char *name, const char *secret,
                           const char *key)
{
    cJSON *e = jb_obj(b, env, NULL);
    jb_str(b, e, "name", name);
    cJSON *ref = jb_obj(b, jb_obj(b, e, "valueFrom"), "secretKeyRef");
    jb_str(b, ref, "name", secret);
    jb_str(b, ref, "key", key);
}

void env_build(struct jb *b, cJSON *ctr, const struct pipeline *p, const struct component *c)
{
    cJSON *env = jb_arr(b, ctr, "env");
    char value[2048];
    for (const struct sp_option *o = c->options; o && o->name; o++) {
        if (!env_wanted(p, o))
            continue;
        if (o->from == SP_FROM_VALKEY_PASSWORD) {
            infra_password_secret(p, value, sizeof value);
            add_secret_ref(b, env, o->env, value, INFRA_VALKEY_SECRET_KEY);
            continue;
        }
        if (o->from == SP_FROM_KAFKA_SASL_USERNAME || o->from == SP_FROM_KAFKA_SASL_PASSWORD) {
            add_secret_ref(b, env, o->env, p->kafka.security.credentials_secret,
                           o->from == SP_FROM_KAFKA_SASL_USERNAME ? "username" : "password");
            continue;
        }
        if (env_value(p, o, value, sizeof value) < 0)
            b->oom = true; /* a value that cannot be rendered: never apply a half object */
        cJSON *e = jb_obj(b, env, NULL);
        jb_str(b, e, "name", o->env);
        jb_str(b, e, "value", value);
    }
}
