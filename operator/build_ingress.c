/* build_ingress.c - the Ingress in front of the api: POST /ventas through the ingress class
 * (NGINX), on spec.ingress.host or on any host when it is empty. */
#include "build.h"

#define INGRESS_PATH "/ventas"

cJSON *build_ingress(const struct pipeline *p)
{
    struct jb b = {0};
    char name[128];
    pipeline_object_name(p, "api", name, sizeof name);
    cJSON *o = build_object(&b, p, KIND_INGRESS, name, "api", "api");
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, spec, "ingressClassName", p->ingress.class_name);
    cJSON *rule = jb_obj(&b, jb_arr(&b, spec, "rules"), NULL);
    if (*p->ingress.host)
        jb_str(&b, rule, "host", p->ingress.host);
    cJSON *path = jb_obj(&b, jb_arr(&b, jb_obj(&b, rule, "http"), "paths"), NULL);
    jb_str(&b, path, "path", INGRESS_PATH);
    jb_str(&b, path, "pathType", "Prefix");
    cJSON *svc = jb_obj(&b, jb_obj(&b, path, "backend"), "service");
    jb_str(&b, svc, "name", name);
    jb_str(&b, jb_obj(&b, svc, "port"), "name", "http");
    return jb_done(&b, o);
}
