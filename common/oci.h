/* oci.h - a small OCI Distribution Spec client: pulls one layer of an artifact by media type.
 *
 * GET /v2/<repository>/manifests/<tag|digest> (Accept: the OCI image manifest), picks the layer
 * of the wanted media type, GET /v2/<repository>/blobs/<digest>, and checks the sha256 digests
 * of both (the manifest against the digest asked for or the registry's Docker-Content-Digest,
 * the blob against its descriptor). Authentication follows the registry's 401 challenge:
 * `Basic` sends the credentials; `Bearer realm=...,service=...` fetches a token from the realm
 * (with the credentials, if any) for `repository:<repo>:pull` and retries with it; tokens are
 * kept until they expire. Credentials come from a docker config.json ("auths", the format of
 * a Kubernetes dockerconfigjson pull Secret and of podman/ORAS) or are given directly. TLS is
 * always verified, against `ca_file` when one is given. HTTP is libcurl, JSON cJSON, sha256
 * OpenSSL.
 *
 * A client is used by one thread at a time (sp_oci_client_cancel excepted); it keeps its
 * connection and token between pulls. */
#ifndef SP_OCI_H
#define SP_OCI_H

#include <stddef.h>

#define SP_OCI_DIGEST_MAX 72                   /* "sha256:" + 64 hex digits + NUL, rounded up */
#define SP_OCI_MANIFEST_MAX (4u * 1024 * 1024) /* the spec's suggested manifest size limit */

struct sp_oci_options {
    const char *ca_file;   /* PEM CA certificate(s) to trust; NULL or "" for the system's */
    const char *auth_file; /* docker config.json; NULL or "" for none */
    const char *username;  /* used when the auth file has no entry for the registry */
    const char *password;
    long timeout_ms; /* per HTTP request; 0 for 10 s */
};

struct sp_oci_client;

struct sp_oci_client *sp_oci_client_new(const struct sp_oci_options *o, char *err, size_t cap);
void sp_oci_client_free(struct sp_oci_client *c);
/* From any thread: the pull under way (and every later one) fails at once. */
void sp_oci_client_cancel(struct sp_oci_client *c);

/* One layer's bytes, verified. */
struct sp_oci_blob {
    char *data; /* NUL-terminated for convenience; `len` bytes */
    size_t len;
    char digest[SP_OCI_DIGEST_MAX]; /* the layer's */
    char manifest_digest[SP_OCI_DIGEST_MAX];
};

/* Pulls the layer of `media_type` of the artifact `reference` ("host[:port]/repo/sitory:tag"
 * or "...@sha256:<hex>"; no tag means "latest"), at most `max_len` bytes. 0, or -1 with the
 * reason in `err` (the HTTP status and the registry's own error text where there is one). */
int sp_oci_pull_layer(struct sp_oci_client *c, const char *reference, const char *media_type,
                      size_t max_len, struct sp_oci_blob *out, char *err, size_t cap);
void sp_oci_blob_free(struct sp_oci_blob *b);

/* ---- the pieces, exposed for the unit tests ---- */

struct sp_oci_ref {
    char registry[256]; /* host[:port] */
    char repository[256];
    char reference[128]; /* the tag, or the digest */
    int by_digest;
};
/* 0, or -1 with the reason: the registry host must be named (it has a '.' or ':' or is
 * "localhost"); a repository is lowercase [a-z0-9._/-]; a tag [A-Za-z0-9_.-], at most 128. */
int sp_oci_ref_parse(const char *text, struct sp_oci_ref *ref, char *err, size_t cap);

struct sp_oci_challenge {
    char scheme[16]; /* "Basic" or "Bearer" (as sent) */
    char realm[512];
    char service[256];
    char scope[256];
};
/* Parses a WWW-Authenticate value (RFC 7235 auth-params, quoted or not). 0, or -1. */
int sp_oci_parse_challenge(const char *header, struct sp_oci_challenge *ch);

/* The credentials for `registry` in a docker config.json text. 1 when found, 0 when the file
 * has none for it, -1 with the reason when the file is not a valid config. */
int sp_oci_auth_lookup(const char *config_json, const char *registry, char *user, size_t user_cap,
                       char *password, size_t password_cap, char *err, size_t cap);

/* The layer of `media_type` in an OCI image manifest: its digest and size. 0, or -1. */
int sp_oci_manifest_layer(const char *manifest, size_t len, const char *media_type,
                          char digest[SP_OCI_DIGEST_MAX], long long *size, char *err, size_t cap);

/* "sha256:<hex>" of `len` bytes. */
void sp_oci_sha256(const void *data, size_t len, char out[SP_OCI_DIGEST_MAX]);

#endif
