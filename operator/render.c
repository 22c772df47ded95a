/* render.c - `operator --render WHAT -f pipeline.yaml`: prints one generated artifact for a
 * SalesPipeline manifest without any cluster, for people (see what the VMs will run) and for
 * the tests that check the artifacts with real programs (valkey-server, PyYAML). See render.h. */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired.h"
#include "cloudinit.h"
#include "grafana.h"
#include "infra.h"
#include "log.h"
#include "pipeline.h"
#include "valkey_password.h"
#include "yamljson.h"

#define FILE_MAX (4 * 1024 * 1024)

static char *read_all(const char *path, size_t *len, char *err, size_t errcap)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    char *buf = f ? malloc(FILE_MAX + 1) : NULL;
    if (!f || !buf) {
        snprintf(err, errcap, "%s: cannot read", path);
        if (f && f != stdin)
            fclose(f);
        free(buf);
        return NULL;
    }
    *len = fread(buf, 1, FILE_MAX, f);
    bool too_big = *len == FILE_MAX && !feof(f);
    if (f != stdin)
        fclose(f);
    if (too_big) {
        sp_fail(err, errcap, "%s: larger than %d bytes", path, FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/* A manifest has no uid (the API server assigns it) and may have no namespace. */
static void complete_metadata(cJSON *obj)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (!cJSON_IsObject(md))
        return;
    if (!cJSON_GetObjectItemCaseSensitive(md, "namespace"))
        cJSON_AddStringToObject(md, "namespace", "default");
    if (!cJSON_GetObjectItemCaseSensitive(md, "uid"))
        cJSON_AddStringToObject(md, "uid", "00000000-0000-0000-0000-000000000000");
}

int render_load(const char *path, struct pipeline *p, char *err, size_t errcap)
{
    size_t len;
    char perr[256];
    char *text = read_all(path, &len, err, errcap);
    if (!text)
        return -1;
    cJSON *obj = yamljson_parse(text, len, "SalesPipeline", perr, sizeof perr);
    free(text);
    if (!obj)
        return sp_fail(err, errcap, "%s: %s", path, perr);
    complete_metadata(obj);
    int rc = pipeline_parse(obj, p, perr, sizeof perr);
    cJSON_Delete(obj);
    if (rc < 0)
        snprintf(err, errcap, "%s: %s", path, perr);
    return rc;
}

static int print_json(FILE *out, cJSON *o)
{
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text)
        return -1;
    fprintf(out, "%s\n", text);
    free(text);
    return 0;
}

static int print_text(FILE *out, char *text)
{
    if (!text)
        return -1;
    fputs(text, out);
    free(text);
    return 0;
}

/* Every object the operator would apply for the pipeline (desired.c), as a v1 List. */
static cJSON *objects(const struct pipeline *p, const char *pw)
{
    struct desired d;
    if (desired_build(p, pw, &d) < 0)
        return NULL;
    cJSON *list = cJSON_CreateObject(), *items = cJSON_AddArrayToObject(list, "items");
    bool ok = cJSON_AddStringToObject(list, "apiVersion", "v1") &&
              cJSON_AddStringToObject(list, "kind", "List") && items;
    for (int i = 0; i < d.n; i++) {
        if (ok && cJSON_AddItemToArray(items, d.objs[i].obj))
            d.objs[i].obj = NULL; /* the list owns it now */
        else
            ok = false;
    }
    desired_free(&d);
    if (!ok) {
        cJSON_Delete(list);
        return NULL;
    }
    return list;
}

int render_run(const struct render_args *a, FILE *out, char *err, size_t errcap)
{
    struct pipeline p;
    char pw[INFRA_PASSWORD_LEN + 1];
    enum valkey_role role = a->role && !strcmp(a->role, "replica") ? VALKEY_REPLICA
                                                                   : VALKEY_PRIMARY;
    if (a->role && strcmp(a->role, "primary") && strcmp(a->role, "replica"))
        return sp_fail(err, errcap, "--role must be primary or replica");
    if (render_load(a->file, &p, err, errcap) < 0)
        return -1;
    if (a->password && *a->password)
        snprintf(pw, sizeof pw, "%.*s", INFRA_PASSWORD_LEN, a->password);
    else if (valkey_password_generate(pw) < 0)
        return sp_fail(err, errcap, "no randomness for a password");
    int rc;
    if (!strcmp(a->what, "valkey-cloudinit"))
        rc = print_text(out, cloudinit_render(&p, role, pw));
    else if (!strcmp(a->what, "valkey-conf"))
        rc = print_text(out, cloudinit_valkey_conf(&p, role, pw));
    else if (!strcmp(a->what, "dashboard-sales"))
        rc = print_json(out, grafana_sales_dashboard(&p));
    else if (!strcmp(a->what, "objects"))
        rc = print_json(out, objects(&p, pw));
    else if (!strcmp(a->what, "dashboard-health"))
        rc = print_json(out, grafana_health_dashboard(&p));
    else
        return sp_fail(err, errcap, "--render: unknown artifact '%s' (%s)", a->what, RENDER_WHAT);
    return rc < 0 ? sp_fail(err, errcap, "out of memory rendering %s", a->what) : 0;
}
