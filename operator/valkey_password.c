/* valkey_password.c - the Valkey password of a pipeline: generated once, kept in a Secret.
 *
 * The operator owns <name>-valkey (unless spec.valkey.passwordSecret names the user's own):
 * every reconcile reads it first and re-applies the same value, so the password never rotates
 * by itself. Only a Secret that does not exist (404) gets a new random one; any other failure to
 * read it fails the reconcile rather than risk a second password. See valkey_password.h.
 *
 * The operator reads the data of no Secret it did not create: it first fetches the Secret's
 * metadata alone (PartialObjectMetadata), and fetches the whole Secret only when that metadata
 * shows the pipeline's controller reference (ours), or the user's opt-in annotation
 * VALKEY_PASSWORD_READ_ANNOTATION=true on a Secret of theirs. */
#include "valkey_password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "kinds.h"
#include "kubeconfig.h"
#include "log.h"

#define PASSWORD_MAX 128

int valkey_password_generate(char out[INFRA_PASSWORD_LEN + 1])
{
    unsigned char raw[INFRA_PASSWORD_LEN / 2];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

int valkey_password_hash(const struct pipeline *p, const char *password, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), p->uid, (int)strlen(p->uid), (const unsigned char *)password,
              strlen(password), md, &n) ||
        n < 8)
        return -1;
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The password goes into valkey.conf (double-quoted), YAML and a redis:// URL: printable
 * ASCII without quotes, backslashes or spaces keeps all three simple. */
static bool password_ok(const char *s, size_t len)
{
    if (len < 1 || len > PASSWORD_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~' || strchr("\"'\\", s[i]))
            return false;
    return true;
}

int valkey_password_read(const cJSON *secret, char *out, size_t cap)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data");
    const char *b64 = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(data, INFRA_VALKEY_SECRET_KEY));
    size_t len = 0;
    char *pw = b64 ? kubeconfig_b64decode(b64, &len) : NULL;
    int rc = -1;
    if (pw && password_ok(pw, len) && len < cap) {
        memcpy(out, pw, len + 1);
        rc = 0;
    }
    if (pw)
        OPENSSL_cleanse(pw, len);
    free(pw);
    return rc;
}

bool valkey_password_may_read(const struct pipeline *p, const cJSON *meta)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(meta, "metadata");
    const char *optin = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(md, "annotations"), VALKEY_PASSWORD_READ_ANNOTATION));
    return build_controlled_by(meta, p->uid) || (optin && !strcmp(optin, "true"));
}

cJSON *valkey_secret_get(struct kube_client *kc, const struct pipeline *p, const char *name,
                         long *status, bool *refused, char *err, size_t errcap)
{
    char path[600];
    *refused = false;
    *status = 0;
    if (kinds_path(path, sizeof path, KIND_SECRET, p->ns, name) < 0) {
        sp_fail(err, errcap, "Secret %s: name too long", name);
        return NULL;
    }
    cJSON *meta = kube_call(kc, "GET", path, KUBE_ACCEPT_META, NULL, NULL, status, err, errcap);
    if (!meta)
        return NULL;
    bool may = valkey_password_may_read(p, meta);
    cJSON_Delete(meta);
    if (!may) {
        *refused = true;
        sp_fail(err, errcap,
                "Secret %s was not made by the operator for this pipeline: annotate "
                "it %s=true to let the operator read it",
                name, VALKEY_PASSWORD_READ_ANNOTATION);
        return NULL;
    }
    cJSON *secret = kube_get(kc, path, status, err, errcap);
    /* Replaced between the two reads: checked again, and what was read is forgotten. */
    if (secret && !valkey_password_may_read(p, secret)) {
        cJSON_Delete(secret);
        *status = 0;
        sp_fail(err, errcap, "Secret %s changed while read; retrying", name);
        return NULL;
    }
    return secret;
}

int valkey_password_fetch(struct kube_client *kc, const struct pipeline *p, char *out, size_t cap,
                          bool *generated, char *err, size_t errcap)
{
    char name[300];
    long status;
    bool refused;
    *generated = false;
    infra_password_secret(p, name, sizeof name);
    cJSON *secret = valkey_secret_get(kc, p, name, &status, &refused, err, errcap);
    if (refused) { /* valkey_secret_get said why; this says what the password is for */
        size_t used = strnlen(err, errcap);
        if (used < errcap)
            snprintf(err + used, errcap - used,
                     " (it writes the password into the Valkey VMs' cloud-init and Grafana's "
                     "data source)");
        return -1;
    }
    if (!secret && status != 404)
        return -1; /* err says why; never generate a second password on a failed read */
    if (!secret && !infra_password_secret_owned(p))
        return sp_fail(err, errcap, "Secret %s (spec.valkey.passwordSecret) not found", name);
    if (!secret) {
        if (cap <= INFRA_PASSWORD_LEN || valkey_password_generate(out) < 0)
            return sp_fail(err, errcap, "cannot generate a password");
        *generated = true;
        return 0;
    }
    int rc = valkey_password_read(secret, out, cap);
    cJSON_Delete(secret);
    return rc < 0 ? sp_fail(err, errcap,
                            "Secret %s: key \"%s\" must hold 1-%d printable "
                            "characters without quotes, backslashes or spaces",
                            name, INFRA_VALKEY_SECRET_KEY, PASSWORD_MAX)
                  : 0;
}
