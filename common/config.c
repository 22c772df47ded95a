/* config.c - defaults, environment, flags. See config.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int parse_bool(const char *text, int *out)
{
    if (!strcasecmp(text, "1") || !strcasecmp(text, "true") || !strcasecmp(text, "yes") ||
        !strcasecmp(text, "on"))
        *out = 1;
    else if (!strcasecmp(text, "0") || !strcasecmp(text, "false") || !strcasecmp(text, "no") ||
             !strcasecmp(text, "off") || !*text)
        *out = 0;
    else
        return -1;
    return 0;
}

static int has_range(const struct sp_option *o)
{
    return o->min <= o->max;
}

/* `v` within the option's range; otherwise an error naming where the value came from. */
static int check_range(const char *prog, const struct sp_option *o, double v, const char *text,
                       const char *origin)
{
    if (!has_range(o) || (v >= o->min && v <= o->max))
        return 0;
    fprintf(stderr, "%s: invalid %s for --%s: '%s' is not from %.15g to %.15g\n", prog, origin,
            o->name, text, o->min, o->max);
    return -1;
}

/* Stores `text` into the option's target; `origin` names where it came from for errors. */
static int option_set(const char *prog, const struct sp_option *o, const char *text,
                      const char *origin)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case SP_OPT_STRING:
        *(const char **)o->target = text;
        return 0;
    case SP_OPT_LOG_LEVEL:
        if (sp_log_level_parse(text) < 0) {
            fprintf(stderr, "%s: invalid %s for --%s: '%s' is not debug, info, warn or error\n",
                    prog, origin, o->name, text);
            return -1;
        }
        *(const char **)o->target = text;
        return 0;
    case SP_OPT_INT: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end) {
            fprintf(stderr, "%s: invalid %s for --%s: '%s' is not an integer\n", prog, origin,
                    o->name, text);
            return -1;
        }
        if (check_range(prog, o, (double)v, text, origin) < 0)
            return -1;
        *(long *)o->target = v;
        return 0;
    }
    case SP_OPT_DOUBLE: {
        double v = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(v)) {
            fprintf(stderr, "%s: invalid %s for --%s: '%s' is not a number\n", prog, origin,
                    o->name, text);
            return -1;
        }
        if (check_range(prog, o, v, text, origin) < 0)
            return -1;
        *(double *)o->target = v;
        return 0;
    }
    case SP_OPT_BOOL:
        if (parse_bool(text, (int *)o->target) < 0) {
            fprintf(stderr, "%s: invalid %s for --%s: '%s' is not a boolean\n", prog, origin,
                    o->name, text);
            return -1;
        }
        return 0;
    }
    return -1;
}

static void print_help(const char *prog, const char *summary, const struct sp_option *opts)
{
    printf("Usage: %s [OPTIONS]\n\n%s\n\nOptions (flag / environment variable / default):\n",
           prog, summary);
    for (const struct sp_option *o = opts; o->name; o++) {
        printf("  --%s%s\n", o->name, o->type == SP_OPT_BOOL ? "[=BOOL]" : "=VALUE");
        printf("        %s\n        env %s, default: %s", o->help, o->env ? o->env : "-",
               o->def && *o->def ? o->def : "(empty)");
        if (has_range(o) && (o->type == SP_OPT_INT || o->type == SP_OPT_DOUBLE))
            printf(", from %.15g to %.15g", o->min, o->max);
        printf("\n");
    }
    printf("  --help     this text\n  --version  print the version\n");
}

static const struct sp_option *option_find(const struct sp_option *opts, const char *name,
                                           size_t len)
{
    for (const struct sp_option *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int apply_defaults_and_env(const char *prog, const struct sp_option *opts)
{
    for (const struct sp_option *o = opts; o->name; o++) {
        if (option_set(prog, o, o->def ? o->def : "", "default") < 0)
            return -1;
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && option_set(prog, o, env, o->env) < 0)
            return -1;
    }
    return 0;
}

int sp_config_parse(const char *prog, const char *summary, const struct sp_option *opts,
                    int argc, char **argv)
{
    if (apply_defaults_and_env(prog, opts) < 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            print_help(prog, summary, opts);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            printf("%s %s\n", prog, SP_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct sp_option *o = option_find(opts, name, len);
        if (!o) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, arg);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && o->type == SP_OPT_BOOL)
            value = "true";
        else if (!value && i + 1 < argc)
            value = argv[++i];
        else if (!value) {
            fprintf(stderr, "%s: option --%s needs a value\n", prog, o->name);
            return -1;
        }
        if (option_set(prog, o, value, "flag") < 0)
            return -1;
    }
    return 0;
}
