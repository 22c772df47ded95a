/* sales_keys.h - the Valkey key layout of the sales aggregates: the one definition that the
 * consumer (writer of every key) and salesctl (reader) share. ARCHITECTURE.md ("Valkey: the key layout") describes
 * each key, its type, who writes it and the dashboard read that uses it.
 *
 * Category fields and key suffixes are the names of sp_category_name() ("Electronica", ...).
 * Only the price series (and their helper hash) expire; every other key is an exact running total and never expires. */
#ifndef SP_SALES_KEYS_H
#define SP_SALES_KEYS_H

#define SP_KEY_TOTAL_SALES "sp:total_sales" /* string: sales counted, all categories */
#define SP_KEY_REPORTS "sp:reports"         /* hash category -> sales counted */
#define SP_KEY_SUM_UNITS "sp:sum_units"     /* hash category -> sum of cantidad_vendida */
#define SP_KEY_SUM_PRICE "sp:sum_price"     /* hash category -> sum of precio */
#define SP_KEY_AVG_UNITS "sp:avg_units"     /* hash category -> sum_units / reports */
#define SP_KEY_AVG_PRICE "sp:avg_price"     /* hash category -> sum_price / reports */
#define SP_KEY_MAX_PRICE "sp:max_price"     /* hash precio, producto_id: highest price seen */
#define SP_KEY_MIN_PRICE "sp:min_price"     /* hash precio, producto_id: lowest price seen */
#define SP_KEY_UNITS "sp:units"             /* zset producto_id, score = units sold */
#define SP_KEY_UNITS_CAT "sp:units:"        /* + category: zset as above, one category */
#define SP_KEY_SERIES "sp:series:"          /* + producto_id: stream of (ts, precio), expires */
#define SP_KEY_SERIES_LAST                                                                         \
    "sp:series_last"                /* hash producto_id -> start (ms) of the interval
                                              * of its last point; expires with the series */
#define SP_KEY_OFFSETS "sp:offsets" /* hash "topic:partition" -> next offset to apply */

/* Fields of the max/min price hashes and of each stream entry. */
#define SP_FIELD_PRICE "precio"
#define SP_FIELD_PRODUCT "producto_id"
#define SP_FIELD_TS "ts" /* unix milliseconds of the sale (its Kafka timestamp) */

#endif
