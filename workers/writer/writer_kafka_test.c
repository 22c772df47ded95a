/* writer_kafka_test.c - a fatal producer error, injected with librdkafka's own tools (its mock
 * cluster and rd_kafka_test_fatal_error): no record is answered OK after it, not even one the
 * broker confirms afterwards; readiness turns false; and the real writer program exits 1.
 * Run from the repository root after `make` (the last test starts build/.../bin/writer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"

#define TOPIC "sales"
#define API_INIT_PRODUCER_ID 22 /* Kafka protocol ApiKey of InitProducerId */

static char self_dir[PATH_MAX];

/* Delivery reports, as the poll thread hands them over. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int reports, ok_reports;
static rd_kafka_resp_err_t last_err;

static void on_delivery(void *opaque, rd_kafka_resp_err_t err)
{
    (void)opaque;
    pthread_mutex_lock(&lock);
    reports++;
    ok_reports += !err;
    last_err = err;
    pthread_mutex_unlock(&lock);
}

static int reports_now(void)
{
    pthread_mutex_lock(&lock);
    int n = reports;
    pthread_mutex_unlock(&lock);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void wait_reports(int n, double seconds)
{
    double end = now_s() + seconds;
    while (reports_now() < n && now_s() < end)
        usleep(10000);
    if (reports_now() < n)
        fail_msg("%d delivery reports after %.0f s, want %d", reports_now(), seconds, n);
}

/* A one-broker mock cluster with the topic; its host handle in *host. */
static rd_kafka_mock_cluster_t *mock_cluster(rd_kafka_t **host)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(*host);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(*host, 1);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, 1, 1), 0);
    return mc;
}

static struct wr_kafka *writer_kafka(rd_kafka_mock_cluster_t *mc)
{
    char err[256];
    struct wr_kafka_options o = {.brokers = rd_kafka_mock_cluster_bootstraps(mc),
                                 .topic = TOPIC,
                                 .client_id = "writer-test",
                                 .delivery_timeout_ms = 5000,
                                 .linger_ms = 0,
                                 .queue_max = 100,
                                 .acks = -1,
                                 .idempotence = 1,
                                 .on_delivery = on_delivery};
    struct wr_kafka *k = wr_kafka_new(&o, err, sizeof err);
    if (!k)
        fail_msg("%s", err);
    return k;
}

static void send_one(struct wr_kafka *k, const char *id)
{
    struct wr_record r = {.key = id,
                          .key_len = strlen(id),
                          .value = "v",
                          .value_len = 1,
                          .sale_id = id,
                          .received_ms = 1};
    assert_int_equal(wr_kafka_send(k, &r, NULL), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void reset_reports(void)
{
    pthread_mutex_lock(&lock);
    reports = ok_reports = 0;
    last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    pthread_mutex_unlock(&lock);
}

/* A record the broker confirms after the fatal error is still not answered OK. */
static void test_no_ok_after_a_fatal_error(void **state)
{
    (void)state;
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc = mock_cluster(&host);
    struct wr_kafka *k = writer_kafka(mc);
    reset_reports();
    send_one(k, "before");
    wait_reports(1, 10);
    assert_int_equal(ok_reports, 1);
    wr_kafka_probe(k, 5000);
    assert_true(wr_kafka_up(k));
    assert_false(wr_kafka_failed(k));

    /* The next record waits 1.5 s for its answer; the fatal error comes in between. */
    rd_kafka_mock_broker_set_rtt(mc, 1, 1500);
    send_one(k, "in-flight");
    usleep(300000);
    assert_int_equal(rd_kafka_test_fatal_error(wr_kafka_producer(k),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "injected by writer_kafka_test"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_true(wr_kafka_failed(k));
    assert_false(wr_kafka_up(k)); /* /readyz says no at once */
    wait_reports(2, 10);
    assert_int_equal(ok_reports, 1); /* only the record from before */
    assert_int_not_equal(last_err, RD_KAFKA_RESP_ERR_NO_ERROR);
    /* New records are refused outright. */
    struct wr_record r = {.key = "k",
                          .key_len = 1,
                          .value = "v",
                          .value_len = 1,
                          .sale_id = "after",
                          .received_ms = 1};
    assert_int_not_equal(wr_kafka_send(k, &r, NULL), RD_KAFKA_RESP_ERR_NO_ERROR);
    wr_kafka_free(k, 1000);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
}

/* A producer that gets no producer id (the broker refuses it) fails its records: never OK. */
static void test_fatal_at_start(void **state)
{
    (void)state;
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc = mock_cluster(&host);
    rd_kafka_mock_push_request_errors(mc, API_INIT_PRODUCER_ID, 1,
                                      RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    struct wr_kafka *k = writer_kafka(mc);
    reset_reports();
    /* The refusal may come back before a send: that send is then refused outright (_FATAL),
     * which is as good as a failed report; only the sends taken must be reported. */
    int taken = 0;
    const char *ids[] = {"a", "b"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        struct wr_record r = {.key = ids[i],
                              .key_len = 1,
                              .value = "v",
                              .value_len = 1,
                              .sale_id = ids[i],
                              .received_ms = 1};
        rd_kafka_resp_err_t err = wr_kafka_send(k, &r, NULL);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            taken++;
        else
            assert_int_equal(err, RD_KAFKA_RESP_ERR__FATAL);
    }
    double end = now_s() + 10;
    while (!wr_kafka_failed(k) && now_s() < end)
        usleep(10000);
    assert_true(wr_kafka_failed(k));
    wr_kafka_abandon(k); /* what the writer does before it exits */
    wait_reports(taken, 10);
    assert_int_equal(ok_reports, 0);
    wr_kafka_free(k, 1000);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
}

/* The program: a fatal error ends it with exit status 1 (the Deployment restarts it). */
static void test_writer_exits_1(void **state)
{
    (void)state;
    char writer[PATH_MAX + 16], log[] = "/tmp/writer_kafka_test.XXXXXX";
    snprintf(writer, sizeof writer, "%s/../bin/writer", self_dir);
    if (access(writer, X_OK) != 0)
        fail_msg("%s missing: run make first", writer);
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc = mock_cluster(&host);
    rd_kafka_mock_push_request_errors(mc, API_INIT_PRODUCER_ID, 1,
                                      RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        execl(writer, writer, "--kafka-brokers", rd_kafka_mock_cluster_bootstraps(mc), "--topic",
              TOPIC, "--grpc-port", "0", "--http-port", "0", "--bind", "127.0.0.1", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    double end = now_s() + 30;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the writer did not exit after a fatal error");
        }
        usleep(20000);
    }
    char text[65536] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(log);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
        fail_msg("writer status %d, want exit 1; its log:\n%s", status, text);
    assert_non_null(strstr(text, "\"event\":\"kafka_fatal\""));
}

int main(int argc, char **argv)
{
    (void)argc;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", argv[0]);
    snprintf(self_dir, sizeof self_dir, "%s", dirname(path));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_ok_after_a_fatal_error),
        cmocka_unit_test(test_fatal_at_start),
        cmocka_unit_test(test_writer_exits_1),
    };
    return cmocka_run_group_tests_name("writer_kafka", tests, NULL, NULL);
}
