/* build_service.c - a Service per component. Writer groups get a headless one: gRPC keeps one
 * HTTP/2 connection per target, so the bridge must see every pod (dns:/// + round robin). The
 * consumer's is headless too: nothing calls it, Prometheus scrapes its pods. */
#include "build.h"

#include <string.h>

cJSON *build_service(const struct pipeline *p, const struct component *c)
{
    struct jb b = {0};
    char name[128];
    component_service_name(p, c, name, sizeof name);
    cJSON *o = build_object(&b, p, KIND_SERVICE, name, c->name, c->image);
    cJSON *spec = jb_obj(&b, o, "spec");
    jb_str(&b, spec, "type", "ClusterIP");
    if (c->headless) {
        jb_str(&b, spec, "clusterIP", "None");
        jb_bool(&b, spec, "publishNotReadyAddresses", false);
    }
    build_selector_labels(&b, jb_obj(&b, spec, "selector"), p, c->name, c->image);
    cJSON *ports = jb_arr(&b, spec, "ports");
    for (int i = 0; i < c->n_ports; i++) {
        cJSON *port = jb_obj(&b, ports, NULL);
        jb_str(&b, port, "name", c->ports[i].name);
        jb_int(&b, port, "port", c->ports[i].port);
        jb_str(&b, port, "targetPort", c->ports[i].name);
        jb_str(&b, port, "protocol", "TCP");
        jb_str(&b, port, "appProtocol",
               strcmp(c->ports[i].name, "grpc") ? "http" : "kubernetes.io/h2c");
    }
    return jb_done(&b, o);
}
