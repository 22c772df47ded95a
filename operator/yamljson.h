/* yamljson.h - YAML in and out of cJSON trees, through libyaml.
 *
 * Out: the operator writes YAML files for other programs (cloud-init user data, Grafana
 * provisioning); they are built as cJSON trees and emitted here, so quoting is libyaml's job.
 * Strings a YAML 1.1 reader would take for another type ("true", "0640", "1e3") are quoted;
 * multi-line strings use the literal block style.
 * In: a SalesPipeline manifest for `operator --render`: plain scalars become numbers, booleans
 * or null as YAML 1.1 reads them, quoted ones stay strings. */
#ifndef OP_YAMLJSON_H
#define OP_YAMLJSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* `header` (may be NULL) is written first, e.g. "#cloud-config\n". A new string, NULL on
 * failure. */
char *yamljson_emit(const cJSON *doc, const char *header);

/* The first document of the YAML text whose top-level "kind" is `kind` (any document when
 * kind is NULL), as a new cJSON tree; NULL with `err` set. */
cJSON *yamljson_parse(const char *text, size_t len, const char *kind, char *err, size_t errcap);

#endif
