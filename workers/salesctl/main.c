/* salesctl - command-line tools for the sales pipeline.
 *
 *   salesctl dashboard [--json] [--carnet N] [--valkey-url URL] [--catalog-artifact REF]
 *       every dashboard panel, read from Valkey, as tables (or JSON with --json); products are
 *       named from the catalog when one is given (--catalog FILE or --catalog-artifact)
 *   salesctl catalog [--catalog-artifact REF | --catalog FILE]
 *       the product catalog, pulled from the registry (or read), one product a line
 *   salesctl deadlines [--timeout-ms N]
 *       the api's, the bridge's and the writers' deadlines for an api deadline (contract.h) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "contract.h"
#include "dashboard.h"
#include "valkey.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: salesctl COMMAND [OPTIONS]\n\nCommands:\n"
            "  dashboard   print every dashboard panel, read from Valkey (--help for options)\n"
            "  catalog     print the product catalog, pulled from the registry\n"
            "  deadlines   print the deadline of each hop for the api's (--help for options)\n");
}

/* The catalog from a file, else from the artifact (SP_CATALOG_READER_OPTIONS); NULL with the
 * reason in `err` (also when none is named). */
static struct sp_catalog *open_catalog(const char *artifact, const char *auth_file,
                                       const char *ca_file, const char *file, char *err, size_t cap)
{
    if (file && *file)
        return sp_catalog_load_file(file, err, cap);
    if (!artifact || !*artifact) {
        snprintf(err, cap, "no catalog named (--catalog-artifact or --catalog)");
        return NULL;
    }
    struct sp_oci_options oo = {.ca_file = ca_file, .auth_file = auth_file};
    struct sp_oci_client *client = sp_oci_client_new(&oo, err, cap);
    struct sp_catalog *c = client ? sp_catalog_pull(client, artifact, err, cap) : NULL;
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
    struct sp_dashboard_options o;
    int rc = sp_config_parse("salesctl dashboard",
                             "Prints every dashboard panel, read from Valkey.",
                             sp_dashboard_option_table, &o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (!sp_category_of_carnet(o.carnet) || strlen(o.carnet) > DASH_CARNET_MAX) {
        fprintf(stderr, "salesctl: the carnet '%s' must end in a digit (at most %d characters)\n",
                o.carnet, DASH_CARNET_MAX);
        return 2;
    }
    char err[512];
    redisContext *c = sp_valkey_connect(o.valkey_url, o.valkey_password,
                                        (double)o.valkey_timeout_ms / 1000.0, err, sizeof err);
    if (!c) {
        fprintf(stderr, "salesctl: %s\n", err);
        return 1;
    }
    /* Names are a help, not the point: without the catalog the numbers are still printed. */
    struct sp_catalog *catalog = NULL;
    if ((o.catalog_artifact && *o.catalog_artifact) || (o.catalog_file && *o.catalog_file)) {
        if (!(catalog = open_catalog(o.catalog_artifact, o.registry_auth_file, o.registry_ca,
                                     o.catalog_file, err, sizeof err)))
            fprintf(stderr, "salesctl: products are shown without names: %s\n", err);
    }
    rc = print_dashboard(c, o.carnet, o.json, o.points, catalog);
    sp_catalog_free(catalog);
    redisFree(c);
    return rc;
}

#define DEADLINES_OPTIONS(X)                                                                       \
    X(timeout_ms, "timeout-ms", "DOWNSTREAM_TIMEOUT_MS", INT, SP_DEADLINE_DEFAULT_MS,              \
      SP_RANGE(SP_DEADLINE_MIN_MS, SP_DEADLINE_MAX_MS), NONE, "the api's deadline per sale")

struct deadlines_options {
    DEADLINES_OPTIONS(SP_OPTION_FIELD)
};
#define SP_OPTION_STRUCT struct deadlines_options
static const struct sp_option deadlines_table[] = {DEADLINES_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

/* One line per hop, "<hop> <milliseconds>", for people and for scripts/local.sh. */
static int cmd_deadlines(int argc, char **argv)
{
    struct deadlines_options o;
    int rc = sp_config_parse("salesctl deadlines",
                             "Prints the deadline of each hop for the api's: the bridge's gRPC "
                             "deadline and the writers' Kafka delivery timeout nest inside it.",
                             deadlines_table, &o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    printf("api %ld\nbridge %ld\nwriter %ld\n", o.timeout_ms, SP_DEADLINE_BRIDGE_MS(o.timeout_ms),
           SP_DEADLINE_WRITER_MS(o.timeout_ms));
    return 0;
}

struct catalog_cmd_options {
    SP_CATALOG_READER_OPTIONS(SP_OPTION_FIELD)
};
#define SP_OPTION_STRUCT struct catalog_cmd_options
static const struct sp_option catalog_table[] = {SP_CATALOG_READER_OPTIONS(SP_OPTION_ENTRY){0}};
#undef SP_OPTION_STRUCT

static int cmd_catalog(int argc, char **argv)
{
    struct catalog_cmd_options o;
    int rc = sp_config_parse("salesctl catalog",
                             "Prints the product catalog (id, category, base price, name), "
                             "pulled from the registry or read from a file; its digest and size "
                             "go to stderr.",
                             catalog_table, &o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    char err[512];
    struct sp_catalog *c = open_catalog(o.catalog_artifact, o.registry_auth_file, o.registry_ca,
                                        o.catalog_file, err, sizeof err);
    if (!c) {
        fprintf(stderr, "salesctl: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sp_catalog_count(c); i++) {
        const struct sp_catalog_product *p = sp_catalog_at(c, i);
        printf("%s\t%s\t%.2f\t%s\n", p->id, sp_category_name(p->categoria), p->base_price, p->name);
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
    if (!strcmp(argv[1], "deadlines"))
        return cmd_deadlines(argc - 1, argv + 1);
    if (!strcmp(argv[1], "catalog"))
        return cmd_catalog(argc - 1, argv + 1);
    fprintf(stderr, "salesctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
