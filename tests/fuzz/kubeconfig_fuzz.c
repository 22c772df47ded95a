/* kubeconfig_fuzz.c - a kubeconfig file (libyaml, kubeconfig.c) as the operator loads it from
 * KUBECONFIG or --kubeconfig: either a usable configuration (a server URL) or an error that
 * says why. The input is an in-memory file. */
#include <string.h>

#include "fuzz.h"
#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[1024] = "";
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    struct kube_config cfg;
    if (kubeconfig_load_files(&cfg, path, NULL, err, sizeof err) == 0) {
        FUZZ_CHECK(cfg.server && cfg.server[0]);
        kubeconfig_free(&cfg);
    } else {
        FUZZ_CHECK(err[0]);
    }
    close(fd);
    return 0;
}
