/* kubeconfig.c - kubeconfig files (libyaml) and in-cluster configuration. See kubeconfig.h. */
#include "kubeconfig.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "log.h"
#include "metrics.h"

#define KC_FILES_MAX 8
#define KC_FILE_MAX (1024 * 1024) /* kubeconfigs, certificates, tokens are small */
#define TOKEN_REREAD_SECONDS 60.0

/* The loaded documents of a (possibly merged) kubeconfig, in precedence order. */
struct kc_docs {
    yaml_document_t doc[KC_FILES_MAX];
    char dir[KC_FILES_MAX][PATH_MAX]; /* each file's folder: relative paths resolve there */
    int n;
};

/* Reads a whole (small) file into a NUL-terminated buffer. NULL with errno set on failure. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(KC_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, KC_FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || n > KC_FILE_MAX;
    fclose(f);
    if (bad) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *kubeconfig_b64decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in), m = 0;
    char *clean = malloc(n + 1), *out = malloc(n / 4 * 3 + 4);
    if (!clean || !out)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t')
            clean[m++] = in[i];
    if (m == 0 || m % 4)
        goto fail;
    int len = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)m);
    if (len < 0)
        goto fail;
    len -= (clean[m - 1] == '=') + (clean[m - 2] == '='); /* DecodeBlock counts padding */
    out[len] = '\0';
    *out_len = (size_t)len;
    free(clean);
    return out;
fail:
    free(clean);
    free(out);
    return NULL;
}

/* ---------------------------------------------------------------- YAML navigation */

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(yaml_document_get_node(d, p->key));
        if (k && !strcmp(k, key))
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static const char *map_str(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    const char *s = scalar(map_get(d, map, key));
    return s && *s ? s : NULL;
}

/* In list `list` (clusters, users, contexts) the entry called `name`: its `inner` mapping. */
static yaml_node_t *named(yaml_document_t *d, const char *list, const char *name, const char *inner)
{
    yaml_node_t *seq = map_get(d, yaml_document_get_root_node(d), list);
    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *entry = yaml_document_get_node(d, *it);
        const char *n = map_str(d, entry, "name");
        if (n && !strcmp(n, name))
            return map_get(d, entry, inner);
    }
    return NULL;
}

/* The first document (in precedence order) that has the named entry; its index in *which. */
static yaml_node_t *docs_named(struct kc_docs *docs, const char *list, const char *name,
                               const char *inner, int *which)
{
    for (int i = 0; i < docs->n; i++) {
        yaml_node_t *n = named(&docs->doc[i], list, name, inner);
        if (n) {
            *which = i;
            return n;
        }
    }
    return NULL;
}

static int docs_load_one(struct kc_docs *docs, const char *path, char *err, size_t errcap)
{
    size_t len;
    char *text = read_file(path, &len);
    if (!text)
        return sp_fail(err, errcap, "kubeconfig %s: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&parser, &docs->doc[docs->n]);
    if (!ok)
        sp_fail(err, errcap, "kubeconfig %s: YAML error at line %zu: %s", path,
                parser.problem_mark.line + 1, parser.problem ? parser.problem : "?");
    yaml_parser_delete(&parser);
    free(text);
    if (!ok)
        return -1;
    if (!yaml_document_get_root_node(&docs->doc[docs->n])) {
        yaml_document_delete(&docs->doc[docs->n]);
        return 0; /* an empty file contributes nothing, as with kubectl */
    }
    const char *slash = strrchr(path, '/');
    snprintf(docs->dir[docs->n], PATH_MAX, "%.*s", slash ? (int)(slash - path) : 1,
             slash ? path : ".");
    docs->n++;
    return 0;
}

static void docs_free(struct kc_docs *docs)
{
    for (int i = 0; i < docs->n; i++)
        yaml_document_delete(&docs->doc[i]);
    docs->n = 0;
}

/* ---------------------------------------------------------------- credentials */

/* `field-data` (base64) or `field` (a file, relative to the kubeconfig's folder) into *out. */
static int load_blob(struct kc_docs *docs, int which, yaml_node_t *map, const char *field,
                     char **out, size_t *len, char *err, size_t errcap)
{
    yaml_document_t *d = &docs->doc[which];
    char key[64], path[PATH_MAX];
    snprintf(key, sizeof key, "%s-data", field);
    const char *data = map_str(d, map, key), *file = map_str(d, map, field);
    if (data) {
        if (!(*out = kubeconfig_b64decode(data, len)))
            return sp_fail(err, errcap, "kubeconfig: %s is not valid base64", key);
        return 0;
    }
    if (!file)
        return 0;
    if (file[0] == '/')
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/%s", docs->dir[which], file);
    if (!(*out = read_file(path, len)))
        return sp_fail(err, errcap, "kubeconfig: %s %s: %s", field, path, strerror(errno));
    return 0;
}

static int load_user(struct kube_config *cfg, struct kc_docs *docs, const char *user, char *err,
                     size_t errcap)
{
    int which = 0;
    yaml_node_t *u = docs_named(docs, "users", user, "user", &which);
    if (!u)
        return sp_fail(err, errcap, "kubeconfig: user '%s' not found", user);
    yaml_document_t *d = &docs->doc[which];
    if (map_get(d, u, "exec") || map_get(d, u, "auth-provider"))
        return sp_fail(err, errcap,
                       "kubeconfig: user '%s' uses an exec or auth-provider plugin, "
                       "which is not supported: use a client certificate or a token",
                       user);
    if (load_blob(docs, which, u, "client-certificate", &cfg->cert, &cfg->cert_len, err, errcap) ||
        load_blob(docs, which, u, "client-key", &cfg->key, &cfg->key_len, err, errcap))
        return -1;
    if (!cfg->cert != !cfg->key)
        return sp_fail(err, errcap,
                       "kubeconfig: user '%s' has a client certificate without a "
                       "key, or the reverse",
                       user);
    const char *token = map_str(d, u, "token"), *token_file = map_str(d, u, "tokenFile");
    if (token && !(cfg->token = strdup(token)))
        return -1;
    if (!token && token_file) {
        char path[PATH_MAX];
        if (token_file[0] == '/')
            snprintf(path, sizeof path, "%s", token_file);
        else
            snprintf(path, sizeof path, "%s/%s", docs->dir[which], token_file);
        if (!(cfg->token_file = strdup(path)))
            return -1;
    }
    return 0;
}

static int load_cluster(struct kube_config *cfg, struct kc_docs *docs, const char *cluster,
                        char *err, size_t errcap)
{
    int which = 0;
    yaml_node_t *c = docs_named(docs, "clusters", cluster, "cluster", &which);
    const char *server = c ? map_str(&docs->doc[which], c, "server") : NULL;
    if (!server)
        return sp_fail(err, errcap, "kubeconfig: cluster '%s' not found or without a server",
                       cluster);
    if (!(cfg->server = strdup(server)))
        return -1;
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    const char *insecure = map_str(&docs->doc[which], c, "insecure-skip-tls-verify");
    cfg->insecure = insecure && !strcmp(insecure, "true");
    return load_blob(docs, which, c, "certificate-authority", &cfg->ca, &cfg->ca_len, err, errcap);
}

/* The context to use: `context`, else the first current-context found. */
static const char *pick_context(struct kc_docs *docs, const char *context)
{
    if (context && !*context)
        context = NULL;
    for (int i = 0; !context && i < docs->n; i++)
        context = map_str(&docs->doc[i], yaml_document_get_root_node(&docs->doc[i]),
                          "current-context");
    return context;
}

static int load_from_docs(struct kube_config *cfg, struct kc_docs *docs, const char *context,
                          char *err, size_t errcap)
{
    const char *name = pick_context(docs, context);
    if (!name)
        return sp_fail(err, errcap, "kubeconfig: no context given and no current-context set");
    int which = 0;
    yaml_node_t *ctx = docs_named(docs, "contexts", name, "context", &which);
    if (!ctx)
        return sp_fail(err, errcap, "kubeconfig: context '%s' not found", name);
    yaml_document_t *d = &docs->doc[which];
    const char *cluster = map_str(d, ctx, "cluster"), *user = map_str(d, ctx, "user");
    const char *ns = map_str(d, ctx, "namespace");
    if (!cluster)
        return sp_fail(err, errcap, "kubeconfig: context '%s' names no cluster", name);
    snprintf(cfg->namespace, sizeof cfg->namespace, "%s", ns ? ns : "");
    snprintf(cfg->source + strlen(cfg->source), sizeof cfg->source - strlen(cfg->source),
             " (context %s)", name);
    if (load_cluster(cfg, docs, cluster, err, errcap) < 0)
        return -1;
    return user ? load_user(cfg, docs, user, err, errcap) : 0;
}

static void config_init(struct kube_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    pthread_mutex_init(&cfg->token_lock, NULL);
}

int kubeconfig_load_files(struct kube_config *cfg, const char *paths, const char *context,
                          char *err, size_t errcap)
{
    struct kc_docs docs = {.n = 0};
    char list[4096];
    int rc = -1;
    config_init(cfg);
    snprintf(list, sizeof list, "%s", paths);
    snprintf(cfg->source, sizeof cfg->source, "kubeconfig %s", paths);
    char *save = NULL;
    for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        if (docs.n == KC_FILES_MAX) {
            sp_fail(err, errcap, "kubeconfig: more than %d files", KC_FILES_MAX);
            goto out;
        }
        if (docs_load_one(&docs, p, err, errcap) < 0)
            goto out;
    }
    if (docs.n == 0) {
        sp_fail(err, errcap, "kubeconfig %s: no configuration found", paths);
        goto out;
    }
    rc = load_from_docs(cfg, &docs, context, err, errcap);
out:
    docs_free(&docs);
    if (rc < 0)
        kubeconfig_free(cfg);
    return rc;
}

int kubeconfig_in_cluster(struct kube_config *cfg, const char *sa_dir, const char *host,
                          const char *port, char *err, size_t errcap)
{
    char path[PATH_MAX];
    config_init(cfg);
    cfg->in_cluster = true;
    snprintf(cfg->source, sizeof cfg->source, "in-cluster (%s)", sa_dir);
    if (!host || !*host || !port || !*port) {
        sp_fail(err, errcap, "in-cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
        goto fail;
    }
    /* An IPv6 service address needs brackets in the URL. */
    const char *fmt = strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s";
    size_t n = (size_t)snprintf(NULL, 0, fmt, host, port) + 1;
    if (!(cfg->server = malloc(n)))
        goto fail;
    snprintf(cfg->server, n, fmt, host, port);
    snprintf(path, sizeof path, "%s/ca.crt", sa_dir);
    if (!(cfg->ca = read_file(path, &cfg->ca_len))) {
        sp_fail(err, errcap, "in-cluster: %s: %s", path, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/token", sa_dir);
    if (!(cfg->token_file = strdup(path)))
        goto fail;
    char *token = read_file(path, NULL);
    if (!token) {
        sp_fail(err, errcap, "in-cluster: %s: %s", path, strerror(errno));
        goto fail;
    }
    free(token);
    snprintf(path, sizeof path, "%s/namespace", sa_dir);
    char *ns = read_file(path, NULL);
    if (ns) {
        ns[strcspn(ns, " \r\n")] = '\0';
        snprintf(cfg->namespace, sizeof cfg->namespace, "%s", ns);
        free(ns);
    }
    return 0;
fail:
    kubeconfig_free(cfg);
    return -1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int kubeconfig_load(struct kube_config *cfg, const char *path, const char *context, char *err,
                    size_t errcap)
{
    char home_cfg[PATH_MAX];
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
    if (path && *path)
        return kubeconfig_load_files(cfg, path, context, err, errcap);
    if (env && *env)
        return kubeconfig_load_files(cfg, env, context, err, errcap);
    snprintf(home_cfg, sizeof home_cfg, "%s/.kube/config", home ? home : "");
    if (home && file_exists(home_cfg))
        return kubeconfig_load_files(cfg, home_cfg, context, err, errcap);
    return kubeconfig_in_cluster(cfg, KUBECONFIG_SA_DIR, getenv("KUBERNETES_SERVICE_HOST"),
                                 getenv("KUBERNETES_SERVICE_PORT"), err, errcap);
}

void kubeconfig_token(struct kube_config *cfg, char *buf, size_t cap)
{
    pthread_mutex_lock(&cfg->token_lock);
    double now = sp_now();
    if (cfg->token_file && (!cfg->token || now - cfg->token_read_at > TOKEN_REREAD_SECONDS)) {
        char *t = read_file(cfg->token_file, NULL);
        if (t) { /* on a failed re-read keep the old token: it may still be valid */
            t[strcspn(t, "\r\n")] = '\0';
            free(cfg->token);
            cfg->token = t;
            cfg->token_read_at = now;
        }
    }
    snprintf(buf, cap, "%s", cfg->token ? cfg->token : "");
    pthread_mutex_unlock(&cfg->token_lock);
}

void kubeconfig_free(struct kube_config *cfg)
{
    free(cfg->server);
    free(cfg->ca);
    free(cfg->cert);
    free(cfg->key);
    free(cfg->token);
    free(cfg->token_file);
    pthread_mutex_destroy(&cfg->token_lock);
    memset(cfg, 0, sizeof *cfg);
}
