/* valkey.h - a blocking hiredis connection to Valkey from a redis:// URL.
 *
 * URL: redis://[[user]:password@]host[:port][/db], host a name, an IPv4 address or an IPv6
 * address in brackets; port 6379 and db 0 by default; user and password may be %-encoded.
 * A password in the URL wins over the one the caller passes (VALKEY_PASSWORD in our programs).
 * TLS (rediss://) is refused: hiredis 0.14 has none. */
#ifndef SP_VALKEY_H
#define SP_VALKEY_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct sp_valkey_url {
    char host[256];
    int port;
    char user[128];
    char password[256];
    int db;
};

/* Fills `out`; -1 with the reason in `err` when the URL is not of the form above. */
int sp_valkey_url_parse(const char *url, struct sp_valkey_url *out, char *err, size_t errlen);

/* Connects, authenticates (AUTH [user] password when a password is known) and selects the db.
 * `timeout_s` bounds the connect and every later command. Returns NULL with the reason in
 * `err` (which never holds the password). The caller frees the context with redisFree(). */
redisContext *sp_valkey_connect(const char *url, const char *password, double timeout_s, char *err,
                                size_t errlen);

/* 1 when `r` is an error reply whose text starts with `prefix` (e.g. "NOSCRIPT"). */
int sp_valkey_is_error(const redisReply *r, const char *prefix);

/* Describes why a command gave no usable reply: the context's I/O error, an error reply, or
 * `expected` when the reply had the wrong shape. Writes into `err`; returns `err`. */
const char *sp_valkey_strerror(const redisContext *c, const redisReply *r, const char *expected,
                               char *err, size_t errlen);

#endif
