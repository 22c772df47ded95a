/* httpd.h - libmicrohttpd helpers shared by every program: responses, and the operational
 * endpoints /healthz, /readyz and /metrics.
 *
 * The api and bridge route those paths from their own request handler (sp_admin_route); the
 * writer, consumer and operator run a small daemon of their own for them (sp_admin_start). */
#ifndef SP_HTTPD_H
#define SP_HTTPD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

/* Readiness: returns 1 when ready, else 0 with a reason written to `why`. */
typedef int sp_ready_fn(void *arg, char *why, size_t cap);

void sp_admin_set_ready(sp_ready_fn *fn, void *arg);
/* Marks the process as stopping: /readyz answers 503 from then on. */
void sp_admin_set_stopping(void);

/* If `url` is /healthz, /readyz or /metrics, queues the answer, stores MHD's result in *ret
 * and returns 1; returns 0 for any other path. */
int sp_admin_route(struct MHD_Connection *conn, const char *method, const char *url,
                   enum MHD_Result *ret);

/* A daemon serving only the operational endpoints on `bind_addr` (IPv4 dotted, e.g. "0.0.0.0"
 * or "127.0.0.1"). NULL on failure, with the reason logged. */
struct MHD_Daemon *sp_admin_start(const char *bind_addr, uint16_t port);

/* Fills `addr` from an IPv4 address and port; -1 if the address does not parse. */
struct sockaddr_in;
int sp_sockaddr(struct sockaddr_in *addr, const char *bind_addr, uint16_t port);

/* Queues a response holding a copy of `body`. */
enum MHD_Result sp_http_respond(struct MHD_Connection *conn, unsigned status,
                                const char *content_type, const char *body, size_t len);

#endif
