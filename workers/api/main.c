/* main.c - the api: POST /ventas in, forwarded to the bridge over keep-alive HTTP.
 *
 * The assignment's "Rust API". It validates each sale, gives it an id, and answers 202
 * {"estado","id"} only once the bridge confirmed the sale is stored. With a catalog artifact,
 * sales of products not in it are refused first (gate.h). Threads: the intake's daemon threads
 * (--threads), one curl thread (client.h), the catalog thread (gate.h). SIGTERM: stop intake,
 * let the sales in flight finish (bounded by --timeout-ms), exit 0. SIGHUP: pull the catalog. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>

#include "catalog.h"
#include "client.h"
#include "contract.h"
#include "gate.h"
#include "httpd.h"
#include "log.h"
#include "rest.h"
#include "signals.h"

/* Returns 0 to run, 1 to exit 0 (--help), -1 to exit 2. */
static int parse_options(struct sp_api_options *o, int argc, char **argv)
{
    return sp_config_parse("api",
                           "REST intake of sales: validates POST /ventas and forwards "
                           "each sale to the bridge.",
                           sp_api_option_table, o, argc, argv);
}

static void stop_client(void *arg)
{
    api_client_stop(arg);
}

int main(int argc, char **argv)
{
    struct sp_api_options o;
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sp_log_init("api", (enum sp_log_level)sp_log_level_parse(o.log_level));
    sp_signals_init();
    sp_signals_add(SIGHUP);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int status = 1;
    struct api_client_config ccfg = {.bridge_url = o.bridge_url,
                                     .timeout_ms = o.timeout_ms,
                                     .max_queued = (unsigned)o.max_in_flight,
                                     .max_connections = (unsigned)o.connections,
                                     .eager_requests = (unsigned)o.eager_requests,
                                     .batch_wait_ms = (unsigned)o.batch_wait_ms,
                                     .batch_max = (unsigned)o.batch_max};
    struct api_client *client = api_client_start(&ccfg);
    struct api_gate_config gcfg = {.artifact = o.catalog_artifact,
                                   .auth_file = o.registry_auth_file,
                                   .ca_file = o.registry_ca,
                                   .refresh_s = o.catalog_refresh_s,
                                   .timeout_ms = o.timeout_ms};
    struct api_gate *gate = client ? api_gate_start(&gcfg, client) : NULL;
    if (!gate)
        goto done;
    sp_admin_set_ready(api_gate_ready, gate);
    struct sp_rest_config rcfg = {.bind_addr = o.bind,
                                  .port = (uint16_t)o.port,
                                  SP_REST_CONFIG_FROM(&o),
                                  .reserved_fds = (unsigned)o.connections,
                                  .sale_id_from_header = 0,
                                  .forward = api_gate_forward,
                                  .forward_arg = gate};
    struct sp_rest *rest = sp_rest_start(&rcfg);
    if (!rest)
        goto done;
    sp_info("started", "listening on %s:%ld, bridge %s, timeout %ld ms, %ld connections", o.bind,
            o.port, o.bridge_url, o.timeout_ms, o.connections);

    int sig;
    while (!(sig = sp_signals_wait(3600)) || sig == SIGHUP)
        if (sig == SIGHUP)
            api_gate_refresh(gate);
    sp_info("stopping", "signal %d", sig);
    sp_rest_stop(rest, (double)o.shutdown_delay_ms / 1000.0, (double)o.timeout_ms / 1000.0 + 1.0,
                 stop_client, client);
    sp_info("stopped", "all sales answered");
    status = 0;
done:
    api_gate_free(gate);
    api_client_free(client);
    curl_global_cleanup();
    return status;
}
