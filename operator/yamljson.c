/* yamljson.c - see yamljson.h. */
#include "yamljson.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ---------------------------------------------------------------- emit */

struct out {
    char *buf;
    size_t len, cap;
    bool oom;
};

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    struct out *o = data;
    if (o->len + size + 1 > o->cap) {
        size_t cap = (o->cap ? o->cap : 1024);
        while (cap < o->len + size + 1)
            cap *= 2;
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->oom = true;
            return 0;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, buffer, size);
    o->len += size;
    o->buf[o->len] = '\0';
    return 1;
}

/* Whether a YAML 1.1 reader (PyYAML, cloud-init) would resolve the plain scalar `s` to
 * something other than a string: then it must be quoted. Conservative: anything that starts
 * like a number, a bool word, null, a merge key or has characters YAML treats specially. */
static bool needs_quotes(const char *s)
{
    static const char *const words[] = {"y",    "n",     "yes",  "no", "on", "off",
                                        "true", "false", "null", "~",  "="};
    if (!*s)
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcasecmp(s, words[i]))
            return true;
    if (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')
        return true;
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_/.-", *c))
            return true;
    return false;
}

static int emit_scalar(yaml_emitter_t *e, const char *tag, const char *text, bool quote_check)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (quote_check && strchr(text, '\n'))
        style = YAML_LITERAL_SCALAR_STYLE;
    else if (quote_check && needs_quotes(text))
        style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
    /* plain_implicit only for untagged strings and for the numbers/bools we write plain. */
    if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)tag, (yaml_char_t *)text,
                                      (int)strlen(text), 1, 1, style))
        return -1;
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int emit_node(yaml_emitter_t *e, const cJSON *n);

static int emit_number(yaml_emitter_t *e, const cJSON *n)
{
    char text[40];
    double v = n->valuedouble;
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(text, sizeof text, "%.0f", v);
    else
        snprintf(text, sizeof text, "%.17g", v);
    return emit_scalar(e, NULL, text, false);
}

static int emit_object(yaml_emitter_t *e, const cJSON *n)
{
    yaml_event_t ev;
    const cJSON *c;
    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
        !yaml_emitter_emit(e, &ev))
        return -1;
    cJSON_ArrayForEach (c, n) {
        if (emit_scalar(e, NULL, c->string, true) < 0 || emit_node(e, c) < 0)
            return -1;
    }
    return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int emit_array(yaml_emitter_t *e, const cJSON *n)
{
    yaml_event_t ev;
    const cJSON *c;
    /* Empty sequences in flow style ("[]"): a block sequence cannot be empty. */
    yaml_sequence_style_t style = n->child ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE;
    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, style) ||
        !yaml_emitter_emit(e, &ev))
        return -1;
    cJSON_ArrayForEach (c, n) {
        if (emit_node(e, c) < 0)
            return -1;
    }
    return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int emit_node(yaml_emitter_t *e, const cJSON *n)
{
    if (cJSON_IsObject(n))
        return emit_object(e, n);
    if (cJSON_IsArray(n))
        return emit_array(e, n);
    if (cJSON_IsString(n))
        return emit_scalar(e, NULL, n->valuestring, true);
    if (cJSON_IsNumber(n))
        return emit_number(e, n);
    if (cJSON_IsBool(n))
        return emit_scalar(e, NULL, cJSON_IsTrue(n) ? "true" : "false", false);
    return emit_scalar(e, NULL, "null", false);
}

static int emit_document(yaml_emitter_t *e, const cJSON *doc)
{
    yaml_event_t ev;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(e, &ev) ||
        !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(e, &ev))
        return -1;
    if (emit_node(e, doc) < 0)
        return -1;
    return yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(e, &ev) &&
                   yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev)
               ? 0
               : -1;
}

char *yamljson_emit(const cJSON *doc, const char *header)
{
    yaml_emitter_t e;
    struct out o = {0};
    if (header && !write_handler(&o, (unsigned char *)header, strlen(header)))
        return NULL;
    if (!yaml_emitter_initialize(&e)) {
        free(o.buf);
        return NULL;
    }
    yaml_emitter_set_output(&e, write_handler, &o);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1); /* never fold long lines (commands, URLs) */
    int rc = emit_document(&e, doc);
    yaml_emitter_delete(&e);
    if (rc < 0 || o.oom) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}

/* ---------------------------------------------------------------- parse */

static bool is_number(const char *s, double *v)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return false;
    if (!strcmp(s, ".inf") || !strcmp(s, ".nan"))
        return false; /* not in our manifests: keep them strings */
    *v = strtod(s, &end);
    return *end == '\0' && isfinite(*v) && !strchr(s, 'x') && !strchr(s, 'X');
}

static cJSON *plain_scalar(const char *s)
{
    double v;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return cJSON_CreateTrue();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return cJSON_CreateFalse();
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return cJSON_CreateNull();
    if (is_number(s, &v))
        return cJSON_CreateNumber(v);
    return cJSON_CreateString(s);
}

static cJSON *convert(yaml_document_t *d, yaml_node_t *n, int depth)
{
    if (!n || depth > 64)
        return NULL;
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = (const char *)n->data.scalar.value;
        return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(s)
                                                               : cJSON_CreateString(s);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             a && i < n->data.sequence.items.top; i++) {
            cJSON *c = convert(d, yaml_document_get_node(d, *i), depth + 1);
            if (!c || !cJSON_AddItemToArray(a, c)) {
                cJSON_Delete(c);
                cJSON_Delete(a);
                return NULL;
            }
        }
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        cJSON *v = convert(d, yaml_document_get_node(d, p->value), depth + 1);
        if (!k || k->type != YAML_SCALAR_NODE || !v ||
            !cJSON_AddItemToObject(o, (const char *)k->data.scalar.value, v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static bool kind_matches(const cJSON *doc, const char *kind)
{
    const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "kind"));
    return !kind || (k && !strcmp(k, kind));
}

cJSON *yamljson_parse(const char *text, size_t len, const char *kind, char *err, size_t errcap)
{
    yaml_parser_t parser;
    cJSON *found = NULL;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            snprintf(err, errcap, "YAML error at line %zu: %s", parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "unknown");
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) { /* end of the stream */
            yaml_document_delete(&doc);
            snprintf(err, errcap, "no %s document", kind ? kind : "YAML");
            break;
        }
        cJSON *j = convert(&doc, root, 0);
        yaml_document_delete(&doc);
        if (j && cJSON_IsObject(j) && kind_matches(j, kind)) {
            found = j;
            break;
        }
        cJSON_Delete(j);
    }
    yaml_parser_delete(&parser);
    return found;
}
