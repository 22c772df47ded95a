/* config.h - one table of options per program: default, then environment, then flags.
 *
 * `--help` lists every option with its environment variable and default. Values are checked
 * when parsed; a bad one is an error naming the flag, never a silent default. */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

/* SP_OPT_LOG_LEVEL is a string that must name a level of log.h (debug, info, warn, error). */
enum sp_opt_type { SP_OPT_STRING, SP_OPT_INT, SP_OPT_DOUBLE, SP_OPT_BOOL, SP_OPT_LOG_LEVEL };

struct sp_option {
    const char *name;      /* flag without the leading "--" */
    const char *env;       /* environment variable, or NULL */
    enum sp_opt_type type;
    void *target;          /* const char ** (string, log level), long *, double *, int * (bool) */
    const char *def;       /* default as text; NULL for an empty string */
    const char *help;
    double min, max;       /* SP_OPT_INT and SP_OPT_DOUBLE: the values allowed, both included */
};

/* The last two fields of an option: its range, or none. */
#define SP_RANGE(lo, hi) (lo), (hi)
#define SP_ANY 1, 0        /* min > max: no range */

/* The --log-level option every program has; `target` is a const char **. */
#define SP_OPTION_LOG_LEVEL(target)                                                          \
    {"log-level", "LOG_LEVEL", SP_OPT_LOG_LEVEL, (target), "info", "debug, info, warn or error", \
     SP_ANY}

/* Returns 0 to go on, 1 when --help or --version was printed (exit 0), -1 on a bad option
 * (the message is on stderr; exit 2). `opts` ends with an entry whose name is NULL. */
int sp_config_parse(const char *prog, const char *summary, const struct sp_option *opts,
                    int argc, char **argv);

#define SP_VERSION "0.1.0"

#endif
