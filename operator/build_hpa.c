/* build_hpa.c - the api's HorizontalPodAutoscaler (autoscaling/v2): min..max replicas on the
 * average CPU utilisation of the pods' requests. */
#include "build.h"

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
    return jb_done(&b, o);
}
