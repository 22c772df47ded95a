/* conn_guard.c - limits and deadlines for client connections. See conn_guard.h.
 *
 * Why shutdown(2) from the sweeper is safe: MHD reports a connection CLOSED (sp_guard_notify)
 * before it closes the socket, and both the sweeper's walk and the CLOSED handler hold the
 * guard's lock, so the sweeper never touches a descriptor MHD has closed (and the kernel may
 * have handed to someone else). shutdown() only ends the TCP stream; MHD's poll then reports
 * the socket readable, reads end of file, and closes the connection as if the client had. */
#include "conn_guard.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

enum phase {
    PHASE_HEADERS, /* waiting for a request's line and headers */
    PHASE_BODY,    /* headers in, body arriving */
    PHASE_OWED,    /* sale forwarded, answer owed: never swept */
    PHASE_DROPPED, /* shut down by the sweeper */
};

struct guard_conn {
    struct guard_conn *prev, *next;
    struct sp_guard *g;
    int fd;
    uint32_t addr; /* IPv4, network order; 0 when not IPv4 (not counted) */
    enum sp_guard_verdict admission;
    enum phase phase;
    double deadline; /* sp_now() seconds; 0: none */
};

/* Open connections per address: linear probing, count 0 = empty slot. */
struct addr_slot {
    uint32_t addr;
    unsigned count;
};

struct sp_guard {
    struct sp_guard_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t sweeper;
    bool sweeping, stopping;
    double sweep_period;
    struct guard_conn *conns; /* every open connection */
    unsigned open, admitted;
    struct addr_slot *slots;
    size_t slot_mask;
};

static struct sp_metric *m_excess_total, *m_excess_addr, *m_refused_addr, *m_dropped_headers,
    *m_dropped_body;

static double open_value(void *arg)
{
    struct sp_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    unsigned n = g->open;
    pthread_mutex_unlock(&g->lock);
    return n;
}

static void metrics_register(struct sp_guard *g)
{
    sp_gauge_fn_new("sp_http_connections", NULL, "Open client connections.", open_value, g);
    m_excess_total = sp_counter_new("sp_http_connections_refused_total", "limit=\"total\"",
                                    "Client connections refused: answered 503 (total, address) "
                                    "or closed at accept (address_hard).");
    m_excess_addr = sp_counter_new("sp_http_connections_refused_total", "limit=\"address\"", NULL);
    m_refused_addr = sp_counter_new("sp_http_connections_refused_total", "limit=\"address_hard\"",
                                    NULL);
    m_dropped_headers = sp_counter_new("sp_http_connections_timed_out_total", "phase=\"headers\"",
                                       "Client connections closed for sending a request too "
                                       "slowly, by the part that was late.");
    m_dropped_body = sp_counter_new("sp_http_connections_timed_out_total", "phase=\"body\"", NULL);
}

/* --- open connections per address --- */

static size_t slot_of(const struct sp_guard *g, uint32_t addr)
{
    size_t i = (size_t)((addr * 2654435761u) & g->slot_mask);
    while (g->slots[i].count && g->slots[i].addr != addr)
        i = (i + 1) & g->slot_mask;
    return i;
}

static unsigned addr_count(const struct sp_guard *g, uint32_t addr)
{
    return addr ? g->slots[slot_of(g, addr)].count : 0;
}

/* The table has twice as many slots as MHD may hold connections, so it never fills. */
static void addr_add(struct sp_guard *g, uint32_t addr)
{
    if (!addr)
        return;
    struct addr_slot *s = &g->slots[slot_of(g, addr)];
    s->addr = addr;
    s->count++;
}

/* Decrements; an emptied slot is filled by shifting back the entries probed past it. */
static void addr_del(struct sp_guard *g, uint32_t addr)
{
    if (!addr)
        return;
    size_t i = slot_of(g, addr);
    if (!g->slots[i].count || --g->slots[i].count)
        return;
    for (size_t j = (i + 1) & g->slot_mask; g->slots[j].count; j = (j + 1) & g->slot_mask) {
        size_t home = (size_t)((g->slots[j].addr * 2654435761u) & g->slot_mask);
        /* Entry j may move to the hole i unless its home lies cyclically in (i, j]. */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        g->slots[i] = g->slots[j];
        g->slots[j].count = 0;
        i = j;
    }
}

/* --- the sweeper --- */

static void *sweep(void *arg)
{
    struct sp_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        double now = sp_now();
        for (struct guard_conn *c = g->conns; c; c = c->next) {
            if (c->phase > PHASE_BODY || !c->deadline || now < c->deadline)
                continue;
            sp_counter_add(c->phase == PHASE_HEADERS ? m_dropped_headers : m_dropped_body, 1);
            c->phase = PHASE_DROPPED;
            shutdown(c->fd, SHUT_RDWR);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long ns = until.tv_nsec + (long)(g->sweep_period * 1e9);
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* --- life cycle --- */

unsigned sp_guard_hard_limit(const struct sp_guard_config *cfg)
{
    unsigned room = cfg->max_connections / 4;
    return cfg->max_connections + (room < 64 ? 64 : room);
}

struct sp_guard *sp_guard_new(const struct sp_guard_config *cfg)
{
    struct sp_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = *cfg;
    size_t slots = 16;
    while (slots < 2 * (size_t)sp_guard_hard_limit(cfg))
        slots *= 2;
    g->slots = calloc(slots, sizeof *g->slots);
    g->slot_mask = slots - 1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &ca);
    pthread_condattr_destroy(&ca);
    /* A tenth of the shortest timeout: a slow client is dropped at most 10% late. */
    unsigned shortest = cfg->header_timeout_ms;
    if (!shortest || (cfg->body_timeout_ms && cfg->body_timeout_ms < shortest))
        shortest = cfg->body_timeout_ms;
    g->sweep_period = shortest / 10 < 10 ? 0.01 : shortest / 10 > 500 ? 0.5 : shortest / 1e4;
    if (!g->slots || (shortest && pthread_create(&g->sweeper, NULL, sweep, g) != 0)) {
        sp_error("guard_failed", "cannot start the connection guard");
        sp_guard_free(g);
        return NULL;
    }
    g->sweeping = shortest != 0;
    metrics_register(g);
    return g;
}

void sp_guard_free(struct sp_guard *g)
{
    if (!g)
        return;
    if (g->sweeping) {
        pthread_mutex_lock(&g->lock);
        g->stopping = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->sweeper, NULL);
    }
    while (g->conns) { /* only if MHD was not stopped first */
        struct guard_conn *c = g->conns;
        g->conns = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g->slots);
    free(g);
}

/* --- MHD callbacks --- */

static uint32_t ipv4_of(const struct sockaddr *addr, socklen_t len)
{
    if (!addr || addr->sa_family != AF_INET || len < (socklen_t)sizeof(struct sockaddr_in))
        return 0;
    return ((const struct sockaddr_in *)(const void *)addr)->sin_addr.s_addr;
}

enum MHD_Result sp_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct sp_guard *g = cls;
    if (!g->cfg.max_per_addr)
        return MHD_YES;
    uint32_t ip = ipv4_of(addr, addrlen);
    pthread_mutex_lock(&g->lock);
    bool refuse = addr_count(g, ip) >= 2 * g->cfg.max_per_addr;
    pthread_mutex_unlock(&g->lock);
    if (refuse)
        sp_counter_add(m_refused_addr, 1);
    return refuse ? MHD_NO : MHD_YES;
}

static void conn_started(struct sp_guard *g, struct MHD_Connection *conn, void **socket_context)
{
    struct guard_conn *c = calloc(1, sizeof *c);
    *socket_context = c;
    if (!c)
        return; /* sp_guard_headers answers such a connection as excess */
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn,
                                                                 MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ad = MHD_get_connection_info(
        conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    c->g = g;
    c->fd = fd ? fd->connect_fd : -1;
    c->addr = ad ? ipv4_of(ad->client_addr, sizeof(struct sockaddr_in)) : 0;
    c->phase = PHASE_HEADERS;
    c->deadline = g->cfg.header_timeout_ms ? sp_now() + g->cfg.header_timeout_ms / 1e3 : 0;
    pthread_mutex_lock(&g->lock);
    if (g->admitted >= g->cfg.max_connections)
        c->admission = SP_GUARD_EXCESS_TOTAL;
    else if (g->cfg.max_per_addr && addr_count(g, c->addr) >= g->cfg.max_per_addr)
        c->admission = SP_GUARD_EXCESS_ADDR;
    else
        g->admitted++;
    addr_add(g, c->addr);
    g->open++;
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    pthread_mutex_unlock(&g->lock);
}

static void conn_closed(struct sp_guard *g, struct guard_conn *c)
{
    pthread_mutex_lock(&g->lock);
    if (c->admission == SP_GUARD_OK)
        g->admitted--;
    addr_del(g, c->addr);
    g->open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void sp_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        conn_started(cls, conn, socket_context);
    else if (*socket_context)
        conn_closed(cls, *socket_context);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        *socket_context = NULL;
}

/* --- from the request handler --- */

static struct guard_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(conn,
                                                                MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

enum sp_guard_verdict sp_guard_headers(struct MHD_Connection *conn)
{
    struct guard_conn *c = conn_of(conn);
    if (!c)
        return SP_GUARD_EXCESS_TOTAL;
    struct sp_guard *g = c->g;
    pthread_mutex_lock(&g->lock);
    enum sp_guard_verdict v = c->phase == PHASE_DROPPED ? SP_GUARD_DROPPED : c->admission;
    if (v == SP_GUARD_OK) {
        c->phase = PHASE_BODY;
        c->deadline = g->cfg.body_timeout_ms ? sp_now() + g->cfg.body_timeout_ms / 1e3 : 0;
    }
    pthread_mutex_unlock(&g->lock);
    if (v == SP_GUARD_EXCESS_TOTAL || v == SP_GUARD_EXCESS_ADDR)
        sp_counter_add(v == SP_GUARD_EXCESS_TOTAL ? m_excess_total : m_excess_addr, 1);
    return v;
}

bool sp_guard_body_late(struct MHD_Connection *conn)
{
    /* The deadline is written only on this connection's thread: no lock needed to read it. */
    struct guard_conn *c = conn_of(conn);
    if (!c || !c->deadline || sp_now() < c->deadline)
        return false;
    pthread_mutex_lock(&c->g->lock);
    bool first = c->phase != PHASE_DROPPED; /* else the sweeper counted it */
    c->phase = PHASE_DROPPED;
    pthread_mutex_unlock(&c->g->lock);
    if (first)
        sp_counter_add(m_dropped_body, 1);
    return true;
}

bool sp_guard_forward(struct MHD_Connection *conn)
{
    struct guard_conn *c = conn_of(conn);
    if (!c)
        return true;
    pthread_mutex_lock(&c->g->lock);
    bool ok = c->phase != PHASE_DROPPED;
    if (ok)
        c->phase = PHASE_OWED;
    pthread_mutex_unlock(&c->g->lock);
    return ok;
}

void sp_guard_request_done(struct MHD_Connection *conn)
{
    struct guard_conn *c = conn_of(conn);
    if (!c)
        return;
    struct sp_guard *g = c->g;
    pthread_mutex_lock(&g->lock);
    if (c->phase != PHASE_DROPPED) {
        c->phase = PHASE_HEADERS;
        /* An idle timeout of 0 keeps an idle connection for ever: no deadline then. */
        c->deadline = g->cfg.header_timeout_ms && g->cfg.idle_timeout_s
                          ? sp_now() + g->cfg.idle_timeout_s + g->cfg.header_timeout_ms / 1e3
                          : 0;
    }
    pthread_mutex_unlock(&g->lock);
}
