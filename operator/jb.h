/* jb.h - building cJSON trees without checking every call.
 *
 * cJSON's Add functions return NULL on out-of-memory and leave the tree without the field; an
 * object missing fields must never be applied (server-side apply would delete them). These
 * helpers record any failure in the builder, and jb_done() turns a failed tree into NULL. */
#ifndef OP_JB_H
#define OP_JB_H

#include <cjson/cJSON.h>
#include <stdbool.h>

struct jb {
    bool oom;
};

/* Add to object `parent` under `key`, or append to array `parent` when key is NULL. */
cJSON *jb_obj(struct jb *b, cJSON *parent, const char *key);
cJSON *jb_arr(struct jb *b, cJSON *parent, const char *key);
void jb_str(struct jb *b, cJSON *parent, const char *key, const char *value);
void jb_int(struct jb *b, cJSON *parent, const char *key, long value);
void jb_num(struct jb *b, cJSON *parent, const char *key, double value);
void jb_bool(struct jb *b, cJSON *parent, const char *key, bool value);
/* Adds `item` (ownership passes, also on failure). */
void jb_add(struct jb *b, cJSON *parent, const char *key, cJSON *item);

/* Returns root, or frees it and returns NULL if anything failed. */
cJSON *jb_done(struct jb *b, cJSON *root);

#endif
