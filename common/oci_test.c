/* oci_test.c - the OCI client's pieces: references, challenges, docker config.json, manifests,
 * digests. The pulls themselves are tested against a real registry (tests/images). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "oci.h"

static void expect_ref(const char *text, const char *registry, const char *repository,
                       const char *reference, int by_digest)
{
    struct sp_oci_ref r;
    char err[256] = "";
    if (sp_oci_ref_parse(text, &r, err, sizeof err) != 0)
        fail_msg("refused %s: %s", text, err);
    assert_string_equal(r.registry, registry);
    assert_string_equal(r.repository, repository);
    assert_string_equal(r.reference, reference);
    assert_int_equal(r.by_digest, by_digest);
}

static void expect_bad_ref(const char *text, const char *words)
{
    struct sp_oci_ref r;
    char err[256] = "";
    if (sp_oci_ref_parse(text, &r, err, sizeof err) == 0)
        fail_msg("accepted %s", text);
    if (!strstr(err, words))
        fail_msg("'%s' lacks '%s' for %s", err, words, text);
}

#define DIGEST "sha256:41e0f4ac66a504a2c3c1d6506ac2b54d3f34c5a1845ca16c4885f60bfdeb6920"

static void test_references(void **state)
{
    (void)state;
    expect_ref("127.0.0.1:15000/blackfriday/catalog:0.1.0", "127.0.0.1:15000",
               "blackfriday/catalog", "0.1.0", 0);
    expect_ref("10.128.0.5:5000/blackfriday/catalog", "10.128.0.5:5000", "blackfriday/catalog",
               "latest", 0);
    expect_ref("zot.example.com/catalog:v1", "zot.example.com", "catalog", "v1", 0);
    expect_ref("localhost/a/b/c:T_1.x-y", "localhost", "a/b/c", "T_1.x-y", 0);
    expect_ref("localhost:5000/catalog@" DIGEST, "localhost:5000", "catalog", DIGEST, 1);
    expect_ref("localhost:5000/catalog:v1@" DIGEST, "localhost:5000", "catalog", DIGEST, 1);

    expect_bad_ref("catalog:v1", "host[:port]/repository");
    expect_bad_ref("blackfriday/catalog:v1", "names no registry host");
    expect_bad_ref("localhost:5000/Catalog:v1", "bad repository");
    expect_bad_ref("localhost:5000/catalog/:v1", "bad repository");
    expect_bad_ref("localhost:5000/catalog:", "bad tag");
    expect_bad_ref("localhost:5000/catalog:v 1", "bad tag");
    expect_bad_ref("localhost:5000/catalog@sha256:abc", "sha256:<64 hex digits>");
    expect_bad_ref("localhost:5000/catalog@md5:" DIGEST, "sha256:<64 hex digits>");
}

static void test_challenges(void **state)
{
    (void)state;
    struct sp_oci_challenge ch;
    assert_int_equal(sp_oci_parse_challenge("Basic realm=\"salespipeline\"", &ch), 0);
    assert_string_equal(ch.scheme, "Basic");
    assert_string_equal(ch.realm, "salespipeline");

    assert_int_equal(
        sp_oci_parse_challenge(
            "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\","
            "scope=\"repository:blackfriday/catalog:pull\"",
            &ch),
        0);
    assert_string_equal(ch.scheme, "Bearer");
    assert_string_equal(ch.realm, "https://auth.example.com/token");
    assert_string_equal(ch.service, "registry.example.com");
    assert_string_equal(ch.scope, "repository:blackfriday/catalog:pull");

    /* Unquoted values, spaces after commas, an escaped quote, unknown parameters. */
    assert_int_equal(
        sp_oci_parse_challenge(
            "bearer realm=http://127.0.0.1:9/t, error=\"invalid_token\", service=\"a\\\"b\"", &ch),
        0);
    assert_string_equal(ch.scheme, "bearer");
    assert_string_equal(ch.realm, "http://127.0.0.1:9/t");
    assert_string_equal(ch.service, "a\"b");

    assert_int_equal(sp_oci_parse_challenge("", &ch), -1);
    assert_int_equal(sp_oci_parse_challenge("Bearer realm=\"unterminated", &ch), -1);
}

static void test_auth_file(void **state)
{
    (void)state;
    char user[64], pass[64], err[256];
    /* "salespipeline:s3cr:t" and the forms docker login wrote over time. */
    const char *config = "{\"auths\":{"
                         "\"https://other.example.com/v1/\":{\"auth\":\"b3RoZXI6eA==\"},"
                         "\"127.0.0.1:15000\":{\"auth\":\"c2FsZXNwaXBlbGluZTpzM2NyOnQ=\"},"
                         "\"https://zot.example.com\":{\"username\":\"ana\",\"password\":\"pw\"}}}";
    assert_int_equal(sp_oci_auth_lookup(config, "127.0.0.1:15000", user, sizeof user, pass,
                                        sizeof pass, err, sizeof err),
                     1);
    assert_string_equal(user, "salespipeline");
    assert_string_equal(pass, "s3cr:t");
    assert_int_equal(sp_oci_auth_lookup(config, "zot.example.com", user, sizeof user, pass,
                                        sizeof pass, err, sizeof err),
                     1);
    assert_string_equal(user, "ana");
    assert_string_equal(pass, "pw");
    assert_int_equal(sp_oci_auth_lookup(config, "other.example.com", user, sizeof user, pass,
                                        sizeof pass, err, sizeof err),
                     1);
    assert_string_equal(user, "other");
    assert_int_equal(sp_oci_auth_lookup(config, "127.0.0.1:15001", user, sizeof user, pass,
                                        sizeof pass, err, sizeof err),
                     0);

    assert_int_equal(sp_oci_auth_lookup("{\"credsStore\":\"x\"}", "h:1", user, sizeof user, pass,
                                        sizeof pass, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "auths"));
    /* base64 of "nocolon", and text that is not base64 */
    assert_int_equal(sp_oci_auth_lookup("{\"auths\":{\"h:1\":{\"auth\":\"bm9jb2xvbg==\"}}}", "h:1",
                                        user, sizeof user, pass, sizeof pass, err, sizeof err),
                     -1);
    assert_int_equal(sp_oci_auth_lookup("{\"auths\":{\"h:1\":{\"auth\":\"%%%%\"}}}", "h:1", user,
                                        sizeof user, pass, sizeof pass, err, sizeof err),
                     -1);
}

static void test_manifest_layer(void **state)
{
    (void)state;
    char digest[SP_OCI_DIGEST_MAX], err[512];
    long long size = 0;
    const char *m =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"artifactType\":\"application/vnd.salespipeline.catalog.v1\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":"
        "\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":2},"
        "\"layers\":[{\"mediaType\":\"text/plain\",\"digest\":\"" DIGEST "\",\"size\":3},"
        "{\"mediaType\":\"application/vnd.salespipeline.catalog.v1+json\",\"digest\":\"" DIGEST
        "\",\"size\":32769}]}";
    assert_int_equal(sp_oci_manifest_layer(m, strlen(m),
                                           "application/vnd.salespipeline.catalog.v1+json", digest,
                                           &size, err, sizeof err),
                     0);
    assert_string_equal(digest, DIGEST);
    assert_int_equal(size, 32769);

    assert_int_equal(
        sp_oci_manifest_layer(m, strlen(m), "application/json", digest, &size, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "found: text/plain, application/vnd.salespipeline.catalog"));

    const char *index = "{\"schemaVersion\":2,\"mediaType\":"
                        "\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
    assert_int_equal(
        sp_oci_manifest_layer(index, strlen(index), "x", digest, &size, err, sizeof err), -1);
    assert_non_null(strstr(err, "index"));
    const char *v1 = "{\"schemaVersion\":1,\"layers\":[]}";
    assert_int_equal(sp_oci_manifest_layer(v1, strlen(v1), "x", digest, &size, err, sizeof err),
                     -1);
    const char *bad_digest = "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"x\","
                             "\"digest\":\"sha512:00\",\"size\":1}]}";
    assert_int_equal(
        sp_oci_manifest_layer(bad_digest, strlen(bad_digest), "x", digest, &size, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "sha256"));
    assert_int_equal(sp_oci_manifest_layer("{", 1, "x", digest, &size, err, sizeof err), -1);
    /* Found by oci_fuzz: a size past long long's range was cast (undefined behaviour). */
    const char *huge = "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"x\",\"digest\":\"" DIGEST
                       "\",\"size\":3.6e84}]}";
    assert_int_equal(sp_oci_manifest_layer(huge, strlen(huge), "x", digest, &size, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "size"));
}

static void test_sha256(void **state)
{
    (void)state;
    char d[SP_OCI_DIGEST_MAX];
    sp_oci_sha256("", 0, d);
    assert_string_equal(d,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sp_oci_sha256("{}", 2, d); /* the OCI empty descriptor's */
    assert_string_equal(d,
                        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
}

static void test_client_errors(void **state)
{
    (void)state;
    char err[512];
    struct sp_oci_options o = {.timeout_ms = 2000};
    struct sp_oci_client *c = sp_oci_client_new(&o, err, sizeof err);
    assert_non_null(c);
    struct sp_oci_blob b;
    /* Nothing listens on port 1: the error names the URL. */
    assert_int_equal(sp_oci_pull_layer(c, "127.0.0.1:1/catalog:v1", "x", 100, &b, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "https://127.0.0.1:1/v2/catalog/manifests/v1"));
    assert_null(b.data);
    sp_oci_client_free(c);

    o.auth_file = "/nonexistent/auth.json";
    c = sp_oci_client_new(&o, err, sizeof err);
    assert_int_equal(sp_oci_pull_layer(c, "127.0.0.1:1/catalog:v1", "x", 100, &b, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "/nonexistent/auth.json"));
    sp_oci_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_references), cmocka_unit_test(test_challenges),
        cmocka_unit_test(test_auth_file),  cmocka_unit_test(test_manifest_layer),
        cmocka_unit_test(test_sha256),     cmocka_unit_test(test_client_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
