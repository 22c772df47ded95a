/* rest_test.c - the suspend/resume life of a sale in the REST intake: answered at once on the
 * daemon thread, later from other threads, after its client hung up, past the in-flight bound,
 * past every client timeout, and at shutdown; trickling clients cut off by the deadlines. Run under ASan, a race shows up as a use-after-free or a leak. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"
#include "rest.h"

#define MAX_IN_FLIGHT 8
#define HELD_MAX 64
#define HEADER_TIMEOUT_MS 300
#define BODY_TIMEOUT_MS 300

enum mode { ANSWER_NOW, ANSWER_FROM_THREAD, HOLD };

static struct {
    struct sp_rest *rest;
    char url[64];
    _Atomic int mode;
    pthread_mutex_t lock;
    struct sp_rest_call *held[HELD_MAX];
    int held_count;
} t = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char ACCEPTED[] = "{\"estado\":\"ok\"}";

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000}, NULL);
}

static void *complete_later(void *arg)
{
    sleep_ms(rand() % 5);
    sp_rest_complete(arg, 202, ACCEPTED, sizeof ACCEPTED - 1);
    return NULL;
}

static void forward(const struct sp_sale *sale, const char *sale_id, struct sp_rest_call *call,
                    void *arg)
{
    (void)sale, (void)sale_id, (void)arg;
    pthread_t th;
    switch (atomic_load(&t.mode)) {
    case ANSWER_NOW:
        sp_rest_complete(call, 202, ACCEPTED, sizeof ACCEPTED - 1);
        break;
    case ANSWER_FROM_THREAD:
        if (pthread_create(&th, NULL, complete_later, call) != 0)
            abort();
        pthread_detach(th);
        break;
    case HOLD:
        pthread_mutex_lock(&t.lock);
        if (t.held_count == HELD_MAX)
            abort();
        t.held[t.held_count++] = call;
        pthread_mutex_unlock(&t.lock);
        break;
    }
}

static int held(void)
{
    pthread_mutex_lock(&t.lock);
    int n = t.held_count;
    pthread_mutex_unlock(&t.lock);
    return n;
}

static void release_held(unsigned status)
{
    pthread_mutex_lock(&t.lock);
    for (int i = 0; i < t.held_count; i++)
        sp_rest_complete(t.held[i], status, "{\"error\":\"released\"}", 20);
    t.held_count = 0;
    pthread_mutex_unlock(&t.lock);
}

static void wait_held(int n)
{
    for (int i = 0; i < 2000 && held() < n; i++)
        sleep_ms(5);
    assert_int_equal(held(), n);
}

/* --- a client --- */

struct reply {
    long status;
    CURLcode rc;
    char retry_after[8];
    char body[256];
    size_t len;
    long timeout_ms;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t k = size * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, data, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    if (size * n > 13 && strncasecmp(data, "Retry-After: ", 13) == 0)
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)strcspn(data + 13, "\r\n"),
                 data + 13);
    return size * n;
}

static void *post_sale(void *arg)
{
    static const char sale[] =
        "{\"categoria\":1,\"producto_id\":\"p\",\"precio\":1,\"cantidad_vendida\":1}";
    struct reply *r = arg;
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, t.url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, sale);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms ? r->timeout_ms : 20000L);
    r->rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return NULL;
}

static void post_many(struct reply *r, int n)
{
    pthread_t th[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, post_sale, &r[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static void start_posts(pthread_t *th, struct reply *r, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&th[i], NULL, post_sale, &r[i]), 0);
}

static void join_posts(pthread_t *th, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* --- tests --- */

static void test_answered_on_the_daemon_thread(void **state)
{
    (void)state;
    atomic_store(&t.mode, ANSWER_NOW);
    for (int round = 0; round < 5; round++) {
        struct reply r[MAX_IN_FLIGHT] = {0};
        post_many(r, MAX_IN_FLIGHT);
        for (int i = 0; i < MAX_IN_FLIGHT; i++) {
            assert_int_equal(r[i].rc, CURLE_OK);
            assert_int_equal(r[i].status, 202);
            assert_string_equal(r[i].body, ACCEPTED);
        }
    }
    assert_int_equal(sp_rest_drain(t.rest, 5), 0);
}

static void test_answered_from_other_threads(void **state)
{
    (void)state;
    atomic_store(&t.mode, ANSWER_FROM_THREAD);
    for (int round = 0; round < 5; round++) {
        struct reply r[MAX_IN_FLIGHT] = {0};
        post_many(r, MAX_IN_FLIGHT);
        for (int i = 0; i < MAX_IN_FLIGHT; i++)
            assert_int_equal(r[i].status, 202);
    }
    assert_int_equal(sp_rest_drain(t.rest, 5), 0);
}

/* The client gives up while its sale is suspended; the answer comes later and finds the
 * connection gone. The call must be freed exactly once, after the answer. */
static void test_client_gone_while_suspended(void **state)
{
    (void)state;
    atomic_store(&t.mode, HOLD);
    struct reply r[4] = {0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        r[i].timeout_ms = 300;
    start_posts(th, r, 4);
    join_posts(th, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(held(), 4);
    assert_int_equal(sp_rest_in_flight(t.rest), 4); /* still ours until answered */
    release_held(202);
    assert_int_equal(sp_rest_drain(t.rest, 5), 0);
}

static void test_bound_refuses_at_once(void **state)
{
    (void)state;
    atomic_store(&t.mode, HOLD);
    struct reply r[MAX_IN_FLIGHT] = {0}, extra = {0};
    pthread_t th[MAX_IN_FLIGHT];
    start_posts(th, r, MAX_IN_FLIGHT);
    wait_held(MAX_IN_FLIGHT);
    post_sale(&extra);
    assert_int_equal(extra.status, 503);
    assert_string_equal(extra.retry_after, "1");
    assert_non_null(strstr(extra.body, "too many sales in flight"));
    release_held(503);
    join_posts(th, MAX_IN_FLIGHT);
    for (int i = 0; i < MAX_IN_FLIGHT; i++) {
        assert_int_equal(r[i].status, 503);
        assert_string_equal(r[i].retry_after, "1");
    }
    assert_int_equal(sp_rest_drain(t.rest, 5), 0);
}

/* A sale held past every client timeout (headers, body, idle) is still answered: a suspended
 * connection owes its answer. */
static void test_held_sale_outlives_the_timeouts(void **state)
{
    (void)state;
    atomic_store(&t.mode, HOLD);
    struct reply r = {0};
    pthread_t th;
    start_posts(&th, &r, 1);
    wait_held(1);
    sleep_ms(4 * HEADER_TIMEOUT_MS + 1200); /* past the idle timeout (1 s) too */
    release_held(202);
    join_posts(&th, 1);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 202);
    assert_int_equal(sp_rest_drain(t.rest, 5), 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sends `first`, then one byte of `trickle` every 50 ms, until the server ends the connection;
 * returns the seconds that took (or -1 past 5 s). */
static double trickle_until_closed(const char *first, const char *trickle)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(sp_rest_port(t.rest))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_usec = 50 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double start = now_s(), took = -1;
    assert_int_equal(send(fd, first, strlen(first), MSG_NOSIGNAL), (ssize_t)strlen(first));
    for (size_t i = 0; now_s() - start < 5; i++) {
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            took = now_s() - start;
            break;
        }
        assert_true(n < 0); /* no answer is ever sent */
        if (send(fd, trickle + i % strlen(trickle), 1, MSG_NOSIGNAL) < 0) {
            took = now_s() - start;
            break;
        }
    }
    close(fd);
    return took;
}

/* A byte every 50 ms keeps MHD's idle timeout away forever; the deadlines do not move. */
static void test_trickling_clients_are_cut_off(void **state)
{
    (void)state;
    double headers = trickle_until_closed("POST /ventas HTTP/1.1\r\nHost: x\r\n", "X-Slow: a\r\n");
    double body = trickle_until_closed("POST /ventas HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                       "application/json\r\nContent-Length: 500\r\n\r\n",
                                       " ");
    assert_true(headers >= HEADER_TIMEOUT_MS / 1e3 * 0.9 &&
                headers < HEADER_TIMEOUT_MS / 1e3 + 0.5);
    assert_true(body >= BODY_TIMEOUT_MS / 1e3 * 0.9 && body < BODY_TIMEOUT_MS / 1e3 + 0.5);
}

static void stop_forwarder(void *arg)
{
    (void)arg;
    release_held(503);
}

/* Shutdown with sales held: the drain times out, the forwarder's stop answers them, the
 * clients get those answers, and nothing leaks. Runs last. */
static void test_shutdown_with_sales_held(void **state)
{
    (void)state;
    atomic_store(&t.mode, HOLD);
    struct reply r[3] = {0};
    pthread_t th[3];
    start_posts(th, r, 3);
    wait_held(3);
    assert_int_equal(sp_rest_shutdown(t.rest, 0.2, stop_forwarder, NULL), 3);
    t.rest = NULL;
    join_posts(th, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].status, 503);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sp_rest_config cfg = {.bind_addr = "127.0.0.1",
                                 .port = 0,
                                 .threads = 2,
                                 .max_in_flight = MAX_IN_FLIGHT,
                                 .client_connections = 256,
                                 .header_timeout_ms = HEADER_TIMEOUT_MS,
                                 .body_timeout_ms = BODY_TIMEOUT_MS,
                                 .idle_timeout_s = 1,
                                 .forward = forward};
    t.rest = sp_rest_start(&cfg);
    if (!t.rest)
        return -1;
    snprintf(t.url, sizeof t.url, "http://127.0.0.1:%u/ventas", (unsigned)sp_rest_port(t.rest));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (t.rest)
        sp_rest_shutdown(t.rest, 1, stop_forwarder, NULL);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answered_on_the_daemon_thread),
        cmocka_unit_test(test_answered_from_other_threads),
        cmocka_unit_test(test_client_gone_while_suspended),
        cmocka_unit_test(test_bound_refuses_at_once),
        cmocka_unit_test(test_held_sale_outlives_the_timeouts),
        cmocka_unit_test(test_trickling_clients_are_cut_off),
        cmocka_unit_test(test_shutdown_with_sales_held),
    };
    return cmocka_run_group_tests_name("rest", tests, setup, teardown);
}
