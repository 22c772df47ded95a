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
/* The pipeline's password: read from its Secret, or (our own Secret only, and only when the
 * API server says it does not exist) a new one, with *generated set: the caller applies the
 * Secret before anything that uses it. 0, or -1 with `err` set. */
int valkey_password_fetch(struct kube_client *kc, const struct pipeline *p, char *out, size_t cap,
                          bool *generated, char *err, size_t errcap);

#endif
