/* main.c - the salespipeline operator: reconciles SalesPipeline objects into the workers'
 * Deployments, Services, HPA and Ingress, and the infrastructure under them. Options, start-up
 * and shutdown; the moving parts are in controller.c. */
#include <curl/curl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "controller.h"
#include "httpd.h"
#include "kubeconfig.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "render.h"
#include "signals.h"

#define OPERATOR_OPTIONS(X)                                                                        \
    X(kubeconfig, "kubeconfig", "KUBECONFIG", STRING, NULL, SP_ANY, NONE,                          \
      "kubeconfig file(s), ':'-separated; empty: ~/.kube/config, else in-cluster")                 \
    X(context, "context", "KUBE_CONTEXT", STRING, NULL, SP_ANY, NONE,                              \
      "kubeconfig context (empty: current-context)")                                               \
    X(watch_ns, "namespace", "WATCH_NAMESPACE", STRING, NULL, SP_ANY, NONE,                        \
      "namespace to watch (empty: all namespaces)")                                                \
    X(data_ns, "data-namespace", "DATA_NAMESPACE", STRING, NULL, SP_ANY, NONE,                     \
      "with --namespace: the one namespace its pipelines' Valkey VMs may use, watched too "        \
      "and never created or deleted by the operator (empty: <namespace>-data)")                    \
    X(bind_addr, "bind-addr", "BIND_ADDR", STRING, "0.0.0.0", SP_ANY, NONE,                        \
      "address of the /healthz /readyz /metrics server")                                           \
    X(http_port, "http-port", "HTTP_PORT", INT, 8090, SP_RANGE(0, 65535), NONE,                    \
      "port of the /healthz /readyz /metrics server")                                              \
    SP_OPTION_LOG_LEVEL(X)                                                                         \
    X(workers, "workers", "WORKERS", INT, 1, SP_RANGE(1, CONTROLLER_WORKERS_MAX), NONE,            \
      "reconcile threads")                                                                         \
    X(leader_elect, "leader-elect", "LEADER_ELECT", BOOL, 1, SP_ANY, NONE,                         \
      "elect a leader through a Lease, so that several replicas can run and one acts")             \
    X(lease_ns, "lease-namespace", "LEASE_NAMESPACE", STRING, NULL, SP_ANY, NONE,                  \
      "namespace of the Lease (empty: the in-cluster namespace, else \"default\")")                \
    X(lease_name, "lease-name", "LEASE_NAME", STRING, "salespipeline-operator", SP_ANY, NONE,      \
      "name of the Lease")                                                                         \
    X(identity, "leader-elect-id", "POD_NAME", STRING, NULL, SP_ANY, NONE,                         \
      "this replica's identity in the Lease (empty: hostname plus a random suffix)")               \
    X(lease_duration, "lease-duration", "LEASE_DURATION", DOUBLE, 15, SP_RANGE(0.001, 3600), NONE, \
      "seconds a standby waits on an unrenewed Lease before taking it")                            \
    X(renew_deadline, "renew-deadline", "RENEW_DEADLINE", DOUBLE, 10, SP_RANGE(0.001, 3600), NONE, \
      "seconds the leader keeps leading without a successful renewal")                             \
    X(retry_period, "retry-period", "RETRY_PERIOD", DOUBLE, 2, SP_RANGE(0.001, 3600), NONE,        \
      "seconds between Lease attempts and renewals")                                               \
    X(watch_timeout, "watch-timeout", "WATCH_TIMEOUT", INT, 300, SP_RANGE(10, 86400), NONE,        \
      "seconds a watch request lasts before it is renewed (server-side timeoutSeconds)")           \
    X(resync, "resync", "RESYNC_SECONDS", DOUBLE, 600, SP_RANGE(0, 604800), NONE,                  \
      "list every SalesPipeline again after this many seconds (0: never)")                         \
    X(max_keys, "max-keys", "MAX_KEYS", INT, 10000, SP_RANGE(1, 10000000), NONE,                   \
      "most SalesPipelines the work queue holds at once")                                          \
    X(render, "render", NULL, STRING, NULL, SP_ANY, NONE,                                          \
      "print a generated artifact of the SalesPipeline in --file and exit, no cluster "            \
      "needed: " RENDER_WHAT)                                                                      \
    X(render_file, "file", NULL, STRING, "-", SP_ANY, NONE,                                        \
      "with --render: YAML file holding a SalesPipeline document (\"-\": standard input)")         \
    X(render_role, "role", NULL, STRING, "primary", SP_ANY, NONE,                                  \
      "with --render valkey-*: primary or replica")                                                \
    X(render_password, "password", NULL, STRING, NULL, SP_ANY, NONE,                               \
      "with --render: the Valkey password to write in (empty: a random one)")

struct options {
    OPERATOR_OPTIONS(SP_OPTION_FIELD)
};

static struct options opt;

#define SP_OPTION_STRUCT struct options
static const struct sp_option option_table[] = {OPERATOR_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

static int ready(void *arg, char *why, size_t cap)
{
    struct controller *c = arg;
    if (!controller_synced(c)) {
        snprintf(why, cap, "informers not synced yet");
        return 0;
    }
    snprintf(why, cap, "synced; %s",
             !c->lease || atomic_load(&c->lease->leading) ? "leading" : "standby");
    return 1;
}

static void default_identity(char *buf, size_t cap)
{
    char host[128] = "operator";
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() << 8;
    gethostname(host, sizeof host - 1);
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&seed, sizeof seed, 1, f) != 1)
            seed ^= (unsigned)clock();
        fclose(f);
    }
    snprintf(buf, cap, "%s_%08x", host, seed);
}

static int validate(void)
{
    int lvl = sp_log_level_parse(opt.log_level);
    /* Ranges are checked by the option table; what is left relates options to each other. */
    if (opt.renew_deadline <= opt.retry_period || opt.lease_duration <= opt.renew_deadline) {
        fprintf(stderr, "operator: need --lease-duration > --renew-deadline > --retry-period "
                        "(see --help)\n");
        return -1;
    }
    sp_log_init("operator", (enum sp_log_level)lvl);
    return 0;
}

/* Waits for SIGTERM/SIGINT. */
static void run_until_signal(void)
{
    int sig;
    while (!(sig = sp_signals_wait(1.0)))
        ;
    sp_info("stopping", "signal %d: finishing in-flight work, releasing the lease", sig);
}

int main(int argc, char **argv)
{
    struct kube_config cfg;
    struct lease lease = {0};
    struct controller ctl = {0};
    char err[1024], identity[256];
    int rc = sp_config_parse(
        "operator",
        "Reconciles SalesPipeline objects (sales.blackfriday.dev/v1alpha1) into "
        "the workers' Deployments, Services, HPA and Ingress, "
        "a Strimzi Kafka, Valkey in KubeVirt VMs and Grafana dashboards.",
        option_table, &opt, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (opt.render && *opt.render) {
        struct render_args ra = {opt.render, opt.render_file, opt.render_role, opt.render_password};
        if (render_run(&ra, stdout, err, sizeof err) == 0)
            return 0;
        fprintf(stderr, "operator: %s\n", err);
        return 2;
    }
    if (validate() < 0)
        return 2;
    /* One malloc arena per thread would multiply the RSS for nothing: the threads mostly wait
     * on sockets, so one arena costs no contention. A fixed mmap threshold sends reply buffers
     * and printed objects to mmap, given back on free instead of fragmenting the heap (see also
     * the malloc_trim calls after lists and bursts). */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    /* Initialises glibc's allocator here, before any thread. Under ASan (which replaces malloc
     * and mallopt, not malloc_trim) the first malloc_trim would initialise it instead, and two
     * threads doing so at once both end up attached to the main arena: glibc then aborts
     * ("a->attached_threads > 0") when the second one exits. */
    malloc_trim(0);
    sp_signals_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (kubeconfig_load(&cfg, opt.kubeconfig, opt.context, err, sizeof err) < 0) {
        sp_error("config_failed", "%s", err);
        curl_global_cleanup();
        return 1;
    }
    if (opt.identity && *opt.identity)
        snprintf(identity, sizeof identity, "%s", opt.identity);
    else
        default_identity(identity, sizeof identity);
    const char *lease_ns = opt.lease_ns && *opt.lease_ns      ? opt.lease_ns
                           : cfg.in_cluster && *cfg.namespace ? cfg.namespace
                                                              : "default";
    /* Namespaced: the pipelines' namespace and one data namespace, <namespace>-data unless set. */
    char data_ns[128] = "";
    if (opt.watch_ns && *opt.watch_ns && opt.data_ns && *opt.data_ns)
        snprintf(data_ns, sizeof data_ns, "%s", opt.data_ns);
    else if (opt.watch_ns && *opt.watch_ns)
        snprintf(data_ns, sizeof data_ns, "%s-data", opt.watch_ns);
    sp_info("starting",
            "server %s from %s; watching %s%s%s; identity %s; leader election %s (lease %s/%s)",
            cfg.server, cfg.source, opt.watch_ns && *opt.watch_ns ? opt.watch_ns : "all namespaces",
            *data_ns ? " and data namespace " : "", data_ns, identity,
            opt.leader_elect ? "on" : "off", lease_ns, opt.lease_name);

    lease = (struct lease){
        .cfg = {lease_ns, opt.lease_name, identity, opt.lease_duration, opt.renew_deadline,
                opt.retry_period},
        .kcfg = &cfg,
        .leader_gauge = sp_gauge_new("sp_operator_leader", NULL, "1 while this replica leads"),
        .transitions = sp_counter_new("sp_operator_leader_acquisitions_total", NULL,
                                      "Times this replica took the Lease"),
    };
    lease_init(&lease);
    ctl = (struct controller){.cfg = &cfg,
                              .watch_ns = opt.watch_ns ? opt.watch_ns : "",
                              .data_ns = data_ns,
                              .identity = identity,
                              .workers = opt.workers,
                              .watch_timeout = opt.watch_timeout,
                              .resync = opt.resync,
                              .max_keys = opt.max_keys,
                              .lease = opt.leader_elect ? &lease : NULL};
    if (!opt.leader_elect)
        sp_gauge_set(lease.leader_gauge, 1);
    sp_admin_set_ready(ready, &ctl);
    struct MHD_Daemon *admin = sp_admin_start(opt.bind_addr, (uint16_t)opt.http_port);
    rc = admin && controller_start(&ctl) == 0 && (!opt.leader_elect || lease_start(&lease) == 0)
             ? 0
             : 1;
    if (rc == 0)
        run_until_signal();
    sp_admin_set_stopping();
    controller_stop(&ctl);
    lease_stop(&lease);
    if (admin)
        MHD_stop_daemon(admin);
    controller_free(&ctl);
    lease_destroy(&lease);
    kubeconfig_free(&cfg);
    curl_global_cleanup();
    sp_info("stopped", "exit %d", rc);
    return rc;
}
