/* sale_json_fuzz.c - the body of POST /ventas (api and bridge): sp_sale_parse_json on any bytes,
 * not NUL-terminated, as rest.c passes them. A refused body has a reason whose error answer is
 * JSON; an accepted sale is valid, and its canonical JSON (what the api sends the bridge) and
 * its protobuf (what the bridge sends the writer) both read back as the same sale. */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "sale.h"

static int same(const struct sp_sale *a, const struct sp_sale *b)
{
    return a->categoria == b->categoria && !strcmp(a->producto_id, b->producto_id) &&
           a->precio == b->precio && a->cantidad_vendida == b->cantidad_vendida;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sp_sale sale, again;
    struct sp_sale_error err = {0};
    if (sp_sale_parse_json((const char *)data, size, &sale, &err) < 0) {
        char body[256];
        FUZZ_CHECK(err.reason);
        size_t n = sp_sale_error_json(&err, body, sizeof body);
        cJSON *answer = cJSON_ParseWithLength(body, n);
        FUZZ_CHECK(answer && cJSON_IsString(cJSON_GetObjectItem(answer, "error")));
        cJSON_Delete(answer);
        return 0;
    }
    FUZZ_CHECK(sp_sale_validate(&sale, &err) == 0);
    char json[512];
    size_t n = sp_sale_to_json(&sale, json, sizeof json);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(sp_sale_parse_json(json, n, &again, &err) == 0 && same(&sale, &again));
    uint8_t pb[256];
    size_t m = sp_sale_pack(&sale, pb, sizeof pb);
    FUZZ_CHECK(m > 0);
    FUZZ_CHECK(sp_sale_unpack(pb, m, &again) == 0 && same(&sale, &again));
    return 0;
}
