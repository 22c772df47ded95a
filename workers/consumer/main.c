/* consumer - Kafka sales topic -> Valkey aggregates, each sale counted exactly once.
 *
 * Threads: main (options, signals), the loop (Kafka poll + Valkey apply, see loop.h),
 * libmicrohttpd's (/healthz /readyz /metrics), and librdkafka's own. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "contract.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "signals.h"

static int parse_options(struct sp_consumer_options *o, int argc, char **argv)
{
    return sp_config_parse("consumer",
                           "Consumes sales from Kafka into the Valkey aggregates "
                           "of the dashboard, each sale exactly once.",
                           sp_consumer_option_table, o, argc, argv);
}

static int ready(void *arg, char *why, size_t cap)
{
    struct loop *l = arg;
    if (atomic_load(&l->ready))
        return 1;
    snprintf(why, cap, "Valkey does not answer (see the valkey_error log lines)");
    return 0;
}

static void *run(void *arg)
{
    loop_run(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    struct sp_consumer_options o;
    int rc = parse_options(&o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    sp_signals_init();
    sp_log_init("consumer", (enum sp_log_level)sp_log_level_parse(o.log_level));
    loop_metrics_init();

    static struct loop l;
    char err[512];
    const struct loop_config lcfg = {.brokers = o.brokers,
                                     .group = o.group,
                                     .topic = o.topic,
                                     .assignment_strategy = o.strategy,
                                     .session_timeout_ms = o.session_timeout_ms,
                                     .batch_size = o.batch_size,
                                     .batch_wait_ms = o.batch_wait_ms,
                                     .prefetch_kb = o.prefetch_kb,
                                     .fetch_wait_ms = o.fetch_wait_ms,
                                     .wait_replicas = o.wait_replicas,
                                     .wait_timeout_ms = o.wait_timeout_ms,
                                     .stop_grace_s = o.stop_grace_s,
                                     .security = SP_KAFKA_SECURITY_OF(&o)};
    const struct store_config scfg = {
        .url = o.valkey_url,
        .password = o.valkey_password,
        .topic = o.topic,
        .series_ttl_s = o.series_ttl_s,
        .series_max_len = o.series_max_len,
        .series_interval_ms = o.series_interval_ms,
        .timeout_s = (double)(o.valkey_timeout_ms + (o.wait_replicas > 0 ? o.wait_timeout_ms : 0)) /
                     1000.0};
    if (loop_init(&l, &lcfg, &scfg, err, sizeof err) < 0) {
        sp_error("start_failed", "%s", err);
        return 1;
    }
    sp_admin_set_ready(ready, &l);
    struct MHD_Daemon *admin = sp_admin_start(o.bind, (uint16_t)o.http_port);
    pthread_t thread;
    if (!admin || pthread_create(&thread, NULL, run, &l) != 0) {
        if (admin)
            MHD_stop_daemon(admin);
        loop_free(&l);
        return 1;
    }
    sp_info("started", "topic %s, group %s, brokers %s, batch %ld / %ld ms, WAIT %ld", o.topic,
            o.group, o.brokers, o.batch_size, o.batch_wait_ms, o.wait_replicas);
    while (!atomic_load(&l.finished) && !sp_signals_wait(0.5))
        ;
    sp_admin_set_stopping();
    sp_info("stopping", "finishing the batch in hand");
    atomic_store(&l.stop, 1);
    pthread_join(thread, NULL);
    MHD_stop_daemon(admin);
    int failed = atomic_load(&l.failed);
    loop_free(&l);
    sp_info("stopped", failed ? "after a fatal error" : "bye");
    return failed ? 1 : 0;
}
