/* kubeconfig_test.c - kubeconfig parsing: inline data, files relative to the kubeconfig,
 * tokens, merged KUBECONFIG lists, contexts, refusals, and in-cluster configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubeconfig.h"

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *path_of(const char *name)
{
    static char path[4][512];
    static int i;
    char *p = path[i++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/kubeconfig_test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* "CA-PEM" "CERT-PEM" "KEY-PEM" in base64. */
#define CA_B64 "Q0EtUEVN"
#define CERT_B64 "Q0VSVC1QRU0="
#define KEY_B64 "S0VZLVBFTQ=="

static void test_b64(void **state)
{
    (void)state;
    size_t n;
    char *s = kubeconfig_b64decode(CERT_B64, &n);
    assert_string_equal(s, "CERT-PEM");
    assert_int_equal(n, 8);
    free(s);
    s = kubeconfig_b64decode("S0VZ\nLVBF\n TQ==", &n); /* whitespace and line breaks */
    assert_string_equal(s, "KEY-PEM");
    assert_int_equal(n, 7);
    free(s);
    assert_null(kubeconfig_b64decode("abc", &n));
    assert_null(kubeconfig_b64decode("", &n));
}

static void test_inline_client_cert(void **state)
{
    (void)state;
    struct kube_config cfg;
    char err[512];
    write_file("inline.yaml",
               "apiVersion: v1\nkind: Config\n"
               "clusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:16443/\n"
               "    certificate-authority-data: " CA_B64 "\n"
               "users:\n- name: admin\n  user:\n    client-certificate-data: " CERT_B64 "\n"
               "    client-key-data: " KEY_B64 "\n"
               "contexts:\n- name: ctx\n  context: {cluster: c1, user: admin, namespace: shop}\n"
               "current-context: ctx\n");
    assert_int_equal(kubeconfig_load_files(&cfg, path_of("inline.yaml"), NULL, err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://127.0.0.1:16443"); /* trailing slash dropped */
    assert_string_equal(cfg.ca, "CA-PEM");
    assert_int_equal(cfg.ca_len, 6);
    assert_string_equal(cfg.cert, "CERT-PEM");
    assert_string_equal(cfg.key, "KEY-PEM");
    assert_null(cfg.token);
    assert_string_equal(cfg.namespace, "shop");
    assert_false(cfg.in_cluster);
    char tok[64];
    kubeconfig_token(&cfg, tok, sizeof tok);
    assert_string_equal(tok, "");
    kubeconfig_free(&cfg);
}

static void test_files_relative_and_token(void **state)
{
    (void)state;
    struct kube_config cfg;
    char err[512], tok[64];
    write_file("ca.crt", "CA-FROM-FILE");
    write_file("token", "tok-from-file\n");
    write_file("files.yaml", "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:443\n"
                             "    certificate-authority: ca.crt\n"
                             "users:\n- name: u1\n  user:\n    token: abc.def\n"
                             "- name: u2\n  user:\n    tokenFile: token\n"
                             "contexts:\n- name: one\n  context: {cluster: c1, user: u1}\n"
                             "- name: two\n  context: {cluster: c1, user: u2}\n"
                             "current-context: one\n");
    assert_int_equal(kubeconfig_load_files(&cfg, path_of("files.yaml"), NULL, err, sizeof err), 0);
    assert_string_equal(cfg.ca, "CA-FROM-FILE");
    kubeconfig_token(&cfg, tok, sizeof tok);
    assert_string_equal(tok, "abc.def");
    assert_null(cfg.cert);
    kubeconfig_free(&cfg);
    /* An explicit context wins over current-context; tokenFile is read (newline dropped). */
    assert_int_equal(kubeconfig_load_files(&cfg, path_of("files.yaml"), "two", err, sizeof err), 0);
    kubeconfig_token(&cfg, tok, sizeof tok);
    assert_string_equal(tok, "tok-from-file");
    kubeconfig_free(&cfg);
}

static void test_merged_list(void **state)
{
    (void)state;
    struct kube_config cfg;
    char err[512], list[1100];
    /* The first file that names an entry wins; entries may come from different files. */
    write_file("a.yaml", "current-context: merged\n"
                         "contexts:\n- name: merged\n  context: {cluster: shared, user: me}\n"
                         "clusters:\n- name: shared\n  cluster: {server: 'https://first:1'}\n");
    write_file("b.yaml", "current-context: ignored\n"
                         "clusters:\n- name: shared\n  cluster: {server: 'https://second:2'}\n"
                         "users:\n- name: me\n  user: {token: from-b}\n");
    write_file("empty.yaml", "");
    snprintf(list, sizeof list, "%s:%s:%s", path_of("empty.yaml"), path_of("a.yaml"),
             path_of("b.yaml"));
    assert_int_equal(kubeconfig_load_files(&cfg, list, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://first:1");
    assert_string_equal(cfg.token, "from-b");
    kubeconfig_free(&cfg);
}

static void expect_error(const char *yaml, const char *context, const char *needle)
{
    struct kube_config cfg;
    char err[512] = "";
    write_file("bad.yaml", yaml);
    assert_int_equal(kubeconfig_load_files(&cfg, path_of("bad.yaml"), context, err, sizeof err),
                     -1);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state)
{
    (void)state;
    const char *base = "clusters:\n- name: c\n  cluster: {server: 'https://x:1'}\n"
                       "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\n";
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "%susers:\n- name: u\n  user:\n    exec: {command: gke-gcloud-auth-plugin}\n"
             "current-context: ctx\n",
             base);
    expect_error(yaml, NULL, "exec");
    snprintf(yaml, sizeof yaml,
             "%susers:\n- name: u\n  user: {client-certificate-data: " CERT_B64 "}\n"
             "current-context: ctx\n",
             base);
    expect_error(yaml, NULL, "without a key");
    snprintf(yaml, sizeof yaml,
             "%susers:\n- name: u\n  user: {client-key-data: '!!notbase64'}\n"
             "current-context: ctx\n",
             base);
    expect_error(yaml, NULL, "base64");
    snprintf(yaml, sizeof yaml, "%susers:\n- name: u\n  user: {token: t}\n", base);
    expect_error(yaml, NULL, "no context");
    expect_error(yaml, "nope", "context 'nope' not found");
    expect_error("clusters: [\n", NULL, "YAML error");
    expect_error("current-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: gone}\n", NULL,
                 "cluster 'gone' not found");
    snprintf(yaml, sizeof yaml, "%scurrent-context: ctx\n", base);
    expect_error(yaml, NULL, "user 'u' not found");
    struct kube_config cfg;
    char err[512];
    assert_int_equal(kubeconfig_load_files(&cfg, path_of("missing.yaml"), NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "No such file"));
}

static void test_in_cluster(void **state)
{
    (void)state;
    struct kube_config cfg;
    char err[512], tok[64], sa[300];
    snprintf(sa, sizeof sa, "%s/sa", dir);
    assert_int_equal(mkdir(sa, 0700) == 0 || access(sa, F_OK) == 0, 1);
    write_file("sa/token", "sa-token");
    write_file("sa/ca.crt", "SA-CA");
    write_file("sa/namespace", "salespipeline-system\n");
    assert_int_equal(kubeconfig_in_cluster(&cfg, sa, "10.0.0.1", "443", err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://10.0.0.1:443");
    assert_string_equal(cfg.ca, "SA-CA");
    assert_string_equal(cfg.namespace, "salespipeline-system");
    assert_true(cfg.in_cluster);
    kubeconfig_token(&cfg, tok, sizeof tok);
    assert_string_equal(tok, "sa-token");
    kubeconfig_free(&cfg);
    assert_int_equal(kubeconfig_in_cluster(&cfg, sa, "fd00::1", "443", err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://[fd00::1]:443");
    kubeconfig_free(&cfg);
    assert_int_equal(kubeconfig_in_cluster(&cfg, sa, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
}

/* Resolution order: explicit path, then $KUBECONFIG, then ~/.kube/config, then in-cluster. */
static void test_resolution_order(void **state)
{
    (void)state;
    struct kube_config cfg;
    char err[512], home[300];
    write_file("env.yaml", "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\n"
                           "clusters:\n- name: k\n  cluster: {server: 'https://from-env:1'}\n");
    write_file("flag.yaml", "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\n"
                            "clusters:\n- name: k\n  cluster: {server: 'https://from-flag:1'}\n");
    setenv("KUBECONFIG", path_of("env.yaml"), 1);
    assert_int_equal(kubeconfig_load(&cfg, path_of("flag.yaml"), NULL, err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://from-flag:1");
    kubeconfig_free(&cfg);
    assert_int_equal(kubeconfig_load(&cfg, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://from-env:1");
    kubeconfig_free(&cfg);
    unsetenv("KUBECONFIG");
    snprintf(home, sizeof home, "%s/home", dir);
    mkdir(home, 0700);
    snprintf(home, sizeof home, "%s/home/.kube", dir);
    mkdir(home, 0700);
    write_file("home/.kube/config",
               "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\n"
               "clusters:\n- name: k\n  cluster: {server: 'https://from-home:1'}\n");
    snprintf(home, sizeof home, "%s/home", dir);
    setenv("HOME", home, 1);
    assert_int_equal(kubeconfig_load(&cfg, "", NULL, err, sizeof err), 0);
    assert_string_equal(cfg.server, "https://from-home:1");
    kubeconfig_free(&cfg);
    setenv("HOME", dir, 1); /* no .kube/config there: in-cluster, which is not set up */
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kubeconfig_load(&cfg, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "in-cluster"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_inline_client_cert),
        cmocka_unit_test(test_files_relative_and_token),
        cmocka_unit_test(test_merged_list),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_resolution_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
