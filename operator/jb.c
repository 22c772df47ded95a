/* jb.c - see jb.h. */
#include "jb.h"

void jb_add(struct jb *b, cJSON *parent, const char *key, cJSON *item)
{
    bool ok = item && parent &&
              (key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item));
    if (!ok) {
        cJSON_Delete(item);
        b->oom = true;
    }
}

cJSON *jb_obj(struct jb *b, cJSON *parent, const char *key)
{
    cJSON *o = cJSON_CreateObject();
    jb_add(b, parent, key, o);
    return b->oom ? NULL : o;
}

cJSON *jb_arr(struct jb *b, cJSON *parent, const char *key)
{
    cJSON *a = cJSON_CreateArray();
    jb_add(b, parent, key, a);
    return b->oom ? NULL : a;
}

void jb_str(struct jb *b, cJSON *parent, const char *key, const char *value)
{
    jb_add(b, parent, key, cJSON_CreateString(value));
}

void jb_int(struct jb *b, cJSON *parent, const char *key, long value)
{
    jb_add(b, parent, key, cJSON_CreateNumber((double)value));
}

void jb_num(struct jb *b, cJSON *parent, const char *key, double value)
{
    jb_add(b, parent, key, cJSON_CreateNumber(value));
}

void jb_bool(struct jb *b, cJSON *parent, const char *key, bool value)
{
    jb_add(b, parent, key, cJSON_CreateBool(value));
}

cJSON *jb_done(struct jb *b, cJSON *root)
{
    if (b->oom || !root) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
