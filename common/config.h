/* config.h - one table of options per program: default, then environment, then flags.
 *
 * `--help` lists every option with its environment variable and default. Values are checked
 * when parsed; a bad one is an error naming the flag, never a silent default.
 *
 * A program's options are an X-macro list, one entry per option:
 *
 *     X(field, "flag", "ENV", TYPE, default, range, FROM, "help")
 *
 * TYPE is STRING, INT, DOUBLE, BOOL or LOG_LEVEL; the default is a string literal (or NULL
 * for empty) for STRING and LOG_LEVEL, a number for the others; range is SP_RANGE(lo, hi) or
 * SP_ANY; FROM is an enum sp_from without its prefix: where the operator takes the value from
 * when it renders the worker's environment (NONE for the worker's own default). From one list,
 * SP_OPTION_FIELD declares the struct that holds the values and SP_OPTION_ENTRY the table, so
 * adding an option is adding one entry. The workers' lists are the contract in contract.h. */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stddef.h>

/* SP_OPT_LOG_LEVEL is a string that must name a level of log.h (debug, info, warn, error). */
enum sp_opt_type { SP_OPT_STRING, SP_OPT_INT, SP_OPT_DOUBLE, SP_OPT_BOOL, SP_OPT_LOG_LEVEL };

/* Where the operator takes an option's value from in the cluster (operator/env.c has one case
 * per value). An option with another source than NONE is in every container of that worker that
 * the operator renders, unless the spec does not use it (env_wanted: no SASL, no TLS CA, a
 * Valkey without a password); operator/env_test.c checks it on the sample pipeline and on one
 * with an external Kafka (SASL_SSL) and Valkey. */
enum sp_from {
    SP_FROM_NONE,             /* never set by the operator: the default is right in the cluster */
    SP_FROM_PORT_HTTP,        /* the default is the container port "http" (REST + admin) */
    SP_FROM_PORT_GRPC,        /* ... the container port "grpc" */
    SP_FROM_PORT_METRICS,     /* ... the container port "metrics" (admin HTTP only) */
    SP_FROM_LOG_LEVEL,        /* spec.logLevel */
    SP_FROM_API_DEADLINE,     /* spec.api.downstreamTimeoutMs */
    SP_FROM_BRIDGE_DEADLINE,  /* derived from it: SP_DEADLINE_BRIDGE_MS (contract.h) */
    SP_FROM_WRITER_DEADLINE,  /* derived from it: SP_DEADLINE_WRITER_MS */
    SP_FROM_BRIDGE_URL,       /* the bridge Service's sale URL */
    SP_FROM_WRITER_TARGET,    /* one dns:/// target per writer group's headless Service */
    SP_FROM_KAFKA_BROKERS,    /* the Strimzi cluster's bootstrap Service */
    SP_FROM_KAFKA_TOPIC,      /* spec.kafka.topic.name */
    SP_FROM_KAFKA_GROUP,      /* <pipeline>-consumer */
    SP_FROM_VALKEY_URL,       /* the Valkey primary's Service */
    SP_FROM_VALKEY_PASSWORD,  /* the password Secret, through a secretKeyRef */
    SP_FROM_SERIES_TTL,       /* spec.valkey.ttlSeconds */
    SP_FROM_WAIT_REPLICAS,    /* spec.valkey.waitForReplica: 1 or 0 */
    SP_FROM_CATALOG_ARTIFACT, /* spec.catalog.artifact */
    SP_FROM_REGISTRY_AUTH_FILE, /* the imagePullSecret's .dockerconfigjson, mounted (with a catalog) */
    SP_FROM_REGISTRY_CA,        /* spec.catalog.caConfigMap's ca.crt, mounted (with a catalog) */
    SP_FROM_KAFKA_PROTOCOL,     /* spec.kafka.security.protocol */
    SP_FROM_KAFKA_SASL_MECHANISM, /* spec.kafka.security.saslMechanism (SASL protocols only) */
    SP_FROM_KAFKA_SASL_USERNAME,  /* credentialsSecret's username, through a secretKeyRef */
    SP_FROM_KAFKA_SASL_PASSWORD,  /* credentialsSecret's password, through a secretKeyRef */
    SP_FROM_KAFKA_CA,             /* spec.kafka.security.caConfigMap's ca.crt, mounted (TLS only) */
    SP_FROM_SHUTDOWN_DELAY,       /* the lame-duck delay of the api and the bridge (build.h) */
};

struct sp_option {
    const char *name; /* flag without the leading "--" */
    const char *env;  /* environment variable, or NULL */
    enum sp_opt_type type;
    size_t offset;   /* of the value in the program's struct: const char * (string, log
                            * level), long (int), double, int (bool) */
    const char *def; /* SP_OPT_STRING, SP_OPT_LOG_LEVEL: default text, NULL for empty */
    double def_num;  /* the other types: default value */
    const char *help;
    double min, max; /* SP_OPT_INT and SP_OPT_DOUBLE: the values allowed, both included */
    enum sp_from from;
};

/* The range of an entry, or none. */
#define SP_RANGE(lo, hi) .min = (lo), .max = (hi)
#define SP_ANY .min = 1, .max = 0 /* min > max: no range */

#define SP_CTYPE_STRING const char *
#define SP_CTYPE_LOG_LEVEL const char *
#define SP_CTYPE_INT long
#define SP_CTYPE_DOUBLE double
#define SP_CTYPE_BOOL int
#define SP_DEFAULT_STRING(v) .def = (v)
#define SP_DEFAULT_LOG_LEVEL(v) .def = (v)
#define SP_DEFAULT_INT(v) .def_num = (v)
#define SP_DEFAULT_DOUBLE(v) .def_num = (v)
#define SP_DEFAULT_BOOL(v) .def_num = (v)

/* The struct member of an entry. */
#define SP_OPTION_FIELD(field_, flag_, env_, type_, def_, range_, from_, help_)                    \
    SP_CTYPE_##type_ field_;
/* The table row of an entry; SP_OPTION_STRUCT must name the struct holding the values. */
#define SP_OPTION_ENTRY(field_, flag_, env_, type_, def_, range_, from_, help_)                    \
    {.name = (flag_),                                                                              \
     .env = (env_),                                                                                \
     .type = SP_OPT_##type_,                                                                       \
     .offset = offsetof(SP_OPTION_STRUCT, field_),                                                 \
     SP_DEFAULT_##type_(def_),                                                                     \
     .help = (help_),                                                                              \
     range_,                                                                                       \
     .from = SP_FROM_##from_},

/* The --log-level entry every program has. */
#define SP_OPTION_LOG_LEVEL(X)                                                                     \
    X(log_level, "log-level", "LOG_LEVEL", LOG_LEVEL, "info", SP_ANY, LOG_LEVEL,                   \
      "debug, info, warn or error")

/* Parses into `values` (the struct the table's offsets point into). Returns 0 to go on, 1 when
 * --help or --version was printed (exit 0), -1 on a bad option (the message is on stderr;
 * exit 2). `opts` ends with an entry whose name is NULL. */
int sp_config_parse(const char *prog, const char *summary, const struct sp_option *opts,
                    void *values, int argc, char **argv);

/* Whether `text` is a valid value of `o` (type and range), without storing it. Returns 0, or
 * -1 with the reason in `err` ("'x' is not an integer"). */
int sp_config_check(const struct sp_option *o, const char *text, char *err, size_t cap);

/* The option of `opts` read from environment variable `env`, or NULL. */
const struct sp_option *sp_option_by_env(const struct sp_option *opts, const char *env);

#define SP_VERSION "0.1.0"

#endif
