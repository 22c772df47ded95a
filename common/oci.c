/* oci.c - the OCI Distribution Spec client. See oci.h. */
#include "oci.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "metrics.h"

#define OCI_ACCEPT_MANIFEST                                                                        \
    "Accept: application/vnd.oci.image.manifest.v1+json, "                                         \
    "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_TOKEN_BODY_MAX (64u * 1024)
#define OCI_ERROR_BODY_MAX (16u * 1024)
#define OCI_DEFAULT_TIMEOUT_MS 10000L
#define OCI_TOKEN_DEFAULT_TTL_S 60.0 /* the token spec's default when expires_in is absent */
#define OCI_TOKEN_MARGIN_S 10.0      /* a token this close to expiry is fetched again */
#define OCI_CRED_MAX 512
#define OCI_URL_MAX 2048

/* Credentials for one registry. */
struct creds {
    char user[OCI_CRED_MAX];
    char password[OCI_CRED_MAX];
};

/* An answer body, grown up to `max` bytes; past it the transfer is aborted. */
struct buf {
    char *data;
    size_t len, max;
    int too_big;
};

struct sp_oci_client {
    CURL *easy; /* reused: keeps the connection between requests */
    char *ca_file, *auth_file, *username, *password;
    long timeout_ms;
    /* The Bearer token of the last pull, for (registry, scope). */
    char token_registry[256];
    char token_scope[300];
    char *token;
    double token_expiry; /* sp_now() */
    /* The registry that last asked for Basic: credentials go with the first request then. */
    char basic_registry[256];
    char content_digest[SP_OCI_DIGEST_MAX]; /* Docker-Content-Digest of the last answer */
    _Atomic int cancelled;
};

/* ---------------------------------------------------------------- small pieces */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

void sp_oci_sha256(const void *data, size_t len, char out[SP_OCI_DIGEST_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    int at = snprintf(out, SP_OCI_DIGEST_MAX, "sha256:");
    for (unsigned int i = 0; i < n && at + 2 < SP_OCI_DIGEST_MAX; i++)
        at += snprintf(out + at, SP_OCI_DIGEST_MAX - (size_t)at, "%02x", md[i]);
}

/* "sha256:" + 64 lowercase hex digits: the only digest algorithm accepted. */
static int digest_valid(const char *d)
{
    if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
        return 0;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int copy_str(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- references */

static int repository_valid(const char *r)
{
    if (!*r || *r == '/' || r[strlen(r) - 1] == '/')
        return 0;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._/-", *p)))
            return 0;
    return 1;
}

static int tag_valid(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 128)
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_.-", *p)))
            return 0;
    return 1;
}

int sp_oci_ref_parse(const char *text, struct sp_oci_ref *ref, char *err, size_t cap)
{
    memset(ref, 0, sizeof *ref);
    const char *slash = strchr(text, '/');
    if (!slash)
        return sp_fail(err, cap, "'%s' is not host[:port]/repository[:tag|@digest]", text);
    size_t host_len = (size_t)(slash - text);
    if (copy_str(ref->registry, sizeof ref->registry, text, host_len) < 0 || !host_len)
        return sp_fail(err, cap, "'%s': bad registry host", text);
    if (!strchr(ref->registry, '.') && !strchr(ref->registry, ':') &&
        strcmp(ref->registry, "localhost") != 0)
        return sp_fail(err, cap, "'%s' names no registry host (host[:port]/repository:tag)", text);

    const char *path = slash + 1, *at = strchr(path, '@');
    size_t path_len = at ? (size_t)(at - path) : strlen(path);
    char name[sizeof ref->repository + sizeof ref->reference + 1];
    if (copy_str(name, sizeof name, path, path_len) < 0)
        return sp_fail(err, cap, "'%s': repository too long", text);
    char *colon = strrchr(name, ':');
    if (colon && strchr(colon, '/'))
        colon = NULL; /* a ':' before the last '/' is not a tag separator */
    if (colon)
        *colon = '\0';
    if (copy_str(ref->repository, sizeof ref->repository, name, strlen(name)) < 0 ||
        !repository_valid(ref->repository))
        return sp_fail(err, cap, "'%s': bad repository '%s' (lowercase a-z 0-9 . _ / -)", text,
                       name);
    if (at) {
        if (!digest_valid(at + 1))
            return sp_fail(err, cap, "'%s': the digest must be sha256:<64 hex digits>", text);
        snprintf(ref->reference, sizeof ref->reference, "%s", at + 1);
        ref->by_digest = 1;
        return 0;
    }
    const char *tag = colon ? colon + 1 : "latest";
    if (!tag_valid(tag))
        return sp_fail(err, cap, "'%s': bad tag '%s'", text, tag);
    snprintf(ref->reference, sizeof ref->reference, "%s", tag);
    return 0;
}

/* ---------------------------------------------------------------- WWW-Authenticate */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* One auth-param value, quoted (with backslash escapes) or a token, into dst. Returns the
 * position after it, or NULL. */
static const char *param_value(const char *p, char *dst, size_t cap)
{
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (n + 1 < cap)
                dst[n++] = *p;
        }
        if (*p != '"')
            return NULL;
        p++;
    } else {
        for (; *p && *p != ',' && *p != ' ' && *p != '\t'; p++)
            if (n + 1 < cap)
                dst[n++] = *p;
    }
    dst[n] = '\0';
    return p;
}

int sp_oci_parse_challenge(const char *header, struct sp_oci_challenge *ch)
{
    memset(ch, 0, sizeof *ch);
    const char *p = skip_space(header);
    size_t n = strcspn(p, " \t,");
    if (n == 0 || copy_str(ch->scheme, sizeof ch->scheme, p, n) < 0)
        return -1;
    p = skip_space(p + n);
    while (*p) {
        size_t name_len = strcspn(p, "= \t,");
        if (p[name_len] != '=')
            break; /* the next challenge's scheme: only the first is used */
        char name[32], value[512];
        if (copy_str(name, sizeof name, p, name_len) < 0)
            name[0] = '\0';
        if (!(p = param_value(skip_space(p + name_len + 1), value, sizeof value)))
            return -1;
        size_t vlen = strlen(value);
        int too_long = 0;
        if (!strcasecmp(name, "realm"))
            too_long = copy_str(ch->realm, sizeof ch->realm, value, vlen);
        else if (!strcasecmp(name, "service"))
            too_long = copy_str(ch->service, sizeof ch->service, value, vlen);
        else if (!strcasecmp(name, "scope"))
            too_long = copy_str(ch->scope, sizeof ch->scope, value, vlen);
        if (too_long)
            return -1;
        p = skip_space(p);
        if (*p == ',')
            p = skip_space(p + 1);
    }
    return 0;
}

/* ---------------------------------------------------------------- docker config.json */

/* "https://host:port/v1/" -> "host:port": the forms docker login has written over the years. */
static void auth_key_host(const char *key, char *out, size_t cap)
{
    const char *p = strstr(key, "://");
    p = p ? p + 3 : key;
    size_t n = strcspn(p, "/");
    if (copy_str(out, cap, p, n) < 0)
        out[0] = '\0';
}

static int decode_basic(const char *b64, struct creds *cr)
{
    size_t len = strlen(b64);
    if (len == 0 || len % 4 || len / 4 * 3 >= sizeof cr->user + sizeof cr->password)
        return -1;
    unsigned char plain[sizeof cr->user + sizeof cr->password + 4];
    int n = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    for (size_t i = len; i > 0 && b64[i - 1] == '='; i--)
        n--; /* EVP_DecodeBlock counts the padding as bytes */
    plain[n] = '\0';
    char *colon = strchr((char *)plain, ':');
    if (!colon || strlen((char *)plain) != (size_t)n)
        return -1;
    *colon = '\0';
    if (copy_str(cr->user, sizeof cr->user, (char *)plain, strlen((char *)plain)) < 0 ||
        copy_str(cr->password, sizeof cr->password, colon + 1, strlen(colon + 1)) < 0)
        return -1;
    return 0;
}

static int auth_entry(const cJSON *entry, struct creds *cr)
{
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(entry, "auth");
    if (cJSON_IsString(auth) && *auth->valuestring)
        return decode_basic(auth->valuestring, cr);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(entry, "username");
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(entry, "password");
    if (!cJSON_IsString(u) || !cJSON_IsString(pw))
        return -1;
    if (copy_str(cr->user, sizeof cr->user, u->valuestring, strlen(u->valuestring)) < 0 ||
        copy_str(cr->password, sizeof cr->password, pw->valuestring, strlen(pw->valuestring)) < 0)
        return -1;
    return 0;
}

static int auth_lookup(const char *config_json, const char *registry, struct creds *cr, char *err,
                       size_t cap)
{
    cJSON *root = cJSON_Parse(config_json);
    const cJSON *auths = cJSON_GetObjectItemCaseSensitive(root, "auths");
    int found = 0;
    if (!cJSON_IsObject(auths)) {
        cJSON_Delete(root);
        return sp_fail(err, cap, "not a docker config.json: no \"auths\" object");
    }
    const cJSON *entry;
    cJSON_ArrayForEach (entry, auths) {
        char host[256];
        auth_key_host(entry->string, host, sizeof host);
        if (strcasecmp(host, registry) != 0)
            continue;
        if (auth_entry(entry, cr) < 0) {
            cJSON_Delete(root);
            return sp_fail(err, cap, "the entry for %s has no valid auth or username/password",
                           registry);
        }
        found = 1;
        break;
    }
    cJSON_Delete(root);
    return found;
}

int sp_oci_auth_lookup(const char *config_json, const char *registry, char *user, size_t user_cap,
                       char *password, size_t password_cap, char *err, size_t cap)
{
    struct creds cr;
    int rc = auth_lookup(config_json, registry, &cr, err, cap);
    if (rc == 1) {
        snprintf(user, user_cap, "%s", cr.user);
        snprintf(password, password_cap, "%s", cr.password);
    }
    return rc;
}

/* The credentials for `registry`: the auth file's entry (read again on every pull, so a
 * rotated Secret is picked up), else the ones given. Empty user when there are none. */
static int client_creds(const struct sp_oci_client *c, const char *registry, struct creds *cr,
                        char *err, size_t cap)
{
    memset(cr, 0, sizeof *cr);
    if (c->auth_file) {
        FILE *f = fopen(c->auth_file, "rb");
        if (!f)
            return sp_fail(err, cap, "cannot read the registry auth file %s", c->auth_file);
        char text[64 * 1024];
        size_t n = fread(text, 1, sizeof text - 1, f);
        int big = !feof(f);
        fclose(f);
        if (big)
            return sp_fail(err, cap, "the registry auth file %s is over 64 KiB", c->auth_file);
        text[n] = '\0';
        char why[200];
        int rc = auth_lookup(text, registry, cr, why, sizeof why);
        if (rc < 0)
            return sp_fail(err, cap, "registry auth file %s: %s", c->auth_file, why);
        if (rc == 1)
            return 0;
    }
    if (c->username) {
        snprintf(cr->user, sizeof cr->user, "%s", c->username);
        snprintf(cr->password, sizeof cr->password, "%s", c->password ? c->password : "");
    }
    return 0;
}

/* ---------------------------------------------------------------- manifests */

int sp_oci_manifest_layer(const char *manifest, size_t len, const char *media_type,
                          char digest[SP_OCI_DIGEST_MAX], long long *size, char *err, size_t cap)
{
    cJSON *root = cJSON_ParseWithLength(manifest, len);
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        sp_fail(err, cap, "the manifest is not a JSON object");
        goto out;
    }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "mediaType");
    if (!cJSON_IsNumber(schema) || schema->valuedouble != 2) {
        sp_fail(err, cap, "the manifest's schemaVersion is not 2");
        goto out;
    }
    if (cJSON_IsString(mt) && strstr(mt->valuestring, "index")) {
        sp_fail(err, cap, "the reference names an index (%s), not one artifact", mt->valuestring);
        goto out;
    }
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers"), *l;
    if (!cJSON_IsArray(layers)) {
        sp_fail(err, cap, "the manifest has no layers");
        goto out;
    }
    char seen[256] = "";
    cJSON_ArrayForEach (l, layers) {
        const cJSON *lmt = cJSON_GetObjectItemCaseSensitive(l, "mediaType");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(l, "digest");
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(l, "size");
        if (!cJSON_IsString(lmt))
            continue;
        if (strcmp(lmt->valuestring, media_type) != 0) {
            size_t at = strlen(seen);
            snprintf(seen + at, sizeof seen - at, "%s%s", at ? ", " : "", lmt->valuestring);
            continue;
        }
        /* The size is checked before the cast: a double past long long's range is undefined
         * behaviour (found by tests/fuzz/oci_fuzz.c). */
        if (!cJSON_IsString(d) || !digest_valid(d->valuestring) || !cJSON_IsNumber(sz) ||
            !(sz->valuedouble >= 0 && sz->valuedouble <= 9e18)) {
            sp_fail(err, cap, "the %s layer has no sha256 digest or size", media_type);
            goto out;
        }
        snprintf(digest, SP_OCI_DIGEST_MAX, "%s", d->valuestring);
        *size = (long long)sz->valuedouble;
        rc = 0;
        goto out;
    }
    sp_fail(err, cap, "no layer of media type %s (found: %s)", media_type, *seen ? seen : "none");
out:
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- HTTP */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t k = size * n;
    if (b->len + k > b->max) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    char *grown = realloc(b->data, b->len + k + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, data, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

static void buf_reset(struct buf *b, size_t max)
{
    free(b->data);
    *b = (struct buf){.max = max};
}

/* The registry's own error text ({"errors":[{"code","message"}]}) or the body's start. */
static void error_text(const struct buf *b, char *out, size_t cap)
{
    out[0] = '\0';
    if (!b->len)
        return;
    cJSON *root = cJSON_ParseWithLength(b->data, b->len);
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "errors"), 0);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(code) && cJSON_IsString(msg))
        snprintf(out, cap, ": %s %s", code->valuestring, msg->valuestring);
    else
        snprintf(out, cap, ": %.120s", b->data);
    cJSON_Delete(root);
}

/* curl's progress callback: a non-zero return aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct sp_oci_client *c = arg;
    return atomic_load(&c->cancelled);
}

/* Appends `header` (if any) to the list; on failure the list is left as it was. */
static int add_header(struct curl_slist **list, const char *header)
{
    struct curl_slist *grown;
    if (!header)
        return 0;
    if (!(grown = curl_slist_append(*list, header)))
        return -1;
    *list = grown;
    return 0;
}

/* One GET. Returns the HTTP status, or -1 with the reason. `authz` is a whole
 * "Authorization: ..." header or NULL; `basic` credentials are sent as Basic when given. */
static long http_get(struct sp_oci_client *c, const char *url, const char *accept,
                     const char *authz, const struct creds *basic, struct buf *out, char *err,
                     size_t cap)
{
    CURL *e = c->easy;
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_reset(e); /* keeps the connection cache */
    if (add_header(&headers, accept) < 0 || add_header(&headers, authz) < 0) {
        curl_slist_free_all(headers);
        return sp_fail(err, cap, "out of memory");
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "salespipeline-oci/" SP_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    /* Registries may send blobs from elsewhere (object storage); curl drops our Authorization
     * header when a redirect leaves the host. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (basic && basic->user[0]) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, basic->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, basic->password);
    }
    CURLcode rc = curl_easy_perform(e);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        if (atomic_load(&c->cancelled))
            return sp_fail(err, cap, "GET %s: cancelled", url);
        if (out->too_big)
            return sp_fail(err, cap, "GET %s: the answer is over %zu bytes", url, out->max);
        return sp_fail(err, cap, "GET %s: %s", url, *errbuf ? errbuf : curl_easy_strerror(rc));
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    struct curl_header *dh = NULL;
    c->content_digest[0] = '\0';
    if (curl_easy_header(e, "Docker-Content-Digest", 0, CURLH_HEADER, -1, &dh) == CURLHE_OK)
        snprintf(c->content_digest, sizeof c->content_digest, "%s", dh->value);
    return status;
}

/* Fetches a Bearer token from the challenge's realm for `scope`. 0, or -1. */
static int fetch_token(struct sp_oci_client *c, const char *registry,
                       const struct sp_oci_challenge *ch, const char *scope, const struct creds *cr,
                       char *err, size_t cap)
{
    if (!*ch->realm)
        return sp_fail(err, cap, "%s asked for a Bearer token without a realm", registry);
    char *service = curl_easy_escape(c->easy, ch->service, 0);
    char *sc = curl_easy_escape(c->easy, scope, 0);
    char url[OCI_URL_MAX];
    int n = snprintf(url, sizeof url, "%s%cservice=%s&scope=%s", ch->realm,
                     strchr(ch->realm, '?') ? '&' : '?', service ? service : "", sc ? sc : "");
    curl_free(service);
    curl_free(sc);
    if (n < 0 || (size_t)n >= sizeof url)
        return sp_fail(err, cap, "the token URL is too long");
    struct buf b = {.max = OCI_TOKEN_BODY_MAX};
    char why[300];
    long status = http_get(c, url, "Accept: application/json", NULL, cr, &b, why, sizeof why);
    int rc = -1;
    if (status < 0) {
        sp_fail(err, cap, "token: %s", why);
    } else if (status != 200) {
        error_text(&b, why, sizeof why);
        sp_fail(err, cap, "token from %s: HTTP %ld%s%s", ch->realm, status, why,
                cr->user[0] ? "" : " (no credentials for this registry)");
    } else {
        cJSON *root = cJSON_ParseWithLength(b.data, b.len);
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "token");
        if (!cJSON_IsString(tok))
            tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
        const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
        if (cJSON_IsString(tok) && *tok->valuestring) {
            free(c->token);
            c->token = strdup(tok->valuestring);
            double ttl_s = cJSON_IsNumber(ttl) && ttl->valuedouble > 0 ? ttl->valuedouble
                                                                       : OCI_TOKEN_DEFAULT_TTL_S;
            c->token_expiry = sp_now() + ttl_s - OCI_TOKEN_MARGIN_S;
            snprintf(c->token_registry, sizeof c->token_registry, "%s", registry);
            snprintf(c->token_scope, sizeof c->token_scope, "%s", scope);
            rc = c->token ? 0 : sp_fail(err, cap, "out of memory");
        } else {
            sp_fail(err, cap, "the token answer of %s has no token", ch->realm);
        }
        cJSON_Delete(root);
    }
    buf_reset(&b, 0);
    return rc;
}

static int token_usable(const struct sp_oci_client *c, const char *registry, const char *scope)
{
    return c->token && sp_now() < c->token_expiry && !strcmp(c->token_registry, registry) &&
           !strcmp(c->token_scope, scope);
}

/* GET with the registry's authentication: what worked last time first; on a 401 the
 * challenge decides (token or Basic) and the request is made once more. Returns the status
 * of the last attempt, or -1. */
static long authed_get(struct sp_oci_client *c, const struct sp_oci_ref *ref, const char *url,
                       const char *accept, const struct creds *cr, struct buf *out, char *err,
                       size_t cap)
{
    char scope[300], authz[64 * 1024 + 32];
    snprintf(scope, sizeof scope, "repository:%s:pull", ref->repository);
    long status = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        const char *header = NULL;
        const struct creds *basic = NULL;
        if (token_usable(c, ref->registry, scope)) {
            snprintf(authz, sizeof authz, "Authorization: Bearer %s", c->token);
            header = authz;
        } else if (!strcmp(c->basic_registry, ref->registry) && cr->user[0]) {
            basic = cr;
        }
        buf_reset(out, out->max);
        status = http_get(c, url, accept, header, basic, out, err, cap);
        if (status != 401 || attempt == 1)
            return status;
        struct curl_header *h = NULL;
        struct sp_oci_challenge ch;
        if (curl_easy_header(c->easy, "WWW-Authenticate", 0, CURLH_HEADER, -1, &h) != CURLHE_OK ||
            sp_oci_parse_challenge(h->value, &ch) < 0)
            return status;
        if (!strcasecmp(ch.scheme, "Bearer")) {
            free(c->token);
            c->token = NULL;
            if (fetch_token(c, ref->registry, &ch, scope, cr, err, cap) < 0)
                return -1;
        } else if (!strcasecmp(ch.scheme, "Basic")) {
            if (!cr->user[0])
                return sp_fail(err, cap,
                               "%s needs credentials and has none here (registry "
                               "auth file or user)",
                               ref->registry);
            snprintf(c->basic_registry, sizeof c->basic_registry, "%s", ref->registry);
        } else {
            return sp_fail(err, cap, "%s asks for %s authentication, which is not supported",
                           ref->registry, ch.scheme);
        }
    }
    return status;
}

/* ---------------------------------------------------------------- the pull */

int sp_oci_pull_layer(struct sp_oci_client *c, const char *reference, const char *media_type,
                      size_t max_len, struct sp_oci_blob *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    struct sp_oci_ref ref;
    struct creds cr;
    if (sp_oci_ref_parse(reference, &ref, err, cap) < 0 ||
        client_creds(c, ref.registry, &cr, err, cap) < 0)
        return -1;
    char url[OCI_URL_MAX], why[300];
    struct buf b = {.max = SP_OCI_MANIFEST_MAX};
    int rc = -1;
    snprintf(url, sizeof url, "https://%s/v2/%s/manifests/%s", ref.registry, ref.repository,
             ref.reference);
    long status = authed_get(c, &ref, url, OCI_ACCEPT_MANIFEST, &cr, &b, err, cap);
    if (status < 0)
        goto out;
    if (status != 200) {
        error_text(&b, why, sizeof why);
        sp_fail(err, cap, "manifest of %s: HTTP %ld%s", reference, status, why);
        goto out;
    }
    sp_oci_sha256(b.data, b.len, out->manifest_digest);
    const char *expected = ref.by_digest ? ref.reference : c->content_digest;
    if (digest_valid(expected) && strcmp(expected, out->manifest_digest) != 0) {
        sp_fail(err, cap, "manifest of %s: its digest is %s, not %s", reference,
                out->manifest_digest, expected);
        goto out;
    }
    long long size = 0;
    if (sp_oci_manifest_layer(b.data, b.len, media_type, out->digest, &size, why, sizeof why) < 0) {
        sp_fail(err, cap, "%s: %s", reference, why);
        goto out;
    }
    if ((unsigned long long)size > max_len) {
        sp_fail(err, cap, "%s: the layer is %lld bytes, over the limit of %zu", reference, size,
                max_len);
        goto out;
    }
    snprintf(url, sizeof url, "https://%s/v2/%s/blobs/%s", ref.registry, ref.repository,
             out->digest);
    buf_reset(&b, (size_t)size);
    status = authed_get(c, &ref, url, NULL, &cr, &b, err, cap);
    if (status < 0)
        goto out;
    if (status != 200) {
        error_text(&b, why, sizeof why);
        sp_fail(err, cap, "blob %s of %s: HTTP %ld%s", out->digest, reference, status, why);
        goto out;
    }
    char got[SP_OCI_DIGEST_MAX];
    sp_oci_sha256(b.data ? b.data : "", b.len, got);
    if (b.len != (size_t)size || strcmp(got, out->digest) != 0) {
        sp_fail(err, cap,
                "blob of %s: %zu bytes with digest %s, the manifest says %lld bytes "
                "with %s",
                reference, b.len, got, size, out->digest);
        goto out;
    }
    if (!b.data && !(b.data = calloc(1, 1))) {
        sp_fail(err, cap, "out of memory");
        goto out;
    }
    out->data = b.data;
    out->len = b.len;
    b.data = NULL;
    rc = 0;
out:
    buf_reset(&b, 0);
    return rc;
}

void sp_oci_blob_free(struct sp_oci_blob *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- life cycle */

struct sp_oci_client *sp_oci_client_new(const struct sp_oci_options *o, char *err, size_t cap)
{
    struct sp_oci_client *c = calloc(1, sizeof *c);
    if (!c || !(c->easy = curl_easy_init())) {
        free(c);
        sp_fail(err, cap, "out of memory");
        return NULL;
    }
    c->ca_file = dup_or_null(o->ca_file);
    c->auth_file = dup_or_null(o->auth_file);
    c->username = dup_or_null(o->username);
    c->password = dup_or_null(o->password);
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : OCI_DEFAULT_TIMEOUT_MS;
    if ((o->ca_file && *o->ca_file && !c->ca_file) ||
        (o->auth_file && *o->auth_file && !c->auth_file) ||
        (o->username && *o->username && !c->username) ||
        (o->password && *o->password && !c->password)) {
        sp_oci_client_free(c);
        sp_fail(err, cap, "out of memory");
        return NULL;
    }
    return c;
}

void sp_oci_client_cancel(struct sp_oci_client *c)
{
    if (c)
        atomic_store(&c->cancelled, 1);
}

void sp_oci_client_free(struct sp_oci_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->easy);
    free(c->ca_file);
    free(c->auth_file);
    free(c->username);
    free(c->password);
    free(c->token);
    free(c);
}
