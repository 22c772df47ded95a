/* writer - gRPC server for blackfriday.ProductSaleService: each sale into Kafka.
 *
 * A sale is answered OK only once Kafka's delivery report says it is stored (idempotent
 * producer, acks=all); every failure is a gRPC error code, never OK.
 *
 * Threads: main (options, start-up, then SIGTERM wait and a Kafka probe each second), the
 * gRPC completion-queue thread and the Kafka poll thread (server.h explains both), the admin
 * HTTP thread (/healthz /readyz /metrics), plus librdkafka's and gRPC's own.
 *
 * SIGTERM: /readyz turns 503, the server stops accepting calls and waits for those in flight
 * to be answered, the producer is flushed, exit 0.
 *
 * A fatal producer error (librdkafka's: the idempotent producer lost its guarantees) ends the
 * writer with exit status 1: from the moment librdkafka raises it no sale is answered OK,
 * /readyz says so, the calls in flight get errors, and the Deployment starts a new writer. */
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"
#include "httpd.h"
#include "kafka.h"
#include "log.h"
#include "server.h"
#include "signals.h"

#define PROBE_TIMEOUT_MS 2000

static struct sp_writer_options cfg;

static int kafka_ready(void *arg, char *why, size_t cap)
{
    if (wr_kafka_up(arg))
        return 1;
    if (wr_kafka_failed(arg))
        snprintf(why, cap, "the Kafka producer failed (fatal error): restarting");
    else
        snprintf(why, cap, "kafka unreachable (topic %s at %s)", cfg.topic, cfg.brokers);
    return 0;
}

/* Serves until SIGTERM/SIGINT (returns the signal) or a fatal producer error (returns 0),
 * probing Kafka once a second. */
static int serve(struct wr_kafka *kafka)
{
    int sig;
    while (!(sig = sp_signals_wait(1.0)) && !wr_kafka_failed(kafka))
        wr_kafka_probe(kafka, PROBE_TIMEOUT_MS);
    return sig;
}

static int run(const char *instance)
{
    char err[256], address[300], client_id[300];
    int rc = 1;
    struct wr_server *server = NULL;
    struct MHD_Daemon *admin = NULL;
    snprintf(client_id, sizeof client_id, "writer-%s", instance);
    struct wr_kafka_options ko = {.brokers = cfg.brokers,
                                  .topic = cfg.topic,
                                  .client_id = client_id,
                                  .delivery_timeout_ms = cfg.delivery_timeout_ms,
                                  .linger_ms = cfg.linger_ms,
                                  .sticky_ms = cfg.sticky_ms,
                                  .queue_max = cfg.max_in_flight,
                                  .security = SP_KAFKA_SECURITY_OF(&cfg),
                                  .acks = cfg.acks,
                                  .idempotence = cfg.idempotence,
                                  .on_delivery = wr_server_on_delivery};
    struct wr_kafka *kafka = wr_kafka_new(&ko, err, sizeof err);
    if (!kafka) {
        sp_error("start_failed", "%s", err);
        return 1;
    }
    snprintf(address, sizeof address, "%s:%ld", cfg.bind, cfg.grpc_port);
    /* An aged connection's calls wait at most for Kafka's delivery timeout, which librdkafka
     * reports up to a second late: the same margin as the deadlines' (contract.h). */
    struct wr_server_options so = {.address = address,
                                   .max_in_flight = cfg.max_in_flight,
                                   .kafka = kafka,
                                   .max_connection_age_ms = cfg.max_connection_age_ms,
                                   .max_connection_grace_ms = cfg.delivery_timeout_ms +
                                                              SP_DEADLINE_MARGIN_MIN_MS};
    if (!(server = wr_server_start(&so, err, sizeof err))) {
        sp_error("start_failed", "%s", err);
        goto done;
    }
    sp_admin_set_ready(kafka_ready, kafka);
    if (!(admin = sp_admin_start(cfg.bind, (uint16_t)cfg.http_port)))
        goto done;
    wr_kafka_probe(kafka, PROBE_TIMEOUT_MS);
    const union MHD_DaemonInfo *bound = MHD_get_daemon_info(admin, MHD_DAEMON_INFO_BIND_PORT);
    sp_info("started", "writer %s: gRPC on %s:%d, admin HTTP on port %u, kafka %s topic %s",
            instance, cfg.bind, wr_server_port(server),
            bound ? (unsigned)bound->port : (unsigned)cfg.http_port, cfg.brokers, cfg.topic);
    int sig = serve(kafka);
    sp_admin_set_stopping();
    if (sig) {
        sp_info("stopping", "writer %s: signal %d, answering the calls in flight", instance, sig);
        rc = 0;
    } else {
        sp_error("stopping",
                 "writer %s: the Kafka producer failed; failing the calls in flight "
                 "and exiting",
                 instance);
        wr_kafka_abandon(kafka);
    }
done:
    if (server)
        wr_server_stop(server, (double)cfg.delivery_timeout_ms / 1000 + 5);
    if (admin)
        MHD_stop_daemon(admin); /* before the producer goes: /metrics reads its queue */
    wr_kafka_free(kafka, (int)cfg.delivery_timeout_ms + 1000);
    wr_server_free(server);
    if (!rc)
        sp_info("stopped", "writer %s: every call answered, producer flushed", instance);
    return rc;
}

int main(int argc, char **argv)
{
    int r = sp_config_parse("writer",
                            "gRPC server for blackfriday.ProductSaleService: stores each sale in "
                            "Kafka and answers once Kafka has confirmed it.",
                            sp_writer_option_table, &cfg, argc, argv);
    if (r)
        return r > 0 ? 0 : 2;
    char host[256] = "writer";
    if (!*cfg.instance && gethostname(host, sizeof host) == 0)
        host[sizeof host - 1] = '\0';
    const char *instance = *cfg.instance ? cfg.instance : host;
    sp_log_init("writer", (enum sp_log_level)sp_log_level_parse(cfg.log_level));
    /* Before any thread exists, so that all of them leave SIGTERM to main. */
    sp_signals_init();
    grpc_init();
    int rc = run(instance);
    grpc_shutdown();
    return rc;
}
