/* log.c - structured JSON logs. See log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "salespipeline";
static enum sp_log_level log_min = SP_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sp_log_init(const char *component, enum sp_log_level min_level)
{
    log_component = component;
    log_min = min_level;
}

int sp_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

int sp_log_enabled(enum sp_log_level level)
{
    return level >= log_min;
}

int sp_fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

size_t sp_json_escape(char *dst, size_t len, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    for (; *src && len + 7 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '"' || c == '\\') {
            dst[len++] = '\\';
            dst[len++] = (char)c;
        } else if (c < 0x20) {
            memcpy(dst + len, "\\u00", 4);
            dst[len + 4] = hex[c >> 4];
            dst[len + 5] = hex[c & 15];
            len += 6;
        } else {
            dst[len++] = (char)c;
        }
    }
    dst[len] = '\0';
    return len;
}

void sp_log(enum sp_log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[1024], line[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = (size_t)snprintf(
        line, sizeof line,
        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\","
        "\"event\":\"",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        ts.tv_nsec / 1000000, level_names[level], log_component);
    n = sp_json_escape(line, n, sizeof line - 16, event);
    n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
    n = sp_json_escape(line, n, sizeof line - 4, msg);
    memcpy(line + n, "\"}\n", 4);
    n += 3;
    /* One write per line so that lines from several threads never interleave. */
    if (write(STDOUT_FILENO, line, n) < 0)
        return;
}

int sp_ratelog_allow(struct sp_ratelog *r, unsigned long *suppressed)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long next = atomic_load(&r->next_ms);
    if (now < next || !atomic_compare_exchange_strong(&r->next_ms, &next, now + 1000)) {
        atomic_fetch_add(&r->suppressed, 1);
        return 0;
    }
    *suppressed = atomic_exchange(&r->suppressed, 0);
    return 1;
}
