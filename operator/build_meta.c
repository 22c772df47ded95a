/* build_meta.c - metadata shared by every owned object. See build.h. */
#include "build.h"

#include <stdio.h>
#include <string.h>

void build_selector_labels(struct jb *b, cJSON *dst, const struct pipeline *p,
                           const char *component, const char *app)
{
    jb_str(b, dst, "app.kubernetes.io/name", app ? app : "salespipeline");
    jb_str(b, dst, OP_INSTANCE_LABEL, p->name);
    if (component)
        jb_str(b, dst, "app.kubernetes.io/component", component);
}

void build_labels(struct jb *b, cJSON *dst, const struct pipeline *p, const char *component,
                  const char *app)
{
    build_selector_labels(b, dst, p, component, app);
    jb_str(b, dst, "app.kubernetes.io/part-of", "salespipeline");
    jb_str(b, dst, "app.kubernetes.io/managed-by", OP_MANAGED_BY);
    jb_str(b, dst, "app.kubernetes.io/version", p->version);
}

/* The controller reference: the garbage collector deletes the object with its pipeline, and
 * the operator maps the object's events back to the pipeline through it. */
static void owner_reference(struct jb *b, cJSON *md, const struct pipeline *p)
{
    cJSON *refs = jb_arr(b, md, "ownerReferences"), *ref = jb_obj(b, refs, NULL);
    jb_str(b, ref, "apiVersion", OP_API_VERSION);
    jb_str(b, ref, "kind", OP_KIND);
    jb_str(b, ref, "name", p->name);
    jb_str(b, ref, "uid", p->uid);
    jb_bool(b, ref, "controller", true);
    jb_bool(b, ref, "blockOwnerDeletion", true);
}

cJSON *build_object_in(struct jb *b, const struct pipeline *p, enum kind_id kind, const char *ns,
                       const char *name, const char *component, const char *app)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        b->oom = true;
        return NULL;
    }
    jb_str(b, o, "apiVersion", kinds[kind].api_version);
    jb_str(b, o, "kind", kinds[kind].kind);
    cJSON *md = jb_obj(b, o, "metadata");
    jb_str(b, md, "name", name);
    jb_str(b, md, "namespace", ns);
    cJSON *labels = jb_obj(b, md, "labels");
    build_labels(b, labels, p, component, app);
    if (strcmp(ns, p->ns))
        jb_str(b, labels, OP_PIPELINE_NS_LABEL, p->ns);
    else
        owner_reference(b, md, p);
    return o;
}

cJSON *build_object(struct jb *b, const struct pipeline *p, enum kind_id kind, const char *name,
                    const char *component, const char *app)
{
    return build_object_in(b, p, kind, p->ns, name, component, app);
}

bool build_controlled_by(const cJSON *obj, const char *uid)
{
    const cJSON *ref, *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON_ArrayForEach (ref, cJSON_GetObjectItemCaseSensitive(md, "ownerReferences")) {
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "uid"));
        if (u && !strcmp(u, uid) &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ref, "controller")))
            return true;
    }
    return false;
}
