/* component.c - see component.h. Ports and endpoints are the workers' contract (issues 1-4). */
#include "component.h"

#include <stdio.h>
#include <string.h>

#define PORT_API 8080
#define PORT_BRIDGE 8081
#define PORT_WRITER_GRPC 50051
#define PORT_WRITER_HTTP 9091
#define PORT_CONSUMER_HTTP 9092

static struct component rest_component(enum comp_type type, const char *name, int port,
                                       int replicas, const struct pl_resources *res)
{
    struct component c = {.type = type, .image = name, .replicas = replicas, .res = res,
                          .ports = {{"http", port}}, .n_ports = 1, .http_port_name = "http"};
    snprintf(c.name, sizeof c.name, "%s", name);
    return c;
}

int component_list(const struct pipeline *p, struct component out[COMPONENTS_MAX])
{
    int n = 0;
    out[n++] = rest_component(COMP_API, "api", PORT_API, -1, &p->api.res);
    out[n++] = rest_component(COMP_BRIDGE, "bridge", PORT_BRIDGE, p->bridge.replicas, &p->bridge.res);
    for (int i = 0; i < p->n_writers; i++) {
        const struct pl_writer *w = &p->writers[i];
        struct component c = {.type = COMP_WRITER, .image = "writer", .replicas = w->replicas,
                              .res = &w->res,
                              .ports = {{"grpc", PORT_WRITER_GRPC}, {"metrics", PORT_WRITER_HTTP}},
                              .n_ports = 2, .http_port_name = "metrics", .grpc_readiness = true,
                              .headless = true, .service_suffix = "-headless"};
        snprintf(c.name, sizeof c.name, "%s", w->name);
        out[n++] = c;
    }
    struct component consumer = rest_component(COMP_CONSUMER, "consumer", PORT_CONSUMER_HTTP,
                                               p->consumer.replicas, &p->consumer.res);
    consumer.ports[0].name = "metrics";
    consumer.http_port_name = "metrics";
    consumer.headless = true;  /* only scraped, never called: no cluster IP to spend */
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
