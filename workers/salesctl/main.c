/* salesctl - command-line tools for the sales pipeline.
 *
 *   salesctl dashboard [--json] [--carnet N] [--valkey-url URL]
 *       every dashboard panel, read from Valkey, as tables (or JSON with --json) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dashboard.h"
#include "valkey.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: salesctl COMMAND [OPTIONS]\n\nCommands:\n"
                 "  dashboard   print every dashboard panel, read from Valkey (--help for options)\n");
}

static int print_dashboard(redisContext *c, const char *carnet, int json, long points)
{
    struct dashboard d;
    char err[512];
    if (dashboard_read(c, carnet, &d, err, sizeof err) < 0) {
        fprintf(stderr, "salesctl: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (json) {
        char *text = dashboard_json(&d);
        if (text)
            printf("%s\n", text);
        else
            rc = 1;
        free(text);
    } else {
        dashboard_print(&d, stdout, (size_t)points);
    }
    dashboard_free(&d);
    return rc;
}

static int cmd_dashboard(int argc, char **argv)
{
    const char *url = NULL, *password = NULL, *carnet = NULL;
    int json = 0;
    long points = 0, timeout_ms = 0;
    const struct sp_option table[] = {
        {"json", NULL, SP_OPT_BOOL, &json, "false", "print the panels as one JSON object", SP_ANY},
        {"carnet", "CARNET", SP_OPT_STRING, &carnet, "202300539",
         "student id; its last digit picks the assigned category", SP_ANY},
        {"valkey-url", "VALKEY_URL", SP_OPT_STRING, &url, "redis://127.0.0.1:6379",
         "Valkey to read, redis://[[user]:password@]host[:port][/db]", SP_ANY},
        {"valkey-password", "VALKEY_PASSWORD", SP_OPT_STRING, &password, NULL,
         "password when the URL has none", SP_ANY},
        {"valkey-timeout-ms", "VALKEY_TIMEOUT_MS", SP_OPT_INT, &timeout_ms, "5000",
         "connect and read timeout", SP_RANGE(1, 3600000)},
        {"points", NULL, SP_OPT_INT, &points, "20",
         "table output: how many of the latest price points to print", SP_RANGE(0, 100000)},
        {0},
    };
    int rc = sp_config_parse("salesctl dashboard",
                             "Prints every dashboard panel, read from Valkey.", table, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (!dashboard_category_of(carnet) || strlen(carnet) > DASH_CARNET_MAX) {
        fprintf(stderr, "salesctl: the carnet '%s' must end in a digit (at most %d characters)\n",
                carnet, DASH_CARNET_MAX);
        return 2;
    }
    char err[512];
    redisContext *c = sp_valkey_connect(url, password, (double)timeout_ms / 1000.0, err,
                                        sizeof err);
    if (!c) {
        fprintf(stderr, "salesctl: %s\n", err);
        return 1;
    }
    rc = print_dashboard(c, carnet, json, points);
    redisFree(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("salesctl %s\n", SP_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "dashboard"))
        return cmd_dashboard(argc - 1, argv + 1);
    fprintf(stderr, "salesctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
