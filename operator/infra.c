/* infra.c - names of the infrastructure objects, shared by their builders. See infra.h. */
#include "infra.h"

#include "build.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *infra_kafka_cluster(const struct pipeline *p)
{
    return p->kafka.managed ? p->name : p->kafka.cluster_ref;
}

/* Strimzi names a node's pod <cluster>-<pool>-<id>, which must stay a DNS label (<= 63): with
 * the cluster named like the pipeline, "<name>-pool" fits for names up to 26 characters;
 * longer ones get a short pool name made unique by a hash of the pipeline's name. */
void infra_nodepool_name(const struct pipeline *p, char *buf, size_t cap)
{
    if (strlen(p->name) <= 26) {
        snprintf(buf, cap, "%s-pool", p->name);
        return;
    }
    uint32_t h = 2166136261u;
    for (const char *s = p->name; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    snprintf(buf, cap, "pool-%08x", h);
}

void infra_vm_name(const struct pipeline *p, enum valkey_role role, int index, char *buf,
                   size_t cap)
{
    if (role == VALKEY_PRIMARY)
        snprintf(buf, cap, "%s-valkey-primary", p->name);
    else
        snprintf(buf, cap, "%s-valkey-replica-%d", p->name, index);
}

void infra_valkey_service_name(const struct pipeline *p, enum valkey_role role, char *buf,
                               size_t cap)
{
    snprintf(buf, cap, "%s-valkey-%s", p->name, role == VALKEY_PRIMARY ? "primary" : "replica");
}

void infra_valkey_host(const struct pipeline *p, enum valkey_role role, char *buf, size_t cap)
{
    char svc[128];
    infra_valkey_service_name(p, role, svc, sizeof svc);
    snprintf(buf, cap, "%s.%s.svc.cluster.local", svc, p->valkey.ns);
}

void infra_valkey_url(const struct pipeline *p, char *buf, size_t cap)
{
    char host[256];
    if (pipeline_valkey_external(p)) {
        snprintf(buf, cap, "%s", p->valkey.url);
        return;
    }
    infra_valkey_host(p, VALKEY_PRIMARY, host, sizeof host);
    snprintf(buf, cap, "redis://%s:%d", host, INFRA_VALKEY_PORT);
}

bool infra_password_secret_owned(const struct pipeline *p)
{
    return !*p->valkey.password_secret && !pipeline_valkey_external(p);
}

bool infra_valkey_has_password(const struct pipeline *p)
{
    return *p->valkey.password_secret || !pipeline_valkey_external(p);
}

void infra_password_secret(const struct pipeline *p, char *buf, size_t cap)
{
    if (infra_password_secret_owned(p))
        snprintf(buf, cap, "%s-valkey", p->name);
    else
        snprintf(buf, cap, "%s", p->valkey.password_secret);
}

int infra_valkey_replicas(const struct pipeline *p)
{
    return p->valkey.replicas > 1 ? p->valkey.replicas - 1 : 0;
}

cJSON *infra_secret(const struct pipeline *p, const char *name, const char *component,
                    const char *key, const char *value)
{
    return infra_secret_in(p, p->ns, name, component, key, value);
}

cJSON *infra_secret_in(const struct pipeline *p, const char *ns, const char *name,
                       const char *component, const char *key, const char *value)
{
    struct jb b = {0};
    size_t len = strlen(value);
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    cJSON *o = build_object_in(&b, p, KIND_SECRET, ns, name, component, NULL);
    if (!b64) {
        b.oom = true;
    } else {
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)value, (int)len);
        jb_str(&b, o, "type", "Opaque");
        jb_str(&b, jb_obj(&b, o, "data"), key, b64);
    }
    free(b64);
    return jb_done(&b, o);
}
