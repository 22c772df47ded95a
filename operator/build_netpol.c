/* build_netpol.c - NetworkPolicies around the pipeline's pods (spec.networkPolicies).
 *
 * Each worker's pods accept traffic only from the hop before them, and their metrics port only
 * from the monitoring namespace; they may call only the hop after them, and DNS:
 *
 *   ingress controller's namespace -> api:8080 -> bridge:8081 -> writers:50051 -> Kafka:9092
 *   Kafka:9092 <- consumer -> Valkey:6379 <- Grafana (monitoring namespace), Valkey replicas
 *   monitoring namespace -> api:8080, bridge:8081, writers:9091, consumer:9092 (/metrics)
 *
 * The api and the bridge serve /metrics on their sale port: the monitoring namespace reaches
 * that port too. The kubelet's probes come from the node, which NetworkPolicies always allow.
 * DNS may go anywhere on port 53 (kube-dns, or NodeLocal DNSCache on the node's link-local
 * address, which no selector matches). With spec.catalog.artifact the api also pulls the
 * catalog from its registry: that address and port (an IPv4 address as a /32; a host name
 * cannot be named by a NetworkPolicy, so then the port to any address). An external Kafka
 * (spec.kafka.bootstrapServers) is reached on its bootstrap ports at any address (its brokers
 * advertise addresses of their own, unknown here); an external Valkey (spec.valkey.url) at its
 * address and port (any address for a host name), and has no policy of ours. Valkey's policy is ingress only (its VMs' cloud-init
 * fetches packages) and lives in the Valkey VMs' namespace (spec.valkey.namespace): there it carries the pipeline's labels instead of an owner reference (build_object_in),
 * like the VMs. */
#include "build.h"
#include "infra.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"
#include "valkey.h"

#define DNS_PORT 53

/* The pods of one kind of worker of this pipeline (every writer group for "writer"). */
static void pods_of(struct jb *b, cJSON *dst, const struct pipeline *p, const char *app)
{
    cJSON *m = jb_obj(b, dst, "matchLabels");
    jb_str(b, m, "app.kubernetes.io/name", app);
    jb_str(b, m, "app.kubernetes.io/instance", p->name);
}

static void namespace_named(struct jb *b, cJSON *peer, const char *ns)
{
    jb_str(b, jb_obj(b, jb_obj(b, peer, "namespaceSelector"), "matchLabels"),
           "kubernetes.io/metadata.name", ns);
}

static void port(struct jb *b, cJSON *ports, int number, const char *protocol)
{
    cJSON *pt = jb_obj(b, ports, NULL);
    jb_int(b, pt, "port", number);
    jb_str(b, pt, "protocol", protocol);
}

/* A rule (ingress or egress) for one port; returns its peer list ("from" or "to"). */
static cJSON *rule(struct jb *b, cJSON *rules, const char *peers, int number)
{
    cJSON *r = jb_obj(b, rules, NULL);
    port(b, jb_arr(b, r, "ports"), number, "TCP");
    return jb_arr(b, r, peers);
}

/* A peer: the pods of `app` in the policy's own namespace. */
static void pods_peer(struct jb *b, cJSON *peers, const struct pipeline *p, const char *app)
{
    pods_of(b, jb_obj(b, jb_obj(b, peers, NULL), "podSelector"), p, app);
}

/* A peer: every pod of namespace `ns`. */
static void namespace_peer(struct jb *b, cJSON *peers, const char *ns)
{
    namespace_named(b, jb_obj(b, peers, NULL), ns);
}

static void egress_dns(struct jb *b, cJSON *egress)
{
    cJSON *ports = jb_arr(b, jb_obj(b, egress, NULL), "ports");
    port(b, ports, DNS_PORT, "UDP");
    port(b, ports, DNS_PORT, "TCP");
}

/* Egress on `number` to any address. */
static void egress_port(struct jb *b, cJSON *egress, int number)
{
    port(b, jb_arr(b, jb_obj(b, egress, NULL), "ports"), number, "TCP");
}

/* The port after the last ':' in the first `len` bytes of `s` ("host:port"); `def` when there is
 * none or it is not 1-65535. */
static int port_in(const char *s, size_t len, int def)
{
    size_t i = len;
    while (i > 0 && s[i - 1] != ':')
        i--;
    int number = i > 0 ? atoi(s + i) : def;
    return number > 0 && number <= 65535 ? number : def;
}

/* Egress on `number` to `host` outside the cluster: that address as a /32, or, for a host name
 * (a NetworkPolicy cannot name one), the port to any address. */
static void egress_addr(struct jb *b, cJSON *egress, const char *host, int number)
{
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1) {
        egress_port(b, egress, number);
        return;
    }
    char cidr[300];
    snprintf(cidr, sizeof cidr, "%s/32", host);
    jb_str(b, jb_obj(b, jb_obj(b, rule(b, egress, "to", number), NULL), "ipBlock"), "cidr", cidr);
}

/* A service outside the cluster at "host[:port]" (`def_port` when none). */
static void egress_host(struct jb *b, cJSON *egress, const char *host_port, int def_port)
{
    char host[256];
    snprintf(host, sizeof host, "%s", host_port);
    int number = port_in(host, strlen(host), def_port);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    egress_addr(b, egress, host, number);
}

/* The Strimzi cluster's pods; an external Kafka's bootstrap ports (each once) at any address. */
static void egress_kafka(struct jb *b, cJSON *egress, const struct pipeline *p)
{
    if (pipeline_kafka_external(p)) {
        int ports[16], n = 0;
        for (const char *s = p->kafka.bootstrap_servers; *s; s += *s == ',') {
            size_t len = strcspn(s, ","); /* one "host[:port]" */
            int number = port_in(s, len, INFRA_KAFKA_PORT), seen = 0;
            s += len;
            for (int i = 0; i < n; i++)
                seen |= ports[i] == number;
            if (!seen && n < (int)(sizeof ports / sizeof ports[0])) {
                ports[n++] = number;
                egress_port(b, egress, number);
            }
        }
        return;
    }
    cJSON *m = jb_obj(
        b, jb_obj(b, jb_obj(b, rule(b, egress, "to", INFRA_KAFKA_PORT), NULL), "podSelector"),
        "matchLabels");
    jb_str(b, m, "strimzi.io/cluster", infra_kafka_cluster(p));
    jb_str(b, m, "strimzi.io/kind", "Kafka");
}

/* The api's way to the catalog's registry (spec.catalog.artifact, "host[:port]/repo:tag"). */
static void egress_registry(struct jb *b, cJSON *egress, const char *artifact)
{
    struct sp_oci_ref ref;
    char err[256];
    if (sp_oci_ref_parse(artifact, &ref, err, sizeof err) < 0)
        return; /* the api refuses it at start; nothing to allow */
    egress_host(b, egress, ref.registry, 443);
}

/* The skeleton, in namespace `ns`: name <name>-<suffix>, the pods of `app`, the policy types. */
static cJSON *policy(struct jb *b, const struct pipeline *p, const char *ns, const char *suffix,
                     const char *app, bool egress, cJSON **spec)
{
    char name[128];
    pipeline_object_name(p, suffix, name, sizeof name);
    cJSON *o = build_object_in(b, p, KIND_NETPOL, ns, name, NULL, NULL);
    *spec = jb_obj(b, o, "spec");
    pods_of(b, jb_obj(b, *spec, "podSelector"), p, app);
    cJSON *types = jb_arr(b, *spec, "policyTypes");
    jb_add(b, types, NULL, cJSON_CreateString("Ingress"));
    if (egress)
        jb_add(b, types, NULL, cJSON_CreateString("Egress"));
    return o;
}

cJSON *build_netpol(const struct pipeline *p, enum netpol_target t)
{
    struct jb b = {0};
    cJSON *spec, *o, *in, *out;
    const char *mon = p->netpol.monitoring_ns;
    const char *valkey_ns = p->valkey.ns;
    int api = component_port("api", SP_FROM_PORT_HTTP),
        bridge = component_port("bridge", SP_FROM_PORT_HTTP),
        grpc = component_port("writer", SP_FROM_PORT_GRPC),
        writer_metrics = component_port("writer", SP_FROM_PORT_METRICS),
        consumer_metrics = component_port("consumer", SP_FROM_PORT_METRICS);
    switch (t) {
    case NETPOL_API:
        o = policy(&b, p, p->ns, "api", "api", true, &spec);
        in = jb_arr(&b, spec, "ingress");
        namespace_peer(&b, rule(&b, in, "from", api), p->netpol.ingress_ns);
        namespace_peer(&b, rule(&b, in, "from", api), mon);
        out = jb_arr(&b, spec, "egress");
        egress_dns(&b, out);
        pods_peer(&b, rule(&b, out, "to", bridge), p, "bridge");
        if (*p->catalog)
            egress_registry(&b, out, p->catalog);
        break;
    case NETPOL_BRIDGE:
        o = policy(&b, p, p->ns, "bridge", "bridge", true, &spec);
        in = jb_arr(&b, spec, "ingress");
        pods_peer(&b, rule(&b, in, "from", bridge), p, "api");
        namespace_peer(&b, rule(&b, in, "from", bridge), mon);
        out = jb_arr(&b, spec, "egress");
        egress_dns(&b, out);
        pods_peer(&b, rule(&b, out, "to", grpc), p, "writer");
        break;
    case NETPOL_WRITERS:
        o = policy(&b, p, p->ns, "writers", "writer", true, &spec);
        in = jb_arr(&b, spec, "ingress");
        pods_peer(&b, rule(&b, in, "from", grpc), p, "bridge");
        namespace_peer(&b, rule(&b, in, "from", writer_metrics), mon);
        out = jb_arr(&b, spec, "egress");
        egress_dns(&b, out);
        egress_kafka(&b, out, p);
        break;
    case NETPOL_CONSUMER: {
        o = policy(&b, p, p->ns, "consumer", "consumer", true, &spec);
        namespace_peer(&b, rule(&b, jb_arr(&b, spec, "ingress"), "from", consumer_metrics), mon);
        out = jb_arr(&b, spec, "egress");
        egress_dns(&b, out);
        egress_kafka(&b, out, p);
        if (pipeline_valkey_external(p)) {
            struct sp_valkey_url u;
            char err[256];
            if (sp_valkey_url_parse(p->valkey.url, &u, err, sizeof err) == 0)
                egress_addr(&b, out, u.host, u.port); /* else the CRD refused it already */
            break;
        }
        cJSON *valkey = jb_obj(&b, rule(&b, out, "to", INFRA_VALKEY_PORT), NULL);
        namespace_named(&b, valkey, valkey_ns);
        pods_of(&b, jb_obj(&b, valkey, "podSelector"), p, "valkey");
        break;
    }
    default: { /* NETPOL_VALKEY: in the Valkey namespace */
        o = policy(&b, p, valkey_ns, "valkey", "valkey", false, &spec);
        cJSON *from = rule(&b, jb_arr(&b, spec, "ingress"), "from", INFRA_VALKEY_PORT);
        cJSON *consumer = jb_obj(&b, from, NULL); /* from the pipeline's namespace */
        namespace_named(&b, consumer, p->ns);
        pods_of(&b, jb_obj(&b, consumer, "podSelector"), p, "consumer");
        cJSON *grafana = jb_obj(&b, from, NULL);
        namespace_named(&b, grafana, mon);
        jb_str(&b, jb_obj(&b, jb_obj(&b, grafana, "podSelector"), "matchLabels"),
               "app.kubernetes.io/name", "grafana");
        pods_peer(&b, from, p, "valkey"); /* replicas <-> primary (replication) */
        break;
    }
    }
    return jb_done(&b, o);
}
