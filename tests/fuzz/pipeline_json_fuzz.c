/* pipeline_json_fuzz.c - a SalesPipeline object as the operator reads it from the API server
 * (JSON; the CRD's schema has checked it there, but the operator does not rely on that):
 * pipeline_parse, then every object the reconcile would apply (desired_build: Deployments,
 * Services, the VMs' cloud-init, Grafana's dashboards, ...), printed as the apply sends them.
 * A refused object names why. */
#include <cjson/cJSON.h>
#include <string.h>

#include "desired.h"
#include "fuzz.h"
#include "pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *obj = cJSON_ParseWithLength((const char *)data, size);
    if (!obj)
        return 0;
    struct pipeline p;
    char err[256] = "";
    if (pipeline_parse(obj, &p, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0]);
    } else {
        struct desired d;
        if (desired_build(&p, "0123456789abcdef0123456789abcdef", &d) == 0) {
            for (int i = 0; i < d.n; i++) {
                char *text = cJSON_PrintUnformatted(d.objs[i].obj);
                FUZZ_CHECK(text && d.objs[i].name && d.objs[i].name[0]);
                free(text);
            }
            desired_free(&d);
        }
    }
    cJSON_Delete(obj);
    return 0;
}
