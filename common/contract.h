/* contract.h - the worker contract: every option of every worker (flag, environment variable,
 * default, range, help) and where the operator takes its value from in the cluster, defined
 * once, like sales_keys.h is for the Valkey keys.
 *
 * The workers parse their options with these tables (config.h); the operator renders each
 * worker container's environment and ports from them (operator/env.c, build_deployment.c), and
 * operator/contract_test.c renders the sample pipeline and checks every container against its
 * worker's table. Entries: X(field, "flag", "ENV", TYPE, default, range, FROM, "help"), as
 * config.h describes. Adding an option is one entry here; when its FROM is a new source, the
 * operator's env.c gets a case for it (the compiler points at the missing one). */
#ifndef SP_CONTRACT_H
#define SP_CONTRACT_H

#include "config.h"

#define SP_STR_(x) #x
#define SP_STR(x) SP_STR_(x)

/* Ports: the workers' defaults, the operator's container ports and Services. */
#define SP_PORT_API 8080
#define SP_PORT_BRIDGE 8081
#define SP_PORT_WRITER_GRPC 50051
#define SP_PORT_WRITER_HTTP 9091
#define SP_PORT_CONSUMER_HTTP 9092

/* Deadlines nest: the api's deadline for a sale bounds the bridge's gRPC deadline, which bounds
 * the writer's Kafka delivery timeout, each one inside its caller's by a margin, so that a
 * caller always hears its callee's answer (the bridge's 504, the writer's UNAVAILABLE) before
 * its own time is up, and no sale is counted after its client was told it timed out. The
 * margin is a fifth of the caller's deadline, at least 1.5 s: librdkafka looks for timed-out
 * records once a second, so the writer's answer can come up to a second after its timeout.
 * One rule for the operator (spec.api.downstreamTimeoutMs), the workers' defaults and
 * scripts/local.sh (which asks `salesctl deadlines`). */
#define SP_DEADLINE_MARGIN_MIN_MS 1500
#define SP_DEADLINE_INNER_MS(outer)                                                                \
    ((outer) - ((outer) / 5 > SP_DEADLINE_MARGIN_MIN_MS ? (outer) / 5 : SP_DEADLINE_MARGIN_MIN_MS))
#define SP_DEADLINE_BRIDGE_MS(api) SP_DEADLINE_INNER_MS(api)
#define SP_DEADLINE_WRITER_MS(api) SP_DEADLINE_INNER_MS(SP_DEADLINE_INNER_MS(api))
/* The api deadlines the rule accepts (the CRD's range of spec.api.downstreamTimeoutMs, checked
 * by operator/pipeline_test.c): the smallest leaves the writer one second. */
#define SP_DEADLINE_MIN_MS 4000
#define SP_DEADLINE_MAX_MS 600000
#define SP_DEADLINE_DEFAULT_MS 5000

/* Options of every worker. */
#define SP_BIND_OPTION(X)                                                                          \
    X(bind, "bind", "BIND_ADDR", STRING, "0.0.0.0", SP_ANY, NONE, "IPv4 address to listen on")

/* The REST intake's (common/rest.h), in the api and the bridge. */
#define SP_INTAKE_OPTIONS(X)                                                                       \
    X(max_in_flight, "max-in-flight", "MAX_IN_FLIGHT", INT, 2048, SP_RANGE(1, 1000000), NONE,      \
      "sales forwarded and not yet answered; past it, 503 with Retry-After at once")               \
    X(threads, "threads", "HTTP_THREADS", INT, 2, SP_RANGE(1, 64), NONE, "HTTP server threads")    \
    X(shutdown_delay_ms, "shutdown-delay-ms", "SHUTDOWN_DELAY_MS", INT, 0, SP_RANGE(0, 120000),    \
      SHUTDOWN_DELAY,                                                                              \
      "on SIGTERM, not ready at once but still taking sales this long, each "                      \
      "connection closed after its answer, before intake stops (Kubernetes: the time for the "     \
      "Service's endpoints to drop the pod; a second signal cuts it short)")                       \
    X(client_connections, "client-connections", "CLIENT_CONNECTIONS", INT, 4096,                   \
      SP_RANGE(1, 1000000), NONE,                                                                  \
      "open client connections (idle keep-alive ones included); past it, a new "                   \
      "connection's request gets 503 + Retry-After + Connection: close. Bounded by the "           \
      "descriptor limit (RLIMIT_NOFILE)")                                                          \
    X(client_connections_per_ip, "client-connections-per-ip", "CLIENT_CONNECTIONS_PER_IP", INT,    \
      1024, SP_RANGE(0, 1000000), NONE,                                                            \
      "open connections from one client address; past it 503 as above, and from twice it "         \
      "on a new connection is closed at accept (0: no limit; behind an ingress, every "            \
      "connection comes from the ingress controller's pods)")                                      \
    X(header_timeout_ms, "header-timeout-ms", "HEADER_TIMEOUT_MS", INT, 10000,                     \
      SP_RANGE(0, 3600000), NONE,                                                                  \
      "a request's line and headers must be in within this time of the connection's start "        \
      "(kept-alive: of the previous answer plus --idle-timeout-seconds); else the "                \
      "connection is closed without an answer (0: no limit)")                                      \
    X(body_timeout_ms, "body-timeout-ms", "BODY_TIMEOUT_MS", INT, 10000, SP_RANGE(0, 3600000),     \
      NONE,                                                                                        \
      "a request's body must be in within this time of its headers; else the "                     \
      "connection is closed without an answer (0: no limit). A sale already forwarded is "         \
      "never cut off")                                                                             \
    X(idle_timeout_s, "idle-timeout-seconds", "IDLE_TIMEOUT_SECONDS", INT, 60, SP_RANGE(0, 86400), \
      NONE,                                                                                        \
      "a connection that sends nothing for this long is closed, kept-alive ones between "          \
      "requests included (0: never)")

/* Where a program reads the product catalog from: an OCI artifact in a registry (catalog.h,
 * docs/catalog.md). Empty values: no catalog, anonymous pulls, the system's CAs. */
#define SP_CATALOG_OPTIONS(X)                                                                      \
    X(catalog_artifact, "catalog-artifact", "CATALOG_ARTIFACT", STRING, NULL, SP_ANY,              \
      CATALOG_ARTIFACT,                                                                            \
      "the product catalog's OCI artifact, host[:port]/repository:tag or "                         \
      "...@sha256:<hex> (docs/catalog.md); empty: no catalog")                                     \
    X(registry_auth_file, "registry-auth-file", "REGISTRY_AUTH_FILE", STRING, NULL, SP_ANY,        \
      REGISTRY_AUTH_FILE,                                                                          \
      "docker config.json with the registry's credentials (the form of a "                         \
      "kubernetes.io/dockerconfigjson pull Secret); empty: anonymous")                             \
    X(registry_ca, "registry-ca", "REGISTRY_CA", STRING, NULL, SP_ANY, REGISTRY_CA,                \
      "PEM CA certificate that the registry's TLS certificate must chain to; empty: the "          \
      "system's CAs")

#define SP_API_OPTIONS(X)                                                                          \
    X(port, "port", "PORT", INT, SP_PORT_API, SP_RANGE(1, 65535), PORT_HTTP,                       \
      "TCP port for POST /ventas, /healthz, /readyz and /metrics")                                 \
    SP_BIND_OPTION(X)                                                                              \
    X(bridge_url, "bridge-url", "BRIDGE_URL", STRING,                                              \
      "http://127.0.0.1:" SP_STR(SP_PORT_BRIDGE) "/ventas", SP_ANY, BRIDGE_URL,                    \
      "the bridge's sale URL; its /readyz on the same host decides our readiness")                 \
    X(timeout_ms, "timeout-ms", "DOWNSTREAM_TIMEOUT_MS", INT, SP_DEADLINE_DEFAULT_MS,              \
      SP_RANGE(1, SP_DEADLINE_MAX_MS), API_DEADLINE,                                               \
      "longest wait for the bridge per sale, queueing included; then 504 (the bridge's and "       \
      "the writers' deadlines nest inside it: `salesctl deadlines`)")                              \
    X(connections, "max-connections", "BRIDGE_CONNECTIONS", INT, 8, SP_RANGE(1, 10000), NONE,      \
      "keep-alive HTTP/1.1 connections to the bridge (= requests at once; sales that wait "        \
      "for a free one go together in the next batch)")                                             \
    X(eager_requests, "eager-requests", "BRIDGE_EAGER_REQUESTS", INT, 2, SP_RANGE(1, 10000), NONE, \
      "requests to the bridge at once that leave with whatever sales are waiting; beyond them "    \
      "(up to max-connections) a request leaves only with a full batch, so that at moderate "      \
      "load the sales gather into fewer, larger batches")                                          \
    X(batch_wait_ms, "batch-wait-ms", "BRIDGE_BATCH_WAIT_MS", INT, 10, SP_RANGE(0, 60000), NONE,   \
      "beyond the eager requests, a sale that has waited this long leaves anyway, in a batch "     \
      "not full, on a free connection (a slow bridge must not hold it a whole round trip); 0: "    \
      "at once, every free connection used")                                                       \
    X(batch_max, "batch-max", "BRIDGE_BATCH_MAX", INT, 60, SP_RANGE(1, 60), NONE,                  \
      "sales per request to the bridge at most (POST /ventas/lote, protobuf; each sale is "        \
      "answered on its own); 1: one sale per POST /ventas, JSON")                                  \
    SP_INTAKE_OPTIONS(X)                                                                           \
    SP_CATALOG_OPTIONS(X)                                                                          \
    X(catalog_refresh_s, "catalog-refresh-seconds", "CATALOG_REFRESH_SECONDS", INT, 300,           \
      SP_RANGE(0, 86400), NONE,                                                                    \
      "pull the catalog again this often (and on SIGHUP); 0: only "                                \
      "on SIGHUP")                                                                                 \
    SP_OPTION_LOG_LEVEL(X)

#define SP_BRIDGE_OPTIONS(X)                                                                       \
    X(port, "port", "PORT", INT, SP_PORT_BRIDGE, SP_RANGE(1, 65535), PORT_HTTP,                    \
      "TCP port for POST /ventas, /healthz, /readyz and /metrics")                                 \
    SP_BIND_OPTION(X)                                                                              \
    X(targets, "writer-target", "WRITER_TARGET", STRING,                                           \
      "ipv4:127.0.0.1:" SP_STR(SP_PORT_WRITER_GRPC), SP_ANY, WRITER_TARGET,                        \
      "gRPC target of the writers, balanced round_robin (e.g. "                                    \
      "ipv4:127.0.0.1:50051,127.0.0.1:50052 or dns:///writer-headless.ns.svc:50051); "             \
      "several writer groups separated by ';' or '|' get one channel each, used in turn")          \
    X(timeout_ms, "timeout-ms", "DOWNSTREAM_TIMEOUT_MS", INT,                                      \
      SP_DEADLINE_BRIDGE_MS(SP_DEADLINE_DEFAULT_MS), SP_RANGE(1, SP_DEADLINE_MAX_MS),              \
      BRIDGE_DEADLINE, "deadline of every gRPC call; then 504 (inside the api's deadline)")        \
    SP_INTAKE_OPTIONS(X)                                                                           \
    SP_OPTION_LOG_LEVEL(X)

/* How the writer and the consumer reach Kafka: librdkafka's security.protocol, sasl.mechanisms,
 * sasl.username, sasl.password and ssl.ca.location (kafka_client.h). Empty: librdkafka's
 * default (plaintext, no SASL, the system's CAs). The operator renders them from
 * spec.kafka.security for an external Kafka (spec.kafka.bootstrapServers). */
#define SP_KAFKA_SECURITY_OPTIONS(X)                                                               \
    X(kafka_protocol, "kafka-security-protocol", "KAFKA_SECURITY_PROTOCOL", STRING, NULL, SP_ANY,  \
      KAFKA_PROTOCOL, "plaintext, ssl, sasl_plaintext or sasl_ssl (empty: plaintext)")             \
    X(kafka_sasl_mechanism, "kafka-sasl-mechanism", "KAFKA_SASL_MECHANISM", STRING, NULL, SP_ANY,  \
      KAFKA_SASL_MECHANISM, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl_* protocols)")            \
    X(kafka_sasl_username, "kafka-sasl-username", "KAFKA_SASL_USERNAME", STRING, NULL, SP_ANY,     \
      KAFKA_SASL_USERNAME, "SASL user name")                                                       \
    X(kafka_sasl_password, "kafka-sasl-password", "KAFKA_SASL_PASSWORD", STRING, NULL, SP_ANY,     \
      KAFKA_SASL_PASSWORD, "SASL password (prefer the environment to the flag)")                   \
    X(kafka_ca_file, "kafka-ca-file", "KAFKA_CA_FILE", STRING, NULL, SP_ANY, KAFKA_CA,             \
      "PEM CA certificate(s) the brokers' TLS certificates must chain to (ssl, sasl_ssl; "         \
      "empty: the system's CAs)")

#define SP_WRITER_OPTIONS(X)                                                                       \
    X(grpc_port, "grpc-port", "GRPC_PORT", INT, SP_PORT_WRITER_GRPC, SP_RANGE(0, 65535),           \
      PORT_GRPC, "gRPC port (0: any free port)")                                                   \
    X(http_port, "http-port", "HTTP_PORT", INT, SP_PORT_WRITER_HTTP, SP_RANGE(0, 65535),           \
      PORT_METRICS, "admin HTTP port for /healthz, /readyz and /metrics")                          \
    SP_BIND_OPTION(X)                                                                              \
    X(brokers, "kafka-brokers", "KAFKA_BROKERS", STRING, "127.0.0.1:9092", SP_ANY, KAFKA_BROKERS,  \
      "Kafka bootstrap servers, comma-separated host:port")                                        \
    X(topic, "topic", "KAFKA_TOPIC", STRING, "sales", SP_ANY, KAFKA_TOPIC,                         \
      "Kafka topic for the sales")                                                                 \
    SP_KAFKA_SECURITY_OPTIONS(X)                                                                   \
    X(max_in_flight, "max-in-flight", "MAX_IN_FLIGHT", INT, 4096, SP_RANGE(1, 1000000), NONE,      \
      "sales waiting for Kafka at most; beyond, calls get RESOURCE_EXHAUSTED")                     \
    X(delivery_timeout_ms, "delivery-timeout-ms", "DELIVERY_TIMEOUT_MS", INT,                      \
      SP_DEADLINE_WRITER_MS(SP_DEADLINE_DEFAULT_MS), SP_RANGE(1, 3600000), WRITER_DEADLINE,        \
      "a sale Kafka has not confirmed by then fails with UNAVAILABLE (message.timeout.ms; "        \
      "inside the bridge's deadline)")                                                             \
    X(linger_ms, "linger-ms", "KAFKA_LINGER_MS", INT, 1, SP_RANGE(0, 900000), NONE,                \
      "how long the producer waits to fill a batch (the sales already come in batches "            \
      "from the bridge: 1 ms doubled the rate of 5 ms at less CPU, docs/bench-2026-11-29.md)")     \
    X(max_connection_age_ms, "max-connection-age-ms", "MAX_CONNECTION_AGE_MS", INT, 10000,         \
      SP_RANGE(0, 86400000), NONE,                                                                 \
      "a client connection older than this gets a GOAWAY (its calls in flight are still "          \
      "answered), so the bridge resolves the writers' Service again and spreads calls over "       \
      "writer pods added since (0: never)")                                                        \
    X(acks, "kafka-acks", "KAFKA_ACKS", INT, -1, SP_RANGE(-1, 1), NONE,                            \
      "acks: -1 (all in-sync replicas, what exactly-once needs), 1 (the leader) or 0; "            \
      "a benchmark knob (make report): 1 and 0 need --kafka-idempotence=false")                    \
    X(idempotence, "kafka-idempotence", "KAFKA_IDEMPOTENCE", BOOL, 1, SP_ANY, NONE,                \
      "enable.idempotence: the producer's retries never duplicate a record; off only for "         \
      "benchmarks (make report)")                                                                  \
    X(sticky_ms, "sticky-ms", "KAFKA_STICKY_MS", INT, 10, SP_RANGE(0, 60000), NONE,                \
      "every sale of this writer goes to one partition for this long, then to another, so "        \
      "batches fill up (the key producto_id stays on the record); 0: partition by key")            \
    SP_OPTION_LOG_LEVEL(X)                                                                         \
    X(instance, "instance", "INSTANCE", STRING, NULL, SP_ANY, NONE,                                \
      "name of this writer in logs and the Kafka client id (empty: the host name, which "          \
      "in Kubernetes is the pod's name)")

#define SP_CONSUMER_OPTIONS(X)                                                                     \
    X(brokers, "kafka-brokers", "KAFKA_BROKERS", STRING, "127.0.0.1:9092", SP_ANY, KAFKA_BROKERS,  \
      "Kafka bootstrap servers")                                                                   \
    X(topic, "topic", "KAFKA_TOPIC", STRING, "sales", SP_ANY, KAFKA_TOPIC, "topic of the sales")   \
    SP_KAFKA_SECURITY_OPTIONS(X)                                                                   \
    X(group, "group", "KAFKA_GROUP", STRING, "sales-consumer", SP_ANY, KAFKA_GROUP,                \
      "consumer group (every member applies to the same Valkey)")                                  \
    X(strategy, "assignment-strategy", "KAFKA_ASSIGNMENT_STRATEGY", STRING, "range,roundrobin",    \
      SP_ANY, NONE, "partition.assignment.strategy (e.g. cooperative-sticky)")                     \
    X(session_timeout_ms, "session-timeout-ms", "KAFKA_SESSION_TIMEOUT_MS", INT, 10000,            \
      SP_RANGE(1, 3600000), NONE,                                                                  \
      "how long the group waits for a silent member before reassigning")                           \
    X(batch_size, "batch-size", "BATCH_SIZE", INT, 500, SP_RANGE(1, 100000), NONE,                 \
      "records per Valkey call")                                                                   \
    X(batch_wait_ms, "batch-wait-ms", "BATCH_WAIT_MS", INT, 20, SP_RANGE(0, 10000), NONE,          \
      "how long a started batch waits to fill up")                                                 \
    X(fetch_wait_ms, "fetch-wait-ms", "KAFKA_FETCH_WAIT_MS", INT, 50, SP_RANGE(0, 10000), NONE,    \
      "the broker holds a fetch this long unless 64 KiB of records are ready "                     \
      "(fewer, larger fetches: each costs the broker a request)")                                  \
    X(prefetch_kb, "prefetch-kb", "KAFKA_PREFETCH_KB", INT, 1024, SP_RANGE(64, 1048576), NONE,     \
      "KiB of records fetched ahead per partition; bounds memory while a backlog drains")          \
    X(valkey_url, "valkey-url", "VALKEY_URL", STRING, "redis://127.0.0.1:6379", SP_ANY,            \
      VALKEY_URL, "Valkey primary, redis://[[user]:password@]host[:port][/db]")                    \
    X(valkey_password, "valkey-password", "VALKEY_PASSWORD", STRING, NULL, SP_ANY,                 \
      VALKEY_PASSWORD, "password when the URL has none")                                           \
    X(valkey_timeout_ms, "valkey-timeout-ms", "VALKEY_TIMEOUT_MS", INT, 5000,                      \
      SP_RANGE(1, 3600000), NONE, "connect and command timeout (WAIT's own timeout is added)")     \
    X(wait_replicas, "wait-replicas", "VALKEY_WAIT_REPLICAS", INT, 0, SP_RANGE(0, 1000),           \
      WAIT_REPLICAS, "after each batch, WAIT for this many replicas (0: off)")                     \
    X(wait_timeout_ms, "wait-timeout-ms", "VALKEY_WAIT_TIMEOUT_MS", INT, 1000,                     \
      SP_RANGE(0, 3600000), NONE, "WAIT timeout; a batch moves on after it even if short")         \
    X(series_ttl_s, "series-ttl-seconds", "SERIES_TTL_SECONDS", INT, 86400,                        \
      SP_RANGE(0, 315360000), SERIES_TTL,                                                          \
      "expiry of each price series, refreshed on write (0: never); totals never expire")           \
    X(series_max_len, "series-max-len", "SERIES_MAX_LEN", INT, 1000, SP_RANGE(1, 100000000), NONE, \
      "length bound of each price series: its latest points (approximate: XADD MAXLEN ~)")         \
    X(series_interval_ms, "series-interval-ms", "SERIES_INTERVAL_MS", INT, 0,                      \
      SP_RANGE(0, 86400000), NONE,                                                                 \
      "0: a price point for every sale; else at most one per product and interval, by sale "       \
      "time (cheaper at very high rates)")                                                         \
    X(stop_grace_s, "stop-grace-seconds", "STOP_GRACE_SECONDS", DOUBLE, 10, SP_RANGE(0, 3600),     \
      NONE, "on SIGTERM, how long to keep retrying the batch in hand while Valkey is down")        \
    X(http_port, "http-port", "HTTP_PORT", INT, SP_PORT_CONSUMER_HTTP, SP_RANGE(0, 65535),         \
      PORT_METRICS, "port of /healthz /readyz /metrics")                                           \
    SP_BIND_OPTION(X)                                                                              \
    SP_OPTION_LOG_LEVEL(X)

/* salesctl's catalog: from an artifact, or from a file. */
#define SP_CATALOG_READER_OPTIONS(X)                                                               \
    SP_CATALOG_OPTIONS(X)                                                                          \
    X(catalog_file, "catalog", "SP_CATALOG", STRING, NULL, SP_ANY, NONE,                           \
      "the catalog as a file (locust/catalog.json) instead of an artifact")

/* salesctl dashboard: a tool for people, never run by the operator. */
#define SP_DASHBOARD_OPTIONS(X)                                                                    \
    X(json, "json", NULL, BOOL, 0, SP_ANY, NONE, "print the panels as one JSON object")            \
    X(carnet, "carnet", "CARNET", STRING, "202300539", SP_ANY, NONE,                               \
      "student id; its last digit picks the assigned category")                                    \
    X(valkey_url, "valkey-url", "VALKEY_URL", STRING, "redis://127.0.0.1:6379", SP_ANY, NONE,      \
      "Valkey to read, redis://[[user]:password@]host[:port][/db]")                                \
    X(valkey_password, "valkey-password", "VALKEY_PASSWORD", STRING, NULL, SP_ANY, NONE,           \
      "password when the URL has none")                                                            \
    X(valkey_timeout_ms, "valkey-timeout-ms", "VALKEY_TIMEOUT_MS", INT, 5000,                      \
      SP_RANGE(1, 3600000), NONE, "connect and read timeout")                                      \
    X(points, "points", NULL, INT, 20, SP_RANGE(0, 100000), NONE,                                  \
      "table output: how many of the latest price points to print")                                \
    SP_CATALOG_READER_OPTIONS(X)

/* The structs holding each worker's values, and their tables (contract.c). */
struct sp_api_options {
    SP_API_OPTIONS(SP_OPTION_FIELD)
};
struct sp_bridge_options {
    SP_BRIDGE_OPTIONS(SP_OPTION_FIELD)
};
struct sp_writer_options {
    SP_WRITER_OPTIONS(SP_OPTION_FIELD)
};
struct sp_consumer_options {
    SP_CONSUMER_OPTIONS(SP_OPTION_FIELD)
};
struct sp_dashboard_options {
    SP_DASHBOARD_OPTIONS(SP_OPTION_FIELD)
};

extern const struct sp_option sp_api_option_table[];
extern const struct sp_option sp_bridge_option_table[];
extern const struct sp_option sp_writer_option_table[];
extern const struct sp_option sp_consumer_option_table[];
extern const struct sp_option sp_dashboard_option_table[];

/* The table of a worker the operator runs, by its program (and image) name: "api", "bridge",
 * "writer", "consumer"; NULL for any other. */
const struct sp_option *sp_contract_options(const char *program);

/* The container port of a worker: the default of its option with source `port` (one of the
 * SP_FROM_PORT_*), or -1 when it has none. */
int sp_contract_port(const struct sp_option *opts, enum sp_from port);

#endif
