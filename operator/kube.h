/* kube.h - a small Kubernetes REST client on libcurl and cJSON.
 *
 * One struct kube_client per thread (a curl easy handle is not shareable); it keeps its
 * connection alive between calls. Calls return parsed JSON on 2xx; otherwise NULL with the HTTP
 * status in *status (0: no answer) and the API server's Status message (or curl's error) in
 * `err`. Replies are bounded (KUBE_REPLY_MAX); a bigger one is an error, never a realloc storm. */
#ifndef OP_KUBE_H
#define OP_KUBE_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>

#include "kubeconfig.h"

#define KUBE_REPLY_MAX (16 * 1024 * 1024)
#define KUBE_LINE_MAX (8 * 1024 * 1024) /* one watch event */
#define KUBE_ERR_MAX 512

/* Accept header for metadata-only lists and watches (PartialObjectMetadata). */
#define KUBE_ACCEPT_META                                                                           \
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
#define KUBE_ACCEPT_META_LIST                                                                      \
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

struct kube_client {
    struct kube_config *cfg;
    CURL *curl;
    const atomic_bool *stop;       /* when set, streams (watches) end at once */
    const atomic_bool *write_gate; /* when set and false, writes are refused (not the leader) */
    long timeout_ms;               /* per call; streams set their own */
    char curl_err[CURL_ERROR_SIZE];
};

/* Called for each line of a stream; return 0 to go on, -1 to end the stream. */
typedef int kube_line_fn(const char *line, size_t len, void *arg);

/* `stop` may be NULL. Returns 0, or -1 when curl cannot be set up. */
int kube_client_init(struct kube_client *c, struct kube_config *cfg, const atomic_bool *stop);
void kube_client_free(struct kube_client *c);

/* The one request primitive. `body` (may be NULL) is sent as `content_type`; `accept` NULL
 * means application/json. See the file comment for the return contract. */
cJSON *kube_call(struct kube_client *c, const char *method, const char *path, const char *accept,
                 const char *content_type, const cJSON *body, long *status, char *err,
                 size_t errcap);

cJSON *kube_get(struct kube_client *c, const char *path, long *status, char *err, size_t errcap);
/* Server-side apply of `obj` at the object path `path` (PATCH application/apply-patch+yaml,
 * our field manager, force=true). Append "/status" to the path for the status subresource. */
cJSON *kube_apply(struct kube_client *c, const char *path, const cJSON *obj, long *status,
                  char *err, size_t errcap);
cJSON *kube_create(struct kube_client *c, const char *path, const cJSON *obj, long *status,
                   char *err, size_t errcap);
cJSON *kube_update(struct kube_client *c, const char *path, const cJSON *obj, long *status,
                   char *err, size_t errcap);
/* DELETE with background propagation; 404 counts as success. Returns 0 or -1. */
int kube_delete(struct kube_client *c, const char *path, char *err, size_t errcap);

/* GET `path` and hand every newline-terminated line of the body to `fn` until the server ends
 * the stream, `fn` returns -1 or *stop is set. Returns 0 when the stream ended normally (status
 * 200), else -1 with *status and err set (*status 0 for transport errors and stop). */
int kube_stream(struct kube_client *c, const char *path, const char *accept, long timeout_s,
                kube_line_fn *fn, void *arg, long *status, char *err, size_t errcap);

/* Percent-encodes `in` for a query parameter value. Returns the length, -1 if too long. */
int kube_escape(char *buf, size_t cap, const char *in);

#endif
