/* build_hpa.c - the api's HorizontalPodAutoscaler (autoscaling/v2): min..max replicas on the
 * average CPU utilisation of the pods' requests, moving as spec.api.behavior says (written
 * out whole, defaults included, so `kubectl get hpa -o yaml` shows what applies). */
#include "build.h"

static void rules(struct jb *b, cJSON *behavior, const char *key, const struct pl_scaling *s)
{
    cJSON *r = jb_obj(b, behavior, key), *pols = jb_arr(b, r, "policies");
    jb_int(b, r, "stabilizationWindowSeconds", s->window_s);
    jb_str(b, r, "selectPolicy", s->select);
    for (int i = 0; i < s->n_policies; i++) {
        cJSON *pol = jb_obj(b, pols, NULL);
        jb_str(b, pol, "type", s->policies[i].type);
        jb_int(b, pol, "value", s->policies[i].value);
        jb_int(b, pol, "periodSeconds", s->policies[i].period_s);
    }
}

cJSON *build_hpa(const struct pipeline *p)
{
    struct jb b = {0};
    char name[128];
    pipeline_object_name(p, "api", name, sizeof name);
    cJSON *o = build_object(&b, p, KIND_HPA, name, "api", "api");
    cJSON *spec = jb_obj(&b, o, "spec"), *ref = jb_obj(&b, spec, "scaleTargetRef");
    jb_str(&b, ref, "apiVersion", "apps/v1");
    jb_str(&b, ref, "kind", "Deployment");
    jb_str(&b, ref, "name", name);
    jb_int(&b, spec, "minReplicas", p->api.min_replicas);
    jb_int(&b, spec, "maxReplicas", p->api.max_replicas);
    cJSON *metric = jb_obj(&b, jb_arr(&b, spec, "metrics"), NULL);
    jb_str(&b, metric, "type", "Resource");
    cJSON *res = jb_obj(&b, metric, "resource");
    jb_str(&b, res, "name", "cpu");
    cJSON *target = jb_obj(&b, res, "target");
    jb_str(&b, target, "type", "Utilization");
    jb_int(&b, target, "averageUtilization", p->api.cpu_target);
    cJSON *behavior = jb_obj(&b, spec, "behavior");
    rules(&b, behavior, "scaleUp", &p->api.scale_up);
    rules(&b, behavior, "scaleDown", &p->api.scale_down);
    return jb_done(&b, o);
}
