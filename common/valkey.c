/* valkey.c - see valkey.h. */
#include "valkey.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies `len` bytes of `src` into `dst` (capacity `cap`), decoding %XX. */
static int percent_decode(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(src[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= cap)
            return -1;
        dst[n++] = c;
    }
    dst[n] = '\0';
    return 0;
}

static int parse_userinfo(const char *s, size_t len, struct sp_valkey_url *u, char *err,
                          size_t errlen)
{
    const char *colon = memchr(s, ':', len);
    size_t ulen = colon ? (size_t)(colon - s) : len;
    if (percent_decode(u->user, sizeof u->user, s, ulen) < 0)
        return sp_fail(err, errlen, "bad or too long user name in the Valkey URL");
    if (colon && percent_decode(u->password, sizeof u->password, colon + 1, len - ulen - 1) < 0)
        return sp_fail(err, errlen, "bad or too long password in the Valkey URL");
    return 0;
}

static int parse_number(const char *s, size_t len, long min, long max, long *out)
{
    char buf[16], *end;
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* host[:port] or [v6]:port, `len` bytes. */
static int parse_hostport(const char *s, size_t len, struct sp_valkey_url *u, char *err,
                          size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t hlen = len;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return sp_fail(err, errlen, "unclosed '[' in the Valkey URL");
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < s + len && close[1] == ':')
            port = close + 2;
        else if (close + 1 != s + len)
            return sp_fail(err, errlen, "junk after ']' in the Valkey URL");
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (hlen == 0 || hlen >= sizeof u->host)
        return sp_fail(err, errlen, "missing or too long host in the Valkey URL");
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    long p = 6379;
    if (port && parse_number(port, (size_t)(s + len - port), 1, 65535, &p) < 0)
        return sp_fail(err, errlen, "bad port in the Valkey URL");
    u->port = (int)p;
    return 0;
}

int sp_valkey_url_parse(const char *url, struct sp_valkey_url *u, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    memset(u, 0, sizeof *u);
    if (!strncasecmp(url, "rediss://", 9))
        return sp_fail(err, errlen, "rediss:// (TLS) is not supported");
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0)
        return sp_fail(err, errlen, "the Valkey URL must start with redis://");
    const char *rest = url + sizeof scheme - 1, *at = strrchr(rest, '@');
    if (at && parse_userinfo(rest, (size_t)(at - rest), u, err, errlen) < 0)
        return -1;
    const char *hp = at ? at + 1 : rest, *slash = strchr(hp, '/');
    size_t hplen = slash ? (size_t)(slash - hp) : strlen(hp);
    if (parse_hostport(hp, hplen, u, err, errlen) < 0)
        return -1;
    long db = 0;
    if (slash && slash[1] && parse_number(slash + 1, strlen(slash + 1), 0, 1 << 20, &db) < 0)
        return sp_fail(err, errlen, "bad database number in the Valkey URL");
    u->db = (int)db;
    return 0;
}

int sp_valkey_is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           strncmp(r->str, prefix, strlen(prefix)) == 0;
}

const char *sp_valkey_strerror(const redisContext *c, const redisReply *r, const char *expected,
                               char *err, size_t errlen)
{
    if (!r)
        snprintf(err, errlen, "%s", c && c->err ? c->errstr : "no reply");
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "%.*s", (int)r->len, r->str);
    else
        snprintf(err, errlen, "unexpected reply, wanted %s", expected);
    return err;
}

/* Runs one command whose reply must be a status or integer; -1 with the reason otherwise. */
static int command_ok(redisContext *c, int argc, const char **argv, const char *what, char *err,
                      size_t errlen)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    int ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_INTEGER);
    if (!ok) {
        char why[160];
        sp_fail(err, errlen, "%s: %s", what, sp_valkey_strerror(c, r, "OK", why, sizeof why));
    }
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int login(redisContext *c, const struct sp_valkey_url *u, const char *password, char *err,
                 size_t errlen)
{
    const char *pw = u->password[0] ? u->password : password;
    if (pw && *pw) {
        const char *argv[3] = {"AUTH", u->user, pw};
        int argc = u->user[0] ? 3 : 2;
        if (!u->user[0])
            argv[1] = pw;
        if (command_ok(c, argc, argv, "AUTH", err, errlen) < 0)
            return -1;
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        if (command_ok(c, 2, argv, "SELECT", err, errlen) < 0)
            return -1;
    }
    return 0;
}

redisContext *sp_valkey_connect(const char *url, const char *password, double timeout_s, char *err,
                                size_t errlen)
{
    struct sp_valkey_url u;
    if (sp_valkey_url_parse(url, &u, err, errlen) < 0)
        return NULL;
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    redisContext *c = redisConnectWithTimeout(u.host, u.port, tv);
    if (!c) {
        sp_fail(err, errlen, "out of memory connecting to %s:%d", u.host, u.port);
        goto fail;
    }
    if (c->err) {
        sp_fail(err, errlen, "connect to %s:%d: %s", u.host, u.port, c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        sp_fail(err, errlen, "socket options on %s:%d: %s", u.host, u.port, c->errstr);
        goto fail;
    }
    if (login(c, &u, password, err, errlen) < 0)
        goto fail;
    explicit_bzero(u.password, sizeof u.password);
    return c;
fail:
    explicit_bzero(u.password, sizeof u.password);
    if (c)
        redisFree(c);
    return NULL;
}
