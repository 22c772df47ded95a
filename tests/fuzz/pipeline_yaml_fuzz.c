/* pipeline_yaml_fuzz.c - a SalesPipeline manifest as `operator --render objects -f FILE`
 * reads it: YAML (libyaml, yamljson.c) -> pipeline_parse -> every object, printed. The input
 * goes through the real file path (render_run), as an in-memory file. */
#include <string.h>

#include "fuzz.h"
#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink && !(sink = fopen("/dev/null", "w")))
        abort();
    char path[64], err[1024] = "";
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    const char *what[] = {"objects", "valkey-conf"};
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++) {
        struct render_args a = {.what = what[i],
                                .file = path,
                                .role = i ? "replica" : "primary",
                                .password = "0123456789abcdef"};
        if (render_run(&a, sink, err, sizeof err) < 0)
            FUZZ_CHECK(err[0]);
    }
    close(fd);
    return 0;
}
