/* config.c - defaults, environment, flags. See config.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* A value as parsed, before it is stored. */
union value {
    const char *text;
    long integer;
    double number;
    int flag;
};

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

static int check_range(const struct sp_option *o, double v, const char *text, char *err, size_t cap)
{
    if (!has_range(o) || (v >= o->min && v <= o->max))
        return 0;
    return sp_fail(err, cap, "'%s' is not from %.15g to %.15g", text, o->min, o->max);
}

/* Parses `text` as a value of `o` into `out`; -1 with the reason in `err`. */
static int parse_value(const struct sp_option *o, const char *text, union value *out, char *err,
                       size_t cap)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case SP_OPT_STRING:
        out->text = text;
        return 0;
    case SP_OPT_LOG_LEVEL:
        if (sp_log_level_parse(text) < 0)
            return sp_fail(err, cap, "'%s' is not debug, info, warn or error", text);
        out->text = text;
        return 0;
    case SP_OPT_INT:
        out->integer = strtol(text, &end, 10);
        if (errno || end == text || *end)
            return sp_fail(err, cap, "'%s' is not an integer", text);
        return check_range(o, (double)out->integer, text, err, cap);
    case SP_OPT_DOUBLE:
        out->number = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(out->number))
            return sp_fail(err, cap, "'%s' is not a number", text);
        return check_range(o, out->number, text, err, cap);
    case SP_OPT_BOOL:
        if (parse_bool(text, &out->flag) < 0)
            return sp_fail(err, cap, "'%s' is not a boolean", text);
        return 0;
    }
    return sp_fail(err, cap, "unknown option type");
}

int sp_config_check(const struct sp_option *o, const char *text, char *err, size_t cap)
{
    union value v;
    return parse_value(o, text, &v, err, cap);
}

static void store(const struct sp_option *o, void *values, const union value *v)
{
    void *at = (char *)values + o->offset;
    switch (o->type) {
    case SP_OPT_STRING:
    case SP_OPT_LOG_LEVEL:
        *(const char **)at = v->text;
        break;
    case SP_OPT_INT:
        *(long *)at = v->integer;
        break;
    case SP_OPT_DOUBLE:
        *(double *)at = v->number;
        break;
    case SP_OPT_BOOL:
        *(int *)at = v->flag;
        break;
    }
}

/* Stores `text` into the option's value; `origin` names where it came from for errors. */
static int option_set(const char *prog, const struct sp_option *o, void *values, const char *text,
                      const char *origin)
{
    union value v;
    char why[256];
    if (parse_value(o, text, &v, why, sizeof why) < 0) {
        fprintf(stderr, "%s: invalid %s for --%s: %s\n", prog, origin, o->name, why);
        return -1;
    }
    store(o, values, &v);
    return 0;
}

static int is_text(const struct sp_option *o)
{
    return o->type == SP_OPT_STRING || o->type == SP_OPT_LOG_LEVEL;
}

static void print_help(const char *prog, const char *summary, const struct sp_option *opts)
{
    printf("Usage: %s [OPTIONS]\n\n%s\n\nOptions (flag / environment variable / default):\n", prog,
           summary);
    for (const struct sp_option *o = opts; o->name; o++) {
        printf("  --%s%s\n", o->name, o->type == SP_OPT_BOOL ? "[=BOOL]" : "=VALUE");
        printf("        %s\n        env %s, default: ", o->help, o->env ? o->env : "-");
        if (is_text(o))
            printf("%s", o->def && *o->def ? o->def : "(empty)");
        else if (o->type == SP_OPT_BOOL)
            printf("%s", o->def_num ? "true" : "false");
        else
            printf("%.15g", o->def_num);
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

const struct sp_option *sp_option_by_env(const struct sp_option *opts, const char *env)
{
    for (const struct sp_option *o = opts; o->name; o++)
        if (o->env && !strcmp(o->env, env))
            return o;
    return NULL;
}

static void apply_default(const struct sp_option *o, void *values)
{
    union value v;
    switch (o->type) {
    case SP_OPT_STRING:
    case SP_OPT_LOG_LEVEL:
        v.text = o->def ? o->def : "";
        break;
    case SP_OPT_INT:
        v.integer = (long)o->def_num;
        break;
    case SP_OPT_DOUBLE:
        v.number = o->def_num;
        break;
    case SP_OPT_BOOL:
        v.flag = o->def_num != 0;
        break;
    }
    store(o, values, &v);
}

static int apply_defaults_and_env(const char *prog, const struct sp_option *opts, void *values)
{
    for (const struct sp_option *o = opts; o->name; o++) {
        apply_default(o, values);
        const char *env = o->env ? getenv(o->env) : NULL;
        if (env && option_set(prog, o, values, env, o->env) < 0)
            return -1;
    }
    return 0;
}

int sp_config_parse(const char *prog, const char *summary, const struct sp_option *opts,
                    void *values, int argc, char **argv)
{
    if (apply_defaults_and_env(prog, opts, values) < 0)
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
        if (option_set(prog, o, values, value, "flag") < 0)
            return -1;
    }
    return 0;
}
