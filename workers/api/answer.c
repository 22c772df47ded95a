/* answer.c - the bridge's result as the api's answer. See answer.h. */
#include "answer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static void set_error(struct api_answer *a, unsigned status, int error, const char *msg)
{
    a->status = status;
    a->error = error;
    a->len = sp_rest_error_json(a->body, sizeof a->body, msg);
}

/* 202 {"estado": <the bridge's estado, "" if it sent none>, "id": <sale id>}. A 2xx from the
 * bridge means the sale is stored, so an unreadable body does not turn it into an error. */
static void accepted(struct api_answer *a, const char *resp, size_t resp_len, const char *id)
{
    cJSON *root = resp_len ? cJSON_ParseWithLength(resp, resp_len) : NULL;
    const cJSON *estado = cJSON_GetObjectItemCaseSensitive(root, "estado");
    const char *text = cJSON_IsString(estado) ? estado->valuestring : "";
    size_t n = (size_t)snprintf(a->body, sizeof a->body, "{\"estado\":\"");
    n = sp_json_escape(a->body, n, sizeof a->body - SP_REST_SALE_ID_MAX - 16, text);
    n += (size_t)snprintf(a->body + n, sizeof a->body - n, "\",\"id\":\"%s\"}", id);
    cJSON_Delete(root);
    a->status = 202;
    a->error = -1;
    a->len = n;
}

/* The bridge's own answer, kept when it is JSON-looking, else a generic one. */
static void pass_through(struct api_answer *a, unsigned status, int error, const char *resp,
                         size_t resp_len, const char *fallback)
{
    if (resp_len && resp_len <= sizeof a->body && resp[0] == '{') {
        memcpy(a->body, resp, resp_len);
        a->len = resp_len;
        a->status = status;
        a->error = error;
        return;
    }
    set_error(a, status, error, fallback);
}

static void transport_failed(struct api_answer *a, CURLcode rc)
{
    char msg[160];
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        set_error(a, 504, SP_DOWNSTREAM_TIMEOUT, "the bridge did not answer in time");
        return;
    }
    snprintf(msg, sizeof msg, "bridge unavailable: %s", curl_easy_strerror(rc));
    set_error(a, 503, SP_DOWNSTREAM_UNAVAILABLE, msg);
}

void api_answer(struct api_answer *a, CURLcode rc, long code, const char *resp, size_t resp_len,
                const char *sale_id)
{
    char msg[64];
    if (rc != CURLE_OK)
        transport_failed(a, rc);
    else if (code >= 200 && code < 300)
        accepted(a, resp, resp_len, sale_id);
    else if (code == 503)
        pass_through(a, 503, SP_DOWNSTREAM_OVERLOADED, resp, resp_len, "the bridge is overloaded");
    else if (code == 504)
        pass_through(a, 504, SP_DOWNSTREAM_TIMEOUT, resp, resp_len,
                     "the writer did not answer in time");
    else if (code >= 400 && code < 500)
        pass_through(a, (unsigned)code, SP_DOWNSTREAM_REJECTED, resp, resp_len,
                     "the bridge refused the sale");
    else {
        snprintf(msg, sizeof msg, "the bridge answered HTTP %ld", code);
        pass_through(a, 502, SP_DOWNSTREAM_FAILED, resp, resp_len, msg);
    }
}
