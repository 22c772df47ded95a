/* infra_status.c - readiness of the Strimzi and KubeVirt objects, from the status their own
 * operators write. See infra_status.h. */
#include "infra_status.h"

#include <stdio.h>
#include <string.h>

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

static long num(const cJSON *o, const char *key, long def)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(n) ? (long)n->valuedouble : def;
}

static const cJSON *condition(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
        if (!strcmp(str(c, "type"), type))
            return c;
    return NULL;
}

static const char *name_of(const cJSON *obj)
{
    return str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name");
}

static void start(const cJSON *obj, struct part_status *s)
{
    memset(s, 0, sizeof *s);
    s->known = obj != NULL;
}

/* Strimzi sets Ready True/False (NotReady) with a reason and message after each of its
 * reconciles, and status.observedGeneration to the generation it reconciled: a Ready from an
 * older spec does not count. */
void infra_read_strimzi(const cJSON *obj, struct part_status *s)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    start(obj, s);
    const cJSON *ready = condition(st, "Ready"), *not_ready = condition(st, "NotReady");
    long gen = num(md, "generation", 0), observed = num(st, "observedGeneration", -1);
    if (ready && !strcmp(str(ready, "status"), "True") && observed >= gen) {
        s->ready = true;
        return;
    }
    const cJSON *why = not_ready ? not_ready : ready;
    if (why && *str(why, "message"))
        snprintf(s->message, sizeof s->message, "%s %s: %s", str(obj, "kind"), name_of(obj),
                 str(why, "message"));
    else if (observed < gen && observed >= 0)
        snprintf(s->message, sizeof s->message, "%s %s: generation %ld not reconciled yet",
                 str(obj, "kind"), name_of(obj), gen);
    else
        snprintf(s->message, sizeof s->message, "%s %s: not ready yet", str(obj, "kind"),
                 name_of(obj));
}

void infra_read_nodepool(const cJSON *obj, struct part_status *s)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec"),
                *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    start(obj, s);
    long want = num(spec, "replicas", 1);
    long have = num(st, "replicas", -1);
    if (have < 0)
        have = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "nodeIds"));
    s->ready = have >= want;
    if (!s->ready)
        snprintf(s->message, sizeof s->message, "KafkaNodePool %s: %ld/%ld nodes", name_of(obj),
                 have, want);
}

/* KubeVirt: status.ready mirrors the VMI's Ready condition (the guest passed its readiness
 * probe); printableStatus says where the VM is (Starting, Running, ErrorUnschedulable, ...).
 * A RestartRequired condition means the running VM still has an older spec. */
void infra_read_vm(const cJSON *obj, struct part_status *s)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "status");
    start(obj, s);
    const cJSON *ready = condition(st, "Ready"), *restart = condition(st, "RestartRequired");
    const char *printable = str(st, "printableStatus");
    s->restart_required = restart && !strcmp(str(restart, "status"), "True");
    s->ready = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "ready")) &&
               !strcmp(printable, "Running") && (!ready || !strcmp(str(ready, "status"), "True"));
    if (!s->ready)
        snprintf(s->message, sizeof s->message, "VirtualMachine %s: %s%s%s", name_of(obj),
                 *printable ? printable : "not started yet",
                 ready && *str(ready, "message") ? ": " : "", ready ? str(ready, "message") : "");
}
