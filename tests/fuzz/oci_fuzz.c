/* oci_fuzz.c - what a registry (or the user) hands the OCI client (common/oci.c) on its way to
 * the catalog artifact: the first byte picks the parser, the rest is its input. 0: an image
 * manifest (sp_oci_manifest_layer), 1: a WWW-Authenticate challenge (sp_oci_parse_challenge),
 * 2: a docker config.json (sp_oci_auth_lookup), 3: an artifact reference (sp_oci_ref_parse).
 * Each either refuses (with a reason where it gives one) or returns well-formed fields. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "oci.h"

#define CATALOG_TYPE "application/vnd.salespipeline.catalog.v1+json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size); /* the rest, NUL-terminated for the parsers that need it */
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[512] = "";
    switch (data[0] % 4) {
    case 0: {
        char digest[SP_OCI_DIGEST_MAX];
        long long len = -1;
        if (sp_oci_manifest_layer(text, size - 1, CATALOG_TYPE, digest, &len, err, sizeof err) == 0)
            FUZZ_CHECK(!strncmp(digest, "sha256:", 7) && strlen(digest) < SP_OCI_DIGEST_MAX &&
                       len >= 0);
        else
            FUZZ_CHECK(err[0]);
        break;
    }
    case 1: {
        struct sp_oci_challenge ch;
        if (sp_oci_parse_challenge(text, &ch) == 0)
            FUZZ_CHECK(ch.scheme[0] && strlen(ch.realm) < sizeof ch.realm &&
                       strlen(ch.service) < sizeof ch.service &&
                       strlen(ch.scope) < sizeof ch.scope);
        break;
    }
    case 2: {
        char user[256], password[256];
        int rc = sp_oci_auth_lookup(text, "registry.example:5000", user, sizeof user, password,
                                    sizeof password, err, sizeof err);
        if (rc == 1)
            FUZZ_CHECK(strlen(user) < sizeof user && strlen(password) < sizeof password);
        else if (rc < 0)
            FUZZ_CHECK(err[0]);
        break;
    }
    default: {
        struct sp_oci_ref ref;
        if (sp_oci_ref_parse(text, &ref, err, sizeof err) == 0)
            FUZZ_CHECK(ref.registry[0] && ref.repository[0] && ref.reference[0]);
        else
            FUZZ_CHECK(err[0]);
        break;
    }
    }
    free(text);
    return 0;
}
