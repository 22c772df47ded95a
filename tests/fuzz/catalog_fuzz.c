/* catalog_fuzz.c - the product catalog as the api takes it from the registry's artifact layer
 * (sp_catalog_parse, not NUL-terminated). A refusal says why; an accepted catalog has every
 * product findable by its id, valid categories and prices, and a sha256 digest. */
#include <math.h>
#include <string.h>

#include "catalog.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    struct sp_catalog *c = sp_catalog_parse((const char *)data, size, err, sizeof err);
    if (!c) {
        FUZZ_CHECK(err[0]);
        return 0;
    }
    FUZZ_CHECK(!strncmp(sp_catalog_digest(c), "sha256:", 7));
    for (size_t i = 0; i < sp_catalog_count(c); i++) {
        const struct sp_catalog_product *p = sp_catalog_at(c, i);
        FUZZ_CHECK(p && p->id && p->name && p->categoria >= 1 && p->categoria <= 4);
        FUZZ_CHECK(isfinite(p->base_price));
        FUZZ_CHECK(sp_catalog_find(c, p->id) == p);
    }
    sp_catalog_free(c);
    return 0;
}
