/* env.h - a worker container's environment, rendered from its option table (common/contract.h):
 * exactly the options whose source is not SP_FROM_NONE, each with its value from the pipeline.
 * Nothing else is set, so a container carries only what its program reads. */
#ifndef OP_ENV_H
#define OP_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "component.h"
#include "jb.h"
#include "pipeline.h"

/* Whether the operator sets option `o` for this pipeline: every option with a source
 * (not SP_FROM_NONE), except what the spec does not use: the Valkey password of an external
 * Valkey without passwordSecret, SASL settings without a SASL protocol, the Kafka CA without
 * TLS. */
bool env_wanted(const struct pipeline *p, const struct sp_option *o);

/* The text the operator sets for option `o`, for every source except SP_FROM_NONE and the
 * secretKeyRefs (SP_FROM_VALKEY_PASSWORD, SP_FROM_KAFKA_SASL_USERNAME/PASSWORD). Returns 0,
 * or -1 when it does not fit in `cap` or has no text. */
int env_value(const struct pipeline *p, const struct sp_option *o, char *buf, size_t cap);

/* Appends the component's environment to the container `ctr` as its "env" list. */
void env_build(struct jb *b, cJSON *ctr, const struct pipeline *p, const struct component *c);

#endif
