/* kafka_client.c - see kafka_client.h. */
#include "kafka_client.h"

#include <stdio.h>

/* librdkafka's own log lines (syslog levels), from its threads, as our JSON lines. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum sp_log_level lv = level <= 3   ? SP_LOG_ERROR
                           : level == 4 ? SP_LOG_WARN
                           : level <= 6 ? SP_LOG_INFO
                                        : SP_LOG_DEBUG;
    if (sp_log_enabled(lv))
        sp_log(lv, "kafka_log", "%s: %s", fac, buf);
}

void sp_kafka_error(struct sp_kafka *k, rd_kafka_resp_err_t err, const char *reason)
{
    unsigned long suppressed;
    char why[512];
    rd_kafka_resp_err_t fatal = k->rk ? rd_kafka_fatal_error(k->rk, why, sizeof why)
                                      : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__FATAL || fatal) {
        if (atomic_exchange(&k->fatal, true))
            return; /* said once */
        if (!fatal)
            snprintf(why, sizeof why, "%s", reason);
        sp_error("kafka_fatal", "%s: %s", rd_kafka_err2name(fatal ? fatal : err), why);
        if (k->on_fatal)
            k->on_fatal(k->owner, why);
    } else if (sp_ratelog_allow(&k->errors, &suppressed)) {
        sp_warn("kafka_error", "%s: %s (%lu similar suppressed)", rd_kafka_err2name(err), reason,
                suppressed);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    sp_kafka_error(opaque, (rd_kafka_resp_err_t)err, reason);
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, bool secret, char *err,
               size_t errlen)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errlen, "kafka setting %s=%s: %s", name, secret ? "(hidden)" : value, why);
    return -1;
}

static int set_security(rd_kafka_conf_t *conf, const struct sp_kafka_security *s, char *err,
                        size_t errlen)
{
    const struct {
        const char *name, *value;
        bool secret;
    } items[] = {
        {"security.protocol", s->protocol, false},  {"sasl.mechanisms", s->sasl_mechanism, false},
        {"sasl.username", s->sasl_username, false}, {"sasl.password", s->sasl_password, true},
        {"ssl.ca.location", s->ca_file, false},
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (items[i].value && *items[i].value &&
            set(conf, items[i].name, items[i].value, items[i].secret, err, errlen) < 0)
            return -1;
    return 0;
}

rd_kafka_conf_t *sp_kafka_conf(struct sp_kafka *k, const struct sp_kafka_setting *settings,
                               size_t n, const struct sp_kafka_security *security, char *err,
                               size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < n; i++) {
        if (set(conf, settings[i].name, settings[i].value, false, err, errlen) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    if (security && set_security(conf, security, err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    return conf;
}

int sp_kafka_new(struct sp_kafka *k, rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err,
                 size_t errlen)
{
    char why[512];
    k->rk = rd_kafka_new(type, conf, why, sizeof why);
    if (!k->rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new only takes it on success */
        return sp_fail(err, errlen, "kafka %s: %s",
                       type == RD_KAFKA_PRODUCER ? "producer" : "consumer", why);
    }
    return 0;
}

bool sp_kafka_failed(struct sp_kafka *k)
{
    return atomic_load(&k->fatal) ||
           (k->rk && rd_kafka_fatal_error(k->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR);
}
