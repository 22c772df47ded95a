/* component.c - see component.h. */
#include "component.h"

#include <stdio.h>
#include <string.h>

#include "contract.h"

static const struct {
    enum sp_from from;
    const char *name;
} port_names[] = {
    {SP_FROM_PORT_GRPC, "grpc"}, /* first: the writer's probe and Service lead with it */
    {SP_FROM_PORT_HTTP, "http"},
    {SP_FROM_PORT_METRICS, "metrics"},
};

int component_port(const char *program, enum sp_from port)
{
    return sp_contract_port(sp_contract_options(program), port);
}

static struct component make(enum comp_type type, const char *name, const char *image, int replicas,
                             const struct pl_resources *res)
{
    struct component c = {.type = type,
                          .image = image,
                          .options = sp_contract_options(image),
                          .replicas = replicas,
                          .res = res};
    snprintf(c.name, sizeof c.name, "%s", name);
    for (size_t i = 0; i < sizeof port_names / sizeof port_names[0]; i++) {
        int port = sp_contract_port(c.options, port_names[i].from);
        if (port < 0 || c.n_ports == COMPONENT_PORTS_MAX)
            continue;
        c.ports[c.n_ports++] = (struct comp_port){port_names[i].name, port};
        if (port_names[i].from == SP_FROM_PORT_GRPC)
            c.grpc_readiness = true;
        else
            c.http_port_name = port_names[i].name;
    }
    return c;
}

int component_list(const struct pipeline *p, struct component out[COMPONENTS_MAX])
{
    int n = 0;
    out[n++] = make(COMP_API, "api", "api", -1, &p->api.res);
    out[n++] = make(COMP_BRIDGE, "bridge", "bridge", p->bridge.replicas, &p->bridge.res);
    for (int i = 0; i < p->n_writers; i++) {
        const struct pl_writer *w = &p->writers[i];
        struct component c = make(COMP_WRITER, w->name, "writer", w->replicas, &w->res);
        c.headless = true;
        c.service_suffix = "-headless";
        out[n++] = c;
    }
    struct component consumer = make(COMP_CONSUMER, "consumer", "consumer", p->consumer.replicas,
                                     &p->consumer.res);
    consumer.headless = true; /* only scraped, never called: no cluster IP to spend */
    out[n++] = consumer;
    return n;
}

void component_deployment_name(const struct pipeline *p, const struct component *c, char *buf,
                               size_t cap)
{
    snprintf(buf, cap, "%s-%s", p->name, c->name);
}

void component_service_name(const struct pipeline *p, const struct component *c, char *buf,
                            size_t cap)
{
    snprintf(buf, cap, "%s-%s%s", p->name, c->name, c->service_suffix ? c->service_suffix : "");
}
