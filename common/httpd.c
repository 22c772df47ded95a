/* httpd.c - libmicrohttpd helpers and the operational endpoints. See httpd.h. */
#include "httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static sp_ready_fn *ready_fn;
static void *ready_arg;
static _Atomic int stopping;

void sp_admin_set_ready(sp_ready_fn *fn, void *arg)
{
    ready_fn = fn;
    ready_arg = arg;
}

void sp_admin_set_stopping(void)
{
    atomic_store(&stopping, 1);
}

enum MHD_Result sp_http_respond(struct MHD_Connection *conn, unsigned status,
                                const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_ready(struct MHD_Connection *conn)
{
    char why[256] = "ready", body[320];
    int ok = !atomic_load(&stopping);
    if (!ok)
        snprintf(why, sizeof why, "shutting down");
    else if (ready_fn)
        ok = ready_fn(ready_arg, why, sizeof why);
    int n = snprintf(body, sizeof body, "%s: %s\n", ok ? "ok" : "not ready", why);
    return sp_http_respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                           body, (size_t)n);
}

static enum MHD_Result answer_metrics(struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = sp_metrics_render(&len);
    if (!text)
        return sp_http_respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "oom\n", 4);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int sp_admin_route(struct MHD_Connection *conn, const char *method, const char *url,
                   enum MHD_Result *ret)
{
    int health = !strcmp(url, "/healthz"), ready = !strcmp(url, "/readyz"),
        metrics = !strcmp(url, "/metrics");
    if (!health && !ready && !metrics)
        return 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        *ret = sp_http_respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                               "{\"error\":\"method not allowed\"}", 30);
    else if (health)
        *ret = sp_http_respond(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3);
    else if (ready)
        *ret = answer_ready(conn);
    else
        *ret = answer_metrics(conn);
    return 1;
}

static enum MHD_Result admin_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version, const char *upload,
                                     size_t *upload_size, void **state)
{
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)state;
    enum MHD_Result ret;
    if (sp_admin_route(conn, method, url, &ret))
        return ret;
    return sp_http_respond(conn, MHD_HTTP_NOT_FOUND, "application/json",
                           "{\"error\":\"not found\"}", 21);
}

int sp_sockaddr(struct sockaddr_in *addr, const char *bind_addr, uint16_t port)
{
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons(port);
    return inet_pton(AF_INET, bind_addr, &addr->sin_addr) == 1 ? 0 : -1;
}

struct MHD_Daemon *sp_admin_start(const char *bind_addr, uint16_t port)
{
    struct sockaddr_in addr;
    if (sp_sockaddr(&addr, bind_addr, port) < 0) {
        sp_error("admin_listen_failed", "bad bind address '%s'", bind_addr);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, port, NULL, NULL,
        admin_handler, NULL, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_LIMIT, 64u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!d)
        sp_error("admin_listen_failed", "cannot listen on %s:%u", bind_addr, (unsigned)port);
    return d;
}
