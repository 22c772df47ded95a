/* sale.h - one sale: validation of the JSON the api and bridge take, and its protobuf form.
 *
 * The rules (issues 2 and 9): the body is exactly one JSON object (nothing but whitespace
 * after it) and no string in it holds an escaped NUL; categoria 1-4 or a name (any case);
 * producto_id 1-64 Unicode characters of valid UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF) without control characters (U+0000-001F, U+007F-009F), so
 * "Ropa-niño-7" is a product; precio finite, > 0 and <= 1,000,000; cantidad_vendida an integer
 * 1-100,000. Fields not named are ignored. The wire message is blackfriday.ProductSaleRequest,
 * whose proto3 string must be valid UTF-8: the same check guards every way in. */
#ifndef SP_SALE_H
#define SP_SALE_H

#include <stddef.h>
#include <stdint.h>

#define SP_PRODUCT_ID_MAX 64                        /* characters (code points) */
#define SP_PRODUCT_ID_BYTES (4 * SP_PRODUCT_ID_MAX) /* its UTF-8 bytes at most */
#define SP_PRICE_MAX 1000000.0
#define SP_UNITS_MAX 100000
#define SP_BODY_MAX (64 * 1024)
#define SP_SALE_ID_LEN 32
#define SP_CATEGORIES 4

struct sp_sale {
    int categoria;                             /* 1..4 */
    char producto_id[SP_PRODUCT_ID_BYTES + 1]; /* UTF-8 */
    double precio;
    int32_t cantidad_vendida;
};

/* Why a sale was refused: the field (NULL for the body as a whole) and a reason. */
struct sp_sale_error {
    const char *field;
    const char *reason;
};

int sp_sale_parse_json(const char *body, size_t len, struct sp_sale *sale,
                       struct sp_sale_error *err);
int sp_sale_validate(const struct sp_sale *sale, struct sp_sale_error *err);

/* 1..4 for a category name (any case) or its number as text; 0 if neither. */
int sp_category_parse(const char *text);
/* The dashboard category assigned to a student id ("carnet") by its last digit: 0-2
 * Electronica, 3-5 Ropa, 6-7 Hogar, 8-9 Belleza; 0 when it does not end in a digit. */
int sp_category_of_carnet(const char *carnet);
/* "Electronica", ... for 1..4; NULL otherwise. */
const char *sp_category_name(int categoria);

/* The longest canonical JSON and protobuf forms of a valid sale: buffers of these sizes always
 * fit (sale_test.c checks the worst cases). */
#define SP_SALE_JSON_MAX (SP_PRODUCT_ID_BYTES + 128)
#define SP_SALE_PB_MAX (SP_PRODUCT_ID_BYTES + 32)

/* Canonical compact JSON (categoria as its number, precio round-trip exact). Returns the
 * length written, or 0 if `cap` is too small. */
size_t sp_sale_to_json(const struct sp_sale *sale, char *buf, size_t cap);
/* Renders {"error": reason, "field": field} into buf. Returns the length. */
size_t sp_sale_error_json(const struct sp_sale_error *err, char *buf, size_t cap);

/* Protobuf (blackfriday.ProductSaleRequest). pack returns the length, 0 if `cap` is short;
 * unpack returns 0 on success, -1 on bytes that are not a valid message. A decoded message
 * still needs sp_sale_validate. */
size_t sp_sale_pack(const struct sp_sale *sale, uint8_t *buf, size_t cap);
int sp_sale_unpack(const uint8_t *data, size_t len, struct sp_sale *sale);

/* A fresh id, unique across processes and restarts: SP_SALE_ID_LEN hex digits + NUL. */
void sp_sale_id_new(char out[SP_SALE_ID_LEN + 1]);

#endif
