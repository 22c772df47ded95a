/* render.h - generated artifacts of one SalesPipeline manifest, printed without a cluster. */
#ifndef OP_RENDER_H
#define OP_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include "pipeline.h"

#define RENDER_WHAT "valkey-cloudinit, valkey-conf, dashboard-sales, dashboard-health or objects"

struct render_args {
    const char *what;     /* one of RENDER_WHAT */
    const char *file;     /* a YAML file holding a SalesPipeline document ("-": stdin) */
    const char *role;     /* "primary" (default) or "replica", for the valkey artifacts */
    const char *password; /* Valkey password to write in; NULL or "": a random one */
};

/* Parses the SalesPipeline document of a YAML file ("-": stdin) as the API server would have
 * it (a namespace, "default" when it has none, and a zero uid). Returns 0, or -1 with `err`. */
int render_load(const char *path, struct pipeline *p, char *err, size_t errcap);

/* Writes the artifact to `out`. Returns 0, or -1 with `err` set. */
int render_run(const struct render_args *a, FILE *out, char *err, size_t errcap);

#endif
