/* answer.h - what the api tells its client, given what the bridge did with the sale.
 *
 * Pure function, no state. The bridge's 2xx becomes 202 {"estado","id"}; its 4xx, 503 and 504
 * pass through (503 is answered with Retry-After by the intake); its other answers become 502
 * (body kept when it is JSON); a timeout is 504; a refused or broken connection is 503. */
#ifndef API_ANSWER_H
#define API_ANSWER_H

#include <curl/curl.h>
#include <stddef.h>

#include "rest.h"

struct api_answer {
    unsigned status;
    int error; /* enum sp_downstream_error, or -1 when the bridge took it */
    size_t len;
    char body[SP_REST_ANSWER_MAX];
};

/* `rc` is the transfer's result, `http_code` the bridge's status (when rc is CURLE_OK), `resp`
 * its body (possibly cut at SP_REST_ANSWER_MAX) and `sale_id` the id the api gave the sale. */
void api_answer(struct api_answer *a, CURLcode rc, long http_code, const char *resp,
                size_t resp_len, const char *sale_id);

#endif
