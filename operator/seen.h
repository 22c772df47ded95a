/* seen.h - what the operator last saw of each object it applied, to tell "created", "changed"
 * and "unchanged" apart for Events and logs. Not used for decisions: the reconcile stays
 * level-based, this only words its messages.
 *
 * Per pipeline, a fixed array of (kind, name hash, fingerprint). The fingerprint covers the body
 * we sent and our field manager's managedFields entry (its time and field set), which the API
 * server changes only when one of our applies changed the object: a new body says what we want
 * changed even within the entry's one-second resolution, the entry catches a drift we undid.
 * Bounded: at most `max_owners` pipelines are remembered; beyond that the table is cleared. */
#ifndef OP_SEEN_H
#define OP_SEEN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kinds.h"

enum seen_result { SEEN_NEW, SEEN_SAME, SEEN_CHANGED };

struct seen;

struct seen *seen_new(size_t max_owners);
void seen_free(struct seen *s);

/* Records `obj` (the response to applying `sent`) under the pipeline `owner` ("ns/name"). */
enum seen_result seen_record(struct seen *s, const char *owner, enum kind_id kind,
                             const cJSON *sent, const cJSON *obj);
/* Forgets one object, or (kind KIND_COUNT) the whole pipeline. */
void seen_forget(struct seen *s, const char *owner, enum kind_id kind, const char *name);

#endif
