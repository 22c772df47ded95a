/* build_configmap.c - <name>-config: the environment every worker reads (envFrom). */
#include "build.h"
#include "infra.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* WRITER_TARGET: one gRPC target per writer group, ';'-separated; dns:/// resolves every pod
 * behind the headless Service and the bridge balances round robin across them. */
static void writer_target(const struct pipeline *p, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->n_writers && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%sdns:///%s-%s-headless.%s.svc.cluster.local:50051",
                              i ? ";" : "", p->name, p->writers[i].name, p->ns);
}

static void add_data(struct jb *b, cJSON *data, const struct pipeline *p)
{
    char v[2048];
    jb_str(b, data, "BIND_ADDR", "0.0.0.0");
    jb_str(b, data, "LOG_LEVEL", p->log_level);
    snprintf(v, sizeof v, "http://%s-bridge:8081/ventas", p->name);
    jb_str(b, data, "BRIDGE_URL", v);
    snprintf(v, sizeof v, "%d", p->api.timeout_ms);
    jb_str(b, data, "DOWNSTREAM_TIMEOUT_MS", v);
    writer_target(p, v, sizeof v);
    jb_str(b, data, "WRITER_TARGET", v);
    pipeline_kafka_bootstrap(p, v, sizeof v);
    jb_str(b, data, "KAFKA_BROKERS", v);
    jb_str(b, data, "KAFKA_TOPIC", p->kafka.topic);
    snprintf(v, sizeof v, "%s-consumer", p->name);
    jb_str(b, data, "KAFKA_GROUP", v);
    infra_valkey_url(p, v, sizeof v);   /* in the data namespace (spec.valkey.namespace) */
    jb_str(b, data, "VALKEY_URL", v);
    snprintf(v, sizeof v, "%ld", p->valkey.ttl_seconds);
    jb_str(b, data, "SERIES_TTL_SECONDS", v);
    jb_str(b, data, "VALKEY_WAIT_REPLICAS", p->valkey.wait_for_replica ? "1" : "0");
    jb_str(b, data, "CATALOG_ARTIFACT", p->catalog);
    jb_str(b, data, "CARNET", p->carnet);
    jb_str(b, data, "CATEGORY", pipeline_category(p->carnet));
}

cJSON *build_configmap(const struct pipeline *p)
{
    struct jb b = {0};
    char name[128];
    pipeline_object_name(p, "config", name, sizeof name);
    cJSON *o = build_object(&b, p, KIND_CONFIGMAP, name, "config", NULL);
    add_data(&b, jb_obj(&b, o, "data"), p);
    return jb_done(&b, o);
}

int build_config_hash(const cJSON *configmap, char out[17])
{
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(configmap, "data"));
    if (!text)
        return -1;
    uint64_t h = 1469598103934665603ull;
    for (const char *s = text; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    free(text);
    return 0;
}
