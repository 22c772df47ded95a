/* main.c - the bridge: POST /ventas in, a gRPC ProcesarVenta call to the writers out; POST
 * /ventas/lote (the api's batches) in, one ProcesarLote call per batch out (client.h).
 *
 * The assignment's "Go deployment 1". Same REST intake as the api (common/rest.h); the sale id
 * comes in X-Sale-Id and goes out as gRPC metadata x-sale-id. Threads: the intake's daemon
 * threads (--threads), gRPC's own, and one completion-queue thread (client.h). SIGTERM: stop
 * intake, let the calls in flight end (bounded by --timeout-ms), exit 0. */
#include <grpc/grpc.h>
#include <stdio.h>

#include "client.h"
#include "contract.h"
#include "httpd.h"
#include "log.h"
#include "rest.h"
#include "signals.h"

/* Returns 0 to run, 1 to exit 0 (--help), -1 to exit 2. */
static int parse_options(struct sp_bridge_options *o, int argc, char **argv)
{
    return sp_config_parse("bridge",
                           "REST to gRPC: takes POST /ventas and calls "
                           "ProductSaleService/ProcesarVenta on the writers; takes the api's "
                           "batches (POST /ventas/lote) and sends each as one "
                           "SaleBatchService/ProcesarLote call.",
                           sp_bridge_option_table, o, argc, argv);
}

static void stop_client(void *arg)
{
    br_client_stop(arg);
}

int main(int argc, char **argv)
{
    struct sp_bridge_options o;
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sp_log_init("bridge", (enum sp_log_level)sp_log_level_parse(o.log_level));
    sp_signals_init(); /* before grpc_init starts threads */
    grpc_init();

    int status = 1;
    struct br_client_config ccfg = {.targets = o.targets, .timeout_ms = o.timeout_ms};
    struct br_client *client = br_client_start(&ccfg);
    if (!client)
        goto done;
    sp_admin_set_ready(br_client_ready, client);
    struct sp_rest_config rcfg = {.bind_addr = o.bind,
                                  .port = (uint16_t)o.port,
                                  SP_REST_CONFIG_FROM(&o),
                                  .sale_id_from_header = 1,
                                  .batches = 1,
                                  .forward = br_client_send,
                                  .forward_batch = br_client_send_batch,
                                  .forward_arg = client};
    struct sp_rest *rest = sp_rest_start(&rcfg);
    if (!rest)
        goto done;
    sp_info("started", "listening on %s:%ld, writers %s, deadline %ld ms", o.bind, o.port,
            o.targets, o.timeout_ms);

    int sig;
    while (!(sig = sp_signals_wait(3600)))
        ;
    sp_info("stopping", "signal %d", sig);
    sp_rest_stop(rest, (double)o.shutdown_delay_ms / 1000.0, (double)o.timeout_ms / 1000.0 + 1.0,
                 stop_client, client);
    sp_info("stopped", "all sales answered");
    status = 0;
done:
    br_client_free(client);
    grpc_shutdown();
    return status;
}
