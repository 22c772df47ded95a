/* consumer - Kafka sales topic -> Valkey aggregates, each sale counted exactly once.
 *
 * Threads: main (options, signals), the loop (Kafka poll + Valkey apply, see loop.h),
 * libmicrohttpd's (/healthz /readyz /metrics), and librdkafka's own. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "signals.h"

struct options {
    const char *brokers, *topic, *group, *strategy, *valkey_url, *valkey_password, *bind,
        *log_level;
    long batch_size, batch_wait_ms, wait_replicas, wait_timeout_ms, valkey_timeout_ms,
        series_ttl_s, series_max_len, series_interval_ms, session_timeout_ms, http_port,
        prefetch_kb;
    double stop_grace_s;
};

static int parse_options(struct options *o, int argc, char **argv)
{
    const struct sp_option table[] = {
        {"kafka-brokers", "KAFKA_BROKERS", SP_OPT_STRING, &o->brokers, "127.0.0.1:9092",
         "Kafka bootstrap servers", SP_ANY},
        {"topic", "KAFKA_TOPIC", SP_OPT_STRING, &o->topic, "sales", "topic of the sales", SP_ANY},
        {"group", "KAFKA_GROUP", SP_OPT_STRING, &o->group, "sales-consumer",
         "consumer group (every member applies to the same Valkey)", SP_ANY},
        {"assignment-strategy", "KAFKA_ASSIGNMENT_STRATEGY", SP_OPT_STRING, &o->strategy,
         "range,roundrobin", "partition.assignment.strategy (e.g. cooperative-sticky)", SP_ANY},
        {"session-timeout-ms", "KAFKA_SESSION_TIMEOUT_MS", SP_OPT_INT, &o->session_timeout_ms,
         "10000", "how long the group waits for a silent member before reassigning",
         SP_RANGE(1, 3600000)},
        {"batch-size", "BATCH_SIZE", SP_OPT_INT, &o->batch_size, "500",
         "records per Valkey call (1-100000)", SP_RANGE(1, 100000)},
        {"batch-wait-ms", "BATCH_WAIT_MS", SP_OPT_INT, &o->batch_wait_ms, "20",
         "how long a started batch waits to fill up (0-10000)", SP_RANGE(0, 10000)},
        {"prefetch-kb", "KAFKA_PREFETCH_KB", SP_OPT_INT, &o->prefetch_kb, "1024",
         "KiB of records fetched ahead per partition; bounds memory while a backlog drains",
         SP_RANGE(64, 1048576)},
        {"valkey-url", "VALKEY_URL", SP_OPT_STRING, &o->valkey_url, "redis://127.0.0.1:6379",
         "Valkey primary, redis://[[user]:password@]host[:port][/db]", SP_ANY},
        {"valkey-password", "VALKEY_PASSWORD", SP_OPT_STRING, &o->valkey_password, NULL,
         "password when the URL has none", SP_ANY},
        {"valkey-timeout-ms", "VALKEY_TIMEOUT_MS", SP_OPT_INT, &o->valkey_timeout_ms, "5000",
         "connect and command timeout (WAIT's own timeout is added)", SP_RANGE(1, 3600000)},
        {"wait-replicas", "VALKEY_WAIT_REPLICAS", SP_OPT_INT, &o->wait_replicas, "0",
         "after each batch, WAIT for this many replicas (0: off)", SP_RANGE(0, 1000)},
        {"wait-timeout-ms", "VALKEY_WAIT_TIMEOUT_MS", SP_OPT_INT, &o->wait_timeout_ms, "1000",
         "WAIT timeout; a batch moves on after it even if short", SP_RANGE(0, 3600000)},
        {"series-ttl-seconds", "SERIES_TTL_SECONDS", SP_OPT_INT, &o->series_ttl_s, "86400",
         "expiry of each price series, refreshed on write (0: never); totals never expire",
         SP_RANGE(0, 315360000)},
        {"series-max-len", "SERIES_MAX_LEN", SP_OPT_INT, &o->series_max_len, "1000",
         "approximate length bound of each price series", SP_RANGE(1, 100000000)},
        {"series-interval-ms", "SERIES_INTERVAL_MS", SP_OPT_INT, &o->series_interval_ms, "1000",
         "at most one price point per product and interval, by sale time (0: every sale)",
         SP_RANGE(0, 86400000)},
        {"stop-grace-seconds", "STOP_GRACE_SECONDS", SP_OPT_DOUBLE, &o->stop_grace_s, "10",
         "on SIGTERM, how long to keep retrying the batch in hand while Valkey is down",
         SP_RANGE(0, 3600)},
        {"http-port", "HTTP_PORT", SP_OPT_INT, &o->http_port, "9092",
         "port of /healthz /readyz /metrics", SP_RANGE(0, 65535)},
        {"bind", "BIND_ADDR", SP_OPT_STRING, &o->bind, "0.0.0.0", "address of the HTTP port",
         SP_ANY},
        SP_OPTION_LOG_LEVEL(&o->log_level),
        {0},
    };
    return sp_config_parse("consumer", "Consumes sales from Kafka into the Valkey aggregates "
                           "of the dashboard, each sale exactly once.", table, argc, argv);
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
    struct options o;
    int rc = parse_options(&o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    sp_signals_init();
    sp_log_init("consumer", (enum sp_log_level)sp_log_level_parse(o.log_level));
    loop_metrics_init();

    static struct loop l;
    char err[512];
    const struct loop_config lcfg = {
        .brokers = o.brokers, .group = o.group, .topic = o.topic,
        .assignment_strategy = o.strategy, .session_timeout_ms = o.session_timeout_ms,
        .batch_size = o.batch_size, .batch_wait_ms = o.batch_wait_ms, .prefetch_kb = o.prefetch_kb,
        .wait_replicas = o.wait_replicas, .wait_timeout_ms = o.wait_timeout_ms,
        .stop_grace_s = o.stop_grace_s};
    const struct store_config scfg = {
        .url = o.valkey_url, .password = o.valkey_password, .topic = o.topic,
        .series_ttl_s = o.series_ttl_s, .series_max_len = o.series_max_len,
        .series_interval_ms = o.series_interval_ms,
        .timeout_s = (double)(o.valkey_timeout_ms +
                              (o.wait_replicas > 0 ? o.wait_timeout_ms : 0)) / 1000.0};
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
    sp_info("started", "topic %s, group %s, brokers %s, batch %ld / %ld ms, WAIT %ld",
            o.topic, o.group, o.brokers, o.batch_size, o.batch_wait_ms, o.wait_replicas);
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
