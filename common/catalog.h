/* catalog.h - the product catalog (locust/catalog.json, schema locust/catalog.schema.json):
 * parsed once into an immutable table with a hash index, looked up per sale.
 *
 * The same file travels as an OCI artifact (docs/catalog.md): sp_catalog_pull() fetches it
 * from a registry with oci.h and parses it. A catalog is never changed after it is made, so
 * any number of threads may look up in it at once; replacing it is the owner's business. */
#ifndef SP_CATALOG_H
#define SP_CATALOG_H

#include <stddef.h>

#include "config.h"
#include "oci.h"

/* The artifact's types (docs/catalog.md). */
#define SP_CATALOG_ARTIFACT_TYPE "application/vnd.salespipeline.catalog.v1"
#define SP_CATALOG_MEDIA_TYPE "application/vnd.salespipeline.catalog.v1+json"
/* A catalog file larger than this is refused (the committed one is 33 KB for 300 products). */
#define SP_CATALOG_MAX_BYTES (16u * 1024 * 1024)

struct sp_catalog_product {
    const char *id;
    const char *name;
    int categoria; /* 1..4 */
    double base_price;
};

struct sp_catalog;

/* Parses a catalog file: {"version": 1, "products": [{"id", "name", "category", "base_price"}]}.
 * Every product must be complete and valid and ids unique. NULL with the reason in `err`. */
struct sp_catalog *sp_catalog_parse(const char *json, size_t len, char *err, size_t errcap);
void sp_catalog_free(struct sp_catalog *c);

/* The product with this id, or NULL. */
const struct sp_catalog_product *sp_catalog_find(const struct sp_catalog *c, const char *id);
size_t sp_catalog_count(const struct sp_catalog *c);
/* Product `i` (0 <= i < count), in the file's order. */
const struct sp_catalog_product *sp_catalog_at(const struct sp_catalog *c, size_t i);
/* The sha256 digest ("sha256:<hex>") of the bytes parsed; for a pulled catalog, the layer's. */
const char *sp_catalog_digest(const struct sp_catalog *c);

/* Reads and parses a catalog file. NULL with the reason in `err`. */
struct sp_catalog *sp_catalog_load_file(const char *path, char *err, size_t errcap);
/* Pulls the catalog artifact `reference` (registry/repository:tag or @sha256:...) and parses
 * its layer of SP_CATALOG_MEDIA_TYPE. NULL with the reason in `err`. */
struct sp_catalog *sp_catalog_pull(struct sp_oci_client *client, const char *reference, char *err,
                                   size_t errcap);

#endif
