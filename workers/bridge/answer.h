/* answer.h - what the bridge tells its client, given how the writer's call ended.
 *
 * Pure function, no state. OK -> 202 {"estado": <the writer's estado>}; INVALID_ARGUMENT -> 400
 * {"error","field"} (the field named in the writer's message when it names one);
 * RESOURCE_EXHAUSTED and UNAVAILABLE -> 503 (Retry-After added by the intake);
 * DEADLINE_EXCEEDED -> 504; any other code -> 502. */
#ifndef BR_ANSWER_H
#define BR_ANSWER_H

#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

#include "rest.h"

struct br_answer {
    unsigned status;
    int error; /* enum sp_downstream_error, or -1 when the writer took it */
    size_t len;
    char body[SP_REST_ANSWER_MAX];
};

/* `details` (not NUL-terminated) is the status message; `reply` the serialized
 * blackfriday.ProductSaleResponse, read only when `code` is OK. */
void br_answer(struct br_answer *a, grpc_status_code code, const char *details, size_t details_len,
               const uint8_t *reply, size_t reply_len);

#endif
