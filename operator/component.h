/* component.h - the workers of a pipeline (api, bridge, one per writer group, consumer): their
 * option tables (common/contract.h), images, ports and probes, as the Deployment and Service
 * builders need them. Ports are the contract's: each is the default of the worker option that
 * the table marks with a port source (SP_FROM_PORT_*). */
#ifndef OP_COMPONENT_H
#define OP_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "pipeline.h"

#define COMPONENTS_MAX (3 + PL_WRITERS_MAX)
#define COMPONENT_PORTS_MAX 2

enum comp_type { COMP_API, COMP_BRIDGE, COMP_WRITER, COMP_CONSUMER };

struct comp_port {
    const char *name; /* "http", "grpc", "metrics" */
    int port;
};

struct component {
    enum comp_type type;
    char name[32];                   /* "api", "bridge", "writer-a", "consumer" */
    const char *image;               /* image, container and program name: "api", "writer", ... */
    const struct sp_option *options; /* the worker's option table (contract.h) */
    int replicas;                    /* -1: owned by the HorizontalPodAutoscaler */
    const struct pl_resources *res;
    struct comp_port ports[COMPONENT_PORTS_MAX];
    int n_ports;
    const char *http_port_name; /* port serving /healthz /readyz /metrics */
    bool grpc_readiness;        /* readiness through grpc.health.v1 on "grpc" */
    bool headless;              /* its Service has no cluster IP */
    const char *service_suffix; /* after "<name>-<component>": "-headless" for writers */
};

/* Fills `out` with the pipeline's components in a fixed order; returns how many. */
int component_list(const struct pipeline *p, struct component out[COMPONENTS_MAX]);

/* Object names of a component's Deployment and Service. */
void component_deployment_name(const struct pipeline *p, const struct component *c, char *buf,
                               size_t cap);
void component_service_name(const struct pipeline *p, const struct component *c, char *buf,
                            size_t cap);

/* A port of a worker's contract by its source (SP_FROM_PORT_*), e.g. the bridge's "http". */
int component_port(const char *program, enum sp_from port);

#endif
