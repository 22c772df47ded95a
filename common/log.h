/* log.h - structured JSON logs on stdout, one object per line.
 *
 * Every line carries ts, level, component and event; `msg` is free text formatted by the
 * caller. Logging is for events, never per sale at info level (see DESIGN-NOTES). */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stddef.h>

enum sp_log_level { SP_LOG_DEBUG = 0, SP_LOG_INFO, SP_LOG_WARN, SP_LOG_ERROR };

/* Set once at start-up; `component` must outlive the process (a literal). */
void sp_log_init(const char *component, enum sp_log_level min_level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int sp_log_level_parse(const char *name);
int sp_log_enabled(enum sp_log_level level);

void sp_log(enum sp_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sp_debug(ev, ...)                                                                          \
    do {                                                                                           \
        if (sp_log_enabled(SP_LOG_DEBUG))                                                          \
            sp_log(SP_LOG_DEBUG, ev, __VA_ARGS__);                                                 \
    } while (0)
#define sp_info(ev, ...) sp_log(SP_LOG_INFO, ev, __VA_ARGS__)
#define sp_warn(ev, ...) sp_log(SP_LOG_WARN, ev, __VA_ARGS__)
#define sp_error(ev, ...) sp_log(SP_LOG_ERROR, ev, __VA_ARGS__)

/* At most one line a second of a kind of event that can come in floods (a broker down, Valkey
 * down, 10,000 slow HTTP clients); thread-safe, lock-free; zero-initialise it. */
struct sp_ratelog {
    _Atomic long long next_ms;        /* earliest monotonic time of the next line */
    _Atomic unsigned long suppressed; /* lines dropped since the last one */
};
/* 1 when a line may be logged now, with *suppressed set to how many were dropped before it. */
int sp_ratelog_allow(struct sp_ratelog *r, unsigned long *suppressed);

/* Writes a formatted reason into the caller's `err` buffer (curl/hiredis style: the code
 * travels with readable text) and returns -1, so that `return sp_fail(...)` reads naturally. */
int sp_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends `src` to `dst` (capacity `cap`, NUL-terminated) as JSON string content, without
 * the quotes. Returns the new length; truncates rather than overflow. */
size_t sp_json_escape(char *dst, size_t len, size_t cap, const char *src);

#endif
