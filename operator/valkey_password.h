/* valkey_password.h - the Valkey password of a pipeline: generated once into its own Secret
 * (or read from the user's), never a new one per reconcile; the only builder input that is
 * not in the spec. */
#ifndef OP_VALKEY_PASSWORD_H
#define OP_VALKEY_PASSWORD_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "infra.h"
#include "kube.h"
#include "pipeline.h"

/* A new random password (RAND_bytes), INFRA_PASSWORD_LEN hex characters. 0 or -1. */
int valkey_password_generate(char out[INFRA_PASSWORD_LEN + 1]);
/* The password in a Secret object (data.password, base64). 0, or -1 when absent/invalid. */
int valkey_password_read(const cJSON *secret, char *out, size_t cap);
/* A fingerprint of the password, keyed with the pipeline's uid (HMAC-SHA256, 16 hex digits):
 * put on the consumer's pod template, so a new password rolls the consumers, while the
 * annotation tells nothing usable about the password itself. 0 or -1. */
int valkey_password_hash(const struct pipeline *p, const char *password, char out[17]);
/* On a Secret the operator did not make (spec.valkey.passwordSecret): "true" lets it read it. */
#define VALKEY_PASSWORD_READ_ANNOTATION "sales.blackfriday.dev/operator-may-read"
/* Whether the data of a Secret whose metadata is `meta` may be read: it is controlled by the
 * pipeline (the operator made it), or it carries VALKEY_PASSWORD_READ_ANNOTATION=true. */
bool valkey_password_may_read(const struct pipeline *p, const cJSON *meta);
/* Secret `name` of the pipeline's namespace, read whole only when valkey_password_may_read
 * allows: its metadata is fetched first. NULL with *status 404 when it does not exist; NULL
 * with *refused set (and `err` saying how to opt in) when it may not be read; else NULL with
 * `err` set on any other failure. */
cJSON *valkey_secret_get(struct kube_client *kc, const struct pipeline *p, const char *name,
                         long *status, bool *refused, char *err, size_t errcap);
/* The pipeline's password: read from its Secret (metadata first: only a Secret that
 * valkey_password_may_read allows is read whole), or (our own Secret only, and only when the
 * API server says it does not exist) a new one, with *generated set: the caller applies the
 * Secret before anything that uses it. 0, or -1 with `err` set. */
int valkey_password_fetch(struct kube_client *kc, const struct pipeline *p, char *out, size_t cap,
                          bool *generated, char *err, size_t errcap);

#endif
