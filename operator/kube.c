/* kube.c - Kubernetes REST client. See kube.h. */
#include "kube.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"

#define CONNECT_TIMEOUT_MS 5000L
#define CALL_TIMEOUT_MS 30000L
#define LINE_KEEP_MAX (16 * 1024) /* a line buffer that grew past this is freed after use */
#define RECV_BUFFER 8192L         /* curl's receive buffer, one per handle (default 16 KB) */

/* A growable buffer with a hard limit (curl's dynbuf idea). */
struct kbuf {
    char *data;
    size_t len, cap, max;
    int too_big;
};

static int kbuf_add(struct kbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->max) {
        b->too_big = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap > b->max ? b->max : cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap > b->max ? b->max : cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static void kbuf_free(struct kbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    return kbuf_add(arg, p, size * n) < 0 ? 0 : size * n;
}

/* Most connections are watches, idle between events: without this each keeps two ~17 KB TLS
 * record buffers for its whole life. */
static CURLcode on_ssl_ctx(CURL *h, void *ctx, void *arg)
{
    (void)h, (void)arg;
    SSL_CTX_set_mode((SSL_CTX *)ctx, SSL_MODE_RELEASE_BUFFERS);
    return CURLE_OK;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const atomic_bool *stop = arg;
    return stop && atomic_load(stop) ? 1 : 0;
}

int kube_client_init(struct kube_client *c, struct kube_config *cfg, const atomic_bool *stop)
{
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->stop = stop;
    c->timeout_ms = CALL_TIMEOUT_MS;
    if (!(c->curl = curl_easy_init()))
        return -1;
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "salespipeline-operator/0.1.0");
    /* One request at a time per handle, so HTTP/2 buys nothing here, and each h2 connection
     * costs an nghttp2 session and a 32 KB input buffer on top of TLS. */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    if (cfg->ca) {
        /* Only our CA: also saves the memory of loading the system bundle per connection. */
        struct curl_blob ca = {.data = cfg->ca, .len = cfg->ca_len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (cfg->cert) {
        struct curl_blob cert = {.data = cfg->cert, .len = cfg->cert_len, .flags = CURL_BLOB_COPY};
        struct curl_blob key = {.data = cfg->key, .len = cfg->key_len, .flags = CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (cfg->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)stop);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    return 0;
}

void kube_client_free(struct kube_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

int kube_escape(char *buf, size_t cap, const char *in)
{
    char *e = curl_easy_escape(NULL, in, 0);
    int n = e ? snprintf(buf, cap, "%s", e) : -1;
    curl_free(e);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Sets method, URL, headers and body on the handle. The header list is returned for freeing. */
static struct curl_slist *prepare(struct kube_client *c, const char *method, const char *path,
                                  const char *accept, const char *content_type, const char *body)
{
    char url[4096], hdr[4200];
    CURL *h = c->curl;
    snprintf(url, sizeof url, "%s%s", c->cfg->server, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L); /* resets any earlier body */
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);

    struct curl_slist *hs = NULL, *t;
    snprintf(hdr, sizeof hdr, "Accept: %s", accept ? accept : "application/json");
    hs = curl_slist_append(hs, hdr);
    if (body && hs) {
        snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type);
        hs = (t = curl_slist_append(hs, hdr)) ? t : hs;
    }
    char token[4096];
    kubeconfig_token(c->cfg, token, sizeof token);
    if (*token && hs) {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", token);
        hs = (t = curl_slist_append(hs, hdr)) ? t : hs;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    return hs;
}

/* The message of a Kubernetes Status object in `body`, else the body's start. */
static void status_message(const char *body, long status, char *err, size_t errcap)
{
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
    if (msg)
        snprintf(err, errcap, "HTTP %ld: %s", status, msg);
    else
        snprintf(err, errcap, "HTTP %ld: %.200s", status, body ? body : "");
    cJSON_Delete(j);
}

cJSON *kube_call(struct kube_client *c, const char *method, const char *path, const char *accept,
                 const char *content_type, const cJSON *body, long *status, char *err,
                 size_t errcap)
{
    struct kbuf reply = {.max = KUBE_REPLY_MAX};
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON *out = NULL;
    *status = 0;
    if (c->write_gate && strcmp(method, "GET") && !atomic_load(c->write_gate)) {
        snprintf(err, errcap, "%s %s refused: not the leader", method, path);
        free(text);
        return NULL;
    }
    if (body && !text) {
        snprintf(err, errcap, "out of memory serialising the request");
        return NULL;
    }
    struct curl_slist *hs = prepare(c, method, path, accept, content_type, text);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    c->curl_err[0] = '\0';
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        snprintf(err, errcap, "%s %s: %s", method, path,
                 reply.too_big  ? "reply too big"
                 : *c->curl_err ? c->curl_err
                                : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    if (*status < 200 || *status > 299) {
        status_message(reply.data, *status, err, errcap);
        goto out;
    }
    if (!(out = cJSON_ParseWithLength(reply.data ? reply.data : "", reply.len))) {
        snprintf(err, errcap, "%s %s: reply is not JSON", method, path);
        *status = 0;
    }
out:
    curl_slist_free_all(hs);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    free(text);
    kbuf_free(&reply);
    return out;
}

cJSON *kube_get(struct kube_client *c, const char *path, long *status, char *err, size_t errcap)
{
    return kube_call(c, "GET", path, NULL, NULL, NULL, status, err, errcap);
}

cJSON *kube_apply(struct kube_client *c, const char *path, const cJSON *obj, long *status,
                  char *err, size_t errcap)
{
    char url[2048];
    snprintf(url, sizeof url, "%s?fieldManager=%s&force=true", path, OP_FIELD_MANAGER);
    return kube_call(c, "PATCH", url, NULL, "application/apply-patch+yaml", obj, status, err,
                     errcap);
}

cJSON *kube_create(struct kube_client *c, const char *path, const cJSON *obj, long *status,
                   char *err, size_t errcap)
{
    return kube_call(c, "POST", path, NULL, "application/json", obj, status, err, errcap);
}

cJSON *kube_update(struct kube_client *c, const char *path, const cJSON *obj, long *status,
                   char *err, size_t errcap)
{
    return kube_call(c, "PUT", path, NULL, "application/json", obj, status, err, errcap);
}

int kube_delete(struct kube_client *c, const char *path, char *err, size_t errcap)
{
    long status;
    cJSON *opts = cJSON_CreateObject();
    if (!opts || !cJSON_AddStringToObject(opts, "propagationPolicy", "Background")) {
        cJSON_Delete(opts);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    cJSON *r = kube_call(c, "DELETE", path, NULL, "application/json", opts, &status, err, errcap);
    cJSON_Delete(opts);
    cJSON_Delete(r);
    return r || status == 404 ? 0 : -1;
}

/* ---------------------------------------------------------------- streams */

struct stream {
    CURL *curl;
    struct kbuf line;
    kube_line_fn *fn;
    void *arg;
    int ended; /* fn asked to stop */
    int error; /* non-200 answer: keep the body whole, it is a Status */
    int checked;
};

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
    struct stream *s = arg;
    size_t total = size * n;
    if (!s->checked) {
        long code = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        s->error = code != 200;
        s->checked = 1;
    }
    if (s->error)
        return kbuf_add(&s->line, p, total) < 0 ? 0 : total;
    for (size_t i = 0; i < total;) {
        char *nl = memchr(p + i, '\n', total - i);
        size_t chunk = nl ? (size_t)(nl - (p + i)) : total - i;
        if (kbuf_add(&s->line, p + i, chunk) < 0)
            return 0;
        i += chunk;
        if (!nl)
            break;
        i++;
        if (s->line.len && s->fn(s->line.data, s->line.len, s->arg) < 0) {
            s->ended = 1;
            return 0;
        }
        s->line.len = 0;
        if (s->line.cap > LINE_KEEP_MAX)
            kbuf_free(&s->line), s->line.max = KUBE_LINE_MAX;
    }
    return total;
}

int kube_stream(struct kube_client *c, const char *path, const char *accept, long timeout_s,
                kube_line_fn *fn, void *arg, long *status, char *err, size_t errcap)
{
    struct stream s = {.curl = c->curl, .line = {.max = KUBE_LINE_MAX}, .fn = fn, .arg = arg};
    int ret = -1;
    *status = 0;
    struct curl_slist *hs = prepare(c, "GET", path, accept, NULL, NULL);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_s * 1000L);
    c->curl_err[0] = '\0';
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    if (rc == CURLE_OK && *status == 200) {
        ret = 0;
    } else if (s.ended) {
        snprintf(err, errcap, "stream ended by the handler");
    } else if (rc == CURLE_OK || s.error) {
        status_message(s.line.len ? s.line.data : NULL, *status, err, errcap);
    } else {
        *status = 0;
        snprintf(err, errcap, "watch %s: %s", path,
                 s.line.too_big ? "event too big"
                 : *c->curl_err ? c->curl_err
                                : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hs);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    kbuf_free(&s.line);
    return ret;
}
