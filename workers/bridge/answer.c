/* answer.c - a gRPC call's end as the bridge's HTTP answer. See answer.h. */
#include "answer.h"

#include <stdio.h>
#include <string.h>

#include "blackfriday.pb-c.h"
#include "log.h"

static const char *const sale_fields[] = {"categoria", "producto_id", "precio", "cantidad_vendida"};

/* OK means the writer stored the sale: an unreadable reply still answers 202. */
static void accepted(struct br_answer *a, const uint8_t *reply, size_t reply_len)
{
    Blackfriday__ProductSaleResponse *msg = reply ? blackfriday__product_sale_response__unpack(
                                                        NULL, reply_len, reply)
                                                  : NULL;
    size_t n = (size_t)snprintf(a->body, sizeof a->body, "{\"estado\":\"");
    n = sp_json_escape(a->body, n, sizeof a->body - 3, msg ? msg->estado : "");
    memcpy(a->body + n, "\"}", 3);
    if (msg)
        blackfriday__product_sale_response__free_unpacked(msg, NULL);
    a->status = 202;
    a->error = -1;
    a->len = n + 2;
}

/* 400 {"error": <the writer's message>, "field": <the first sale field it names, or null>}. */
static void invalid(struct br_answer *a, const char *details)
{
    const char *field = NULL;
    for (size_t i = 0; i < sizeof sale_fields / sizeof sale_fields[0] && !field; i++)
        if (strstr(details, sale_fields[i]))
            field = sale_fields[i];
    size_t n = (size_t)snprintf(a->body, sizeof a->body, "{\"error\":\"");
    n = sp_json_escape(a->body, n, sizeof a->body - 40, *details ? details : "invalid sale");
    if (field)
        n += (size_t)snprintf(a->body + n, sizeof a->body - n, "\",\"field\":\"%s\"}", field);
    else
        n += (size_t)snprintf(a->body + n, sizeof a->body - n, "\",\"field\":null}");
    a->status = 400;
    a->error = SP_DOWNSTREAM_REJECTED;
    a->len = n;
}

static void failed(struct br_answer *a, unsigned status, int error, const char *what,
                   const char *details)
{
    char msg[320];
    snprintf(msg, sizeof msg, "%s%s%s", what, *details ? ": " : "", details);
    a->status = status;
    a->error = error;
    a->len = sp_rest_error_json(a->body, sizeof a->body, msg);
}

void br_answer(struct br_answer *a, grpc_status_code code, const char *details, size_t details_len,
               const uint8_t *reply, size_t reply_len)
{
    char text[256], other[48];
    size_t n = details_len < sizeof text - 1 ? details_len : sizeof text - 1;
    memcpy(text, details, n);
    text[n] = '\0';
    switch (code) {
    case GRPC_STATUS_OK:
        accepted(a, reply, reply_len);
        break;
    case GRPC_STATUS_INVALID_ARGUMENT:
        invalid(a, text);
        break;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        failed(a, 503, SP_DOWNSTREAM_OVERLOADED, "writer overloaded", text);
        break;
    case GRPC_STATUS_UNAVAILABLE:
        failed(a, 503, SP_DOWNSTREAM_UNAVAILABLE, "writer unavailable", text);
        break;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        failed(a, 504, SP_DOWNSTREAM_TIMEOUT, "the writer did not answer in time", "");
        break;
    default:
        snprintf(other, sizeof other, "writer failed with gRPC status %d", (int)code);
        failed(a, 502, SP_DOWNSTREAM_FAILED, other, text);
        break;
    }
}
