/* main.c - the bridge: POST /ventas in, a gRPC ProcesarVenta call to the writers out.
 *
 * The assignment's "Go deployment 1". Same REST intake as the api (common/rest.h); the sale id
 * comes in X-Sale-Id and goes out as gRPC metadata x-sale-id. Threads: the intake's daemon
 * threads (--threads), gRPC's own, and one completion-queue thread (client.h). SIGTERM: stop
 * intake, let the calls in flight end (bounded by --timeout-ms), exit 0. */
#include <grpc/grpc.h>
#include <stdio.h>

#include "client.h"
#include "config.h"
#include "httpd.h"
#include "log.h"
#include "rest.h"
#include "signals.h"

struct bridge_options {
    const char *bind, *targets, *log_level;
    long port, timeout_ms;
    struct sp_rest_options rest;
};

/* Returns 0 to run, 1 to exit 0 (--help), -1 to exit 2. */
static int parse_options(struct bridge_options *o, int argc, char **argv)
{
    const struct sp_option table[] = {
        {"port", "PORT", SP_OPT_INT, &o->port, "8081",
         "TCP port for POST /ventas, /healthz, /readyz and /metrics", SP_RANGE(1, 65535)},
        {"bind", "BIND_ADDR", SP_OPT_STRING, &o->bind, "0.0.0.0", "IPv4 address to listen on",
         SP_ANY},
        {"writer-target", "WRITER_TARGET", SP_OPT_STRING, &o->targets, "ipv4:127.0.0.1:50051",
         "gRPC target of the writers, balanced round_robin (e.g. "
         "ipv4:127.0.0.1:50051,127.0.0.1:50052 or dns:///writer-headless.ns.svc:50051); "
         "several writer groups separated by ';' or '|' get one channel each, used in turn",
         SP_ANY},
        {"timeout-ms", "DOWNSTREAM_TIMEOUT_MS", SP_OPT_INT, &o->timeout_ms, "4000",
         "deadline of every gRPC call; then 504 (keep it below the api's)", SP_RANGE(1, 600000)},
        SP_REST_OPTIONS(&o->rest),
        SP_OPTION_LOG_LEVEL(&o->log_level),
        {0},
    };
    return sp_config_parse("bridge", "REST to gRPC: takes POST /ventas and calls "
                           "ProductSaleService/ProcesarVenta on the writers.",
                           table, argc, argv);
}

static void stop_client(void *arg)
{
    br_client_stop(arg);
}

int main(int argc, char **argv)
{
    struct bridge_options o;
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sp_log_init("bridge", (enum sp_log_level)sp_log_level_parse(o.log_level));
    sp_signals_init();   /* before grpc_init starts threads */
    grpc_init();

    int status = 1;
    struct br_client_config ccfg = {.targets = o.targets, .timeout_ms = o.timeout_ms};
    struct br_client *client = br_client_start(&ccfg);
    if (!client)
        goto done;
    sp_admin_set_ready(br_client_ready, client);
    struct sp_rest_config rcfg = {
        .bind_addr = o.bind, .port = (uint16_t)o.port, SP_REST_CONFIG_FROM(&o.rest),
        .sale_id_from_header = 1,
        .forward = br_client_send, .forward_arg = client};
    struct sp_rest *rest = sp_rest_start(&rcfg);
    if (!rest)
        goto done;
    sp_info("started", "listening on %s:%ld, writers %s, deadline %ld ms", o.bind, o.port,
            o.targets, o.timeout_ms);

    int sig;
    while (!(sig = sp_signals_wait(3600)))
        ;
    sp_info("stopping", "signal %d: stopping intake, finishing calls in flight", sig);
    sp_admin_set_stopping();
    sp_rest_shutdown(rest, (double)o.timeout_ms / 1000.0 + 1.0, stop_client, client);
    sp_info("stopped", "all sales answered");
    status = 0;
done:
    br_client_free(client);
    grpc_shutdown();
    return status;
}
