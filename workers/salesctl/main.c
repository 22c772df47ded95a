/* salesctl - command-line tools for the sales pipeline.
 *
 *   salesctl dashboard [--json] [--carnet N] [--valkey-url URL] [--catalog-artifact REF]
 *       every dashboard panel, read from Valkey, as tables (or JSON with --json); products are
 *       named from the catalog when one is given (--catalog FILE or --catalog-artifact)
 *   salesctl catalog [--catalog-artifact REF | --catalog FILE]
 *       the product catalog, pulled from the registry (or read), one product a line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "dashboard.h"
#include "valkey.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: salesctl COMMAND [OPTIONS]\n\nCommands:\n"
                 "  dashboard   print every dashboard panel, read from Valkey (--help for options)\n"
                 "  catalog     print the product catalog, pulled from the registry\n");
}

/* Where the catalog comes from: an artifact in a registry, or a file. */
struct catalog_options {
    const char *catalog_artifact, *registry_auth_file, *registry_ca, *catalog_file;
};

#define CATALOG_OPTIONS(o)                                                                   \
    SP_CATALOG_OPTIONS(o),                                                                   \
    {"catalog", "SP_CATALOG", SP_OPT_STRING, &(o)->catalog_file, NULL,                       \
     "the catalog as a file (locust/catalog.json) instead of an artifact", SP_ANY}

/* The catalog the options name; NULL with the reason in `err` (also when none is named). */
static struct sp_catalog *open_catalog(const struct catalog_options *o, char *err, size_t cap)
{
    if (o->catalog_file && *o->catalog_file)
        return sp_catalog_load_file(o->catalog_file, err, cap);
    if (!o->catalog_artifact || !*o->catalog_artifact) {
        snprintf(err, cap, "no catalog named (--catalog-artifact or --catalog)");
        return NULL;
    }
    struct sp_oci_options oo = {.ca_file = o->registry_ca, .auth_file = o->registry_auth_file};
    struct sp_oci_client *client = sp_oci_client_new(&oo, err, cap);
    struct sp_catalog *c = client ? sp_catalog_pull(client, o->catalog_artifact, err, cap) : NULL;
    sp_oci_client_free(client);
    return c;
}

static int print_dashboard(redisContext *c, const char *carnet, int json, long points,
                           const struct sp_catalog *catalog)
{
    struct dashboard d;
    char err[512];
    if (dashboard_read(c, carnet, &d, err, sizeof err) < 0) {
        fprintf(stderr, "salesctl: %s\n", err);
        return 1;
    }
    d.catalog = catalog;
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
    struct catalog_options co;
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
        CATALOG_OPTIONS(&co),
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
    /* Names are a help, not the point: without the catalog the numbers are still printed. */
    struct sp_catalog *catalog = NULL;
    if ((co.catalog_artifact && *co.catalog_artifact) || (co.catalog_file && *co.catalog_file)) {
        if (!(catalog = open_catalog(&co, err, sizeof err)))
            fprintf(stderr, "salesctl: products are shown without names: %s\n", err);
    }
    rc = print_dashboard(c, carnet, json, points, catalog);
    sp_catalog_free(catalog);
    redisFree(c);
    return rc;
}

static int cmd_catalog(int argc, char **argv)
{
    struct catalog_options co;
    const struct sp_option table[] = {CATALOG_OPTIONS(&co), {0}};
    int rc = sp_config_parse("salesctl catalog",
                             "Prints the product catalog (id, category, base price, name), "
                             "pulled from the registry or read from a file; its digest and size "
                             "go to stderr.", table, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    char err[512];
    struct sp_catalog *c = open_catalog(&co, err, sizeof err);
    if (!c) {
        fprintf(stderr, "salesctl: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sp_catalog_count(c); i++) {
        const struct sp_catalog_product *p = sp_catalog_at(c, i);
        printf("%s\t%s\t%.2f\t%s\n", p->id, sp_category_name(p->categoria), p->base_price,
               p->name);
    }
    fprintf(stderr, "%zu products, %s\n", sp_catalog_count(c), sp_catalog_digest(c));
    sp_catalog_free(c);
    return 0;
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
    if (!strcmp(argv[1], "catalog"))
        return cmd_catalog(argc - 1, argv + 1);
    fprintf(stderr, "salesctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
