/* kafka_client.h - the librdkafka glue the writer's producer and the consumer share:
 * configuration from name/value pairs, librdkafka's log lines as our JSON log lines, its error
 * events in the log (rate-limited), and a fatal error turned into state the program acts on.
 *
 * A fatal error (e.g. the idempotent producer can no longer guarantee order and no
 * duplicates) leaves the client unusable: the program must stop answering OK, report not
 * ready and exit non-zero so that its Deployment restarts it with a new client. */
#ifndef SP_KAFKA_CLIENT_H
#define SP_KAFKA_CLIENT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct sp_kafka_setting {
    const char *name, *value;
};

struct sp_kafka {
    rd_kafka_t *rk;
    void *owner; /* the program's state */
    /* Called once, on the thread serving librdkafka's callbacks, after the fatal error is
     * logged; may be NULL. */
    void (*on_fatal)(void *owner, const char *reason);
    atomic_bool fatal;
    struct sp_ratelog errors;
};

/* How the client reaches the brokers: contract.h's SP_KAFKA_SECURITY_OPTIONS, as librdkafka's
 * security.protocol, sasl.mechanisms, sasl.username, sasl.password and ssl.ca.location. An
 * empty or NULL field leaves librdkafka's default. */
struct sp_kafka_security {
    const char *protocol, *sasl_mechanism, *sasl_username, *sasl_password, *ca_file;
};
/* The security settings of an options struct holding SP_KAFKA_SECURITY_OPTIONS' fields. */
#define SP_KAFKA_SECURITY_OF(o)                                                                    \
    ((struct sp_kafka_security){(o)->kafka_protocol, (o)->kafka_sasl_mechanism,                    \
                                (o)->kafka_sasl_username, (o)->kafka_sasl_password,                \
                                (o)->kafka_ca_file})

/* A new configuration holding `settings`, then `security` (may be NULL), and our log and error
 * callbacks; the opaque of every callback is `k` (sp_kafka_owner gives the program's state).
 * Set k->owner and k->on_fatal first. NULL with the refused setting named in `err` (a
 * password's value is never written there). */
rd_kafka_conf_t *sp_kafka_conf(struct sp_kafka *k, const struct sp_kafka_setting *settings,
                               size_t n, const struct sp_kafka_security *security, char *err,
                               size_t errlen);

/* rd_kafka_new into k->rk; `conf` is consumed either way. 0, or -1 with `err`. */
int sp_kafka_new(struct sp_kafka *k, rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err,
                 size_t errlen);

/* Reports a librdkafka error: a fatal one is logged once and calls on_fatal (a producer gets
 * it through the error callback, a consumer as a message of rd_kafka_consumer_poll: pass
 * those here); any other is logged, at most once a second. */
void sp_kafka_error(struct sp_kafka *k, rd_kafka_resp_err_t err, const char *reason);

/* Whether a fatal error happened: librdkafka knows from the moment it is raised, before its
 * error event is served. Thread-safe. */
bool sp_kafka_failed(struct sp_kafka *k);

/* The program's state, from the opaque of a librdkafka callback. */
static inline void *sp_kafka_owner(void *opaque)
{
    return ((struct sp_kafka *)opaque)->owner;
}

#endif
