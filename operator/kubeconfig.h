/* kubeconfig.h - where the API server is and how to authenticate to it.
 *
 * Found as kubectl finds it: an explicit path (--kubeconfig), else $KUBECONFIG (a ':'-separated
 * list, merged: the first file that names an entry wins), else ~/.kube/config if it exists,
 * else the in-cluster service account (token, CA and namespace under
 * /var/run/secrets/kubernetes.io/serviceaccount, host from KUBERNETES_SERVICE_HOST/PORT).
 * Supported credentials: client certificate and key (data or file), bearer token (inline or
 * tokenFile). exec and auth-provider plugins are refused with a clear error. */
#ifndef OP_KUBECONFIG_H
#define OP_KUBECONFIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define KUBECONFIG_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kube_config {
    char *server; /* "https://host:port", no trailing slash */
    char *ca;     /* PEM, or NULL for the system CAs */
    size_t ca_len;
    char *cert; /* client certificate PEM, or NULL */
    size_t cert_len;
    char *key; /* client key PEM, or NULL */
    size_t key_len;
    char *token_file; /* re-read now and then (rotated service account tokens) */
    bool insecure;    /* insecure-skip-tls-verify */
    bool in_cluster;
    char namespace[64]; /* the context's or the service account's namespace, or "" */
    char source[512];   /* for logs: which file and context, or "in-cluster" */
    pthread_mutex_t token_lock;
    char *token;          /* bearer token or NULL; read through kubeconfig_token() */
    double token_read_at; /* sp_now() of the last token_file read */
};

/* Resolves and loads the configuration as described above. `path` may be NULL (then
 * $KUBECONFIG...), `context` NULL for current-context. Returns 0, or -1 with `err` set.
 * On success the caller releases it with kubeconfig_free(). */
int kubeconfig_load(struct kube_config *cfg, const char *path, const char *context, char *err,
                    size_t errcap);

/* Loads one or more kubeconfig files (':'-separated, merged). Same contract as above. */
int kubeconfig_load_files(struct kube_config *cfg, const char *paths, const char *context,
                          char *err, size_t errcap);

/* In-cluster configuration from `sa_dir` (token, ca.crt, namespace) and `host`/`port`. */
int kubeconfig_in_cluster(struct kube_config *cfg, const char *sa_dir, const char *host,
                          const char *port, char *err, size_t errcap);

/* Copies the current bearer token into buf ("" if none); re-reads token_file at most once a
 * minute. Thread-safe. */
void kubeconfig_token(struct kube_config *cfg, char *buf, size_t cap);

void kubeconfig_free(struct kube_config *cfg);

/* Decodes base64 (whitespace ignored) into a new NUL-terminated buffer; NULL on bad input. */
char *kubeconfig_b64decode(const char *in, size_t *out_len);

#endif
