/* desired.c - the desired object set. See desired.h. */
#include "desired.h"

#include <string.h>

#include "build.h"
#include "infra.h"
#include "valkey_password.h"

static int push(struct desired *d, enum kind_id kind, cJSON *obj, int comp)
{
    if (!obj || d->n == DESIRED_MAX) {
        cJSON_Delete(obj);
        return -1;
    }
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    d->objs[d->n++] = (struct desired_obj){
        .kind = kind,
        .ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace")),
        .name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name")),
        .obj = obj,
        .comp = comp,
    };
    return 0;
}

/* Secrets first: the password, then what carries it (cloud-init). An external Valkey has
 * neither: its password Secret is the user's. */
static int push_secrets(struct desired *d, const struct pipeline *p, const char *pw)
{
    if (pipeline_valkey_external(p))
        return 0;
    return (infra_password_secret_owned(p) &&
            push(d, KIND_SECRET, build_valkey_secret(p, pw), -1) < 0) ||
                   push(d, KIND_SECRET, build_valkey_cloudinit_secret(p, VALKEY_PRIMARY, pw), -1) <
                       0 ||
                   push(d, KIND_SECRET, build_valkey_cloudinit_secret(p, VALKEY_REPLICA, pw), -1) <
                       0
               ? -1
               : 0;
}

/* Strimzi objects: the cluster when managed, the topic for a Strimzi cluster; none for an
 * external Kafka (its topic is its owner's to create). */
static int push_kafka(struct desired *d, const struct pipeline *p)
{
    if (pipeline_kafka_external(p))
        return 0;
    if (p->kafka.managed && (push(d, KIND_KAFKA, build_kafka(p), -1) < 0 ||
                             push(d, KIND_KAFKA_NODEPOOL, build_kafka_nodepool(p), -1) < 0))
        return -1;
    return push(d, KIND_KAFKA_TOPIC, build_kafka_topic(p), -1);
}

static int push_valkey(struct desired *d, const struct pipeline *p, const char *pw)
{
    if (pipeline_valkey_external(p))
        return 0;
    if (p->valkey.persistence && push(d, KIND_PVC, build_valkey_pvc(p), -1) < 0)
        return -1;
    if (push(d, KIND_VM, build_valkey_vm(p, VALKEY_PRIMARY, 0, pw), -1) < 0)
        return -1;
    for (int i = 1; i <= infra_valkey_replicas(p) && i < VALKEY_VMS_MAX; i++)
        if (push(d, KIND_VM, build_valkey_vm(p, VALKEY_REPLICA, i, pw), -1) < 0)
            return -1;
    return push(d, KIND_SERVICE, build_valkey_service(p, VALKEY_PRIMARY), -1) < 0 ||
                   push(d, KIND_SERVICE, build_valkey_service(p, VALKEY_REPLICA), -1) < 0
               ? -1
               : 0;
}

static int push_grafana(struct desired *d, const struct pipeline *p, const char *pw)
{
    return push(d, KIND_CONFIGMAP, build_grafana_dashboard(p, false), DESIRED_DASHBOARD) < 0 ||
                   push(d, KIND_CONFIGMAP, build_grafana_dashboard(p, true), DESIRED_DASHBOARD) <
                       0 ||
                   push(d, KIND_SECRET, build_grafana_datasource(p, pw), DESIRED_DASHBOARD) < 0
               ? -1
               : 0;
}

int desired_build(const struct pipeline *p, const char *password, struct desired *d)
{
    char password_hash[17];
    memset(d, 0, sizeof *d);
    d->n_comps = component_list(p, d->comps);
    if (valkey_password_hash(p, password, password_hash) < 0 || push_secrets(d, p, password) < 0)
        goto fail;
    if (push_kafka(d, p) < 0) /* push frees what it cannot keep */
        goto fail;
    for (int i = 0; i < d->n_comps; i++)
        if (push(d, KIND_SERVICE, build_service(p, &d->comps[i]), -1) < 0 ||
            push(d, KIND_DEPLOYMENT, build_deployment(p, &d->comps[i], password_hash), i) < 0)
            goto fail;
    if (push(d, KIND_HPA, build_hpa(p), -1) < 0)
        goto fail;
    if (p->ingress.enabled && push(d, KIND_INGRESS, build_ingress(p), -1) < 0)
        goto fail;
    /* Valkey's in its namespace; none for an external Valkey */
    for (int t = 0; p->netpol.enabled && t < NETPOL_COUNT; t++)
        if ((t != NETPOL_VALKEY || !pipeline_valkey_external(p)) &&
            push(d, KIND_NETPOL, build_netpol(p, (enum netpol_target)t), -1) < 0)
            goto fail;
    if (push_valkey(d, p, password) < 0 || push_grafana(d, p, password) < 0)
        goto fail;
    return 0;
fail:
    desired_free(d);
    return -1;
}

void desired_free(struct desired *d)
{
    for (int i = 0; i < d->n; i++)
        cJSON_Delete(d->objs[i].obj);
    d->n = 0;
}

int desired_add(struct desired *d, enum kind_id kind, cJSON *obj)
{
    return push(d, kind, obj, -1);
}

bool desired_has(const struct desired *d, enum kind_id kind, const char *ns, const char *name)
{
    for (int i = 0; i < d->n; i++) {
        const struct desired_obj *o = &d->objs[i];
        if (o->kind == kind && o->name && o->ns && !strcmp(o->name, name) && !strcmp(o->ns, ns))
            return true;
    }
    return false;
}
