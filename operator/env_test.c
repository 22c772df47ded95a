/* env_test.c - the operator's rendering against the worker contract (common/contract.h).
 *
 * Renders the sample SalesPipeline (manifests/sample-salespipeline.yaml), and the same with an
 * external Kafka (SASL_SSL) and Valkey, as the operator would apply them and compares every
 * worker container's environment (its `env`, and the data of any ConfigMap it takes through
 * `envFrom`) with its program's option table. It fails when the operator sets a variable the
 * program does not read, when the program needs one the operator never sets (an option whose
 * source is not SP_FROM_NONE and that the spec uses: env_wanted), when a value would be refused
 * by the program's own parser, when a file it names is not under one of the container's
 * mounts, when a container port is not the program's port option, or when the rendered
 * deadlines do not nest (api > bridge > writer delivery timeout, each by a margin). Every
 * finding is printed before the test fails. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "desired.h"
#include "env.h"
#include "json_path_test.h"
#include "render.h"

#define SAMPLE "manifests/sample-salespipeline.yaml"
#define ENV_MAX 64

struct env_var {
    const char *name;
    const char *value;  /* NULL: from a Secret or another reference, not text */
    const char *origin; /* "env" or "ConfigMap <name>" */
};

struct container_env {
    struct env_var vars[ENV_MAX];
    int n;
};

static int findings;

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "contract: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    findings++;
}

static const cJSON *find_object(const struct desired *d, enum kind_id kind, const char *name)
{
    for (int i = 0; i < d->n; i++)
        if (d->objs[i].kind == kind && d->objs[i].name && !strcmp(d->objs[i].name, name))
            return d->objs[i].obj;
    return NULL;
}

static void add_var(struct container_env *e, const char *name, const char *value,
                    const char *origin)
{
    if (e->n == ENV_MAX)
        fail_msg("more than %d variables in one container", ENV_MAX);
    e->vars[e->n++] = (struct env_var){name, value, origin};
}

/* What the container's process sees: env entries and every key of each envFrom ConfigMap. */
static void collect_env(const struct desired *d, const cJSON *ctr, const char *where,
                        struct container_env *e)
{
    const cJSON *v;
    e->n = 0;
    cJSON_ArrayForEach (v, cJSON_GetObjectItemCaseSensitive(ctr, "env"))
        add_var(e, s_at(v, "name"), cJSON_GetStringValue(at(v, "value")), "env");
    cJSON_ArrayForEach (v, cJSON_GetObjectItemCaseSensitive(ctr, "envFrom")) {
        const char *cm = cJSON_GetStringValue(at(v, "configMapRef.name"));
        const cJSON *obj = cm ? find_object(d, KIND_CONFIGMAP, cm) : NULL, *kv;
        if (!obj) {
            finding("%s: envFrom %s, which the operator does not render: its variables are "
                    "unknown",
                    where, cm ? cm : "(not a ConfigMap)");
            continue;
        }
        cJSON_ArrayForEach (kv, cJSON_GetObjectItemCaseSensitive(obj, "data"))
            add_var(e, kv->string, cJSON_GetStringValue(kv), "envFrom ConfigMap");
    }
}

static const struct env_var *lookup(const struct container_env *e, const char *name)
{
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->vars[i].name, name))
            return &e->vars[i];
    return NULL;
}

static int has_container_port(const cJSON *ctr, int port)
{
    const cJSON *p;
    cJSON_ArrayForEach (p, cJSON_GetObjectItemCaseSensitive(ctr, "ports"))
        if ((int)cJSON_GetNumberValue(at(p, "containerPort")) == port)
            return 1;
    return 0;
}

/* The deadlines each container was given, for the nesting check. */
struct deadlines {
    long api, bridge, writer_min, writer_max;
    int writers;
};

static long number(const struct container_env *e, const char *name)
{
    const struct env_var *v = lookup(e, name);
    return v && v->value ? strtol(v->value, NULL, 10) : -1;
}

/* A file option's value (an absolute path) must be inside one of the container's mounts: the
 * root file system is read-only and holds none of them. */
static void check_file(const cJSON *ctr, const char *where, const struct env_var *v)
{
    const cJSON *m;
    if (!v->value || v->value[0] != '/')
        return;
    cJSON_ArrayForEach (m, cJSON_GetObjectItemCaseSensitive(ctr, "volumeMounts")) {
        const char *dir = s_at(m, "mountPath");
        size_t n = strlen(dir);
        if (!strncmp(v->value, dir, n) && v->value[n] == '/')
            return;
    }
    finding("%s: %s=%s is under no volume mount of the container", where, v->name, v->value);
}

static void check_container(const struct pipeline *p, const struct desired *d,
                            const char *deployment, const cJSON *ctr, struct deadlines *dl)
{
    const char *program = s_at(ctr, "name");
    const struct sp_option *table = sp_contract_options(program);
    char where[192], why[256];
    snprintf(where, sizeof where, "Deployment %s, container %s", deployment, program);
    if (!table) {
        finding("%s: no worker program of that name in common/contract.h", where);
        return;
    }
    struct container_env e;
    collect_env(d, ctr, where, &e);
    for (int i = 0; i < e.n; i++) {
        const struct env_var *v = &e.vars[i];
        const struct sp_option *o = sp_option_by_env(table, v->name);
        if (!o)
            finding("%s: the operator sets %s (%s), which %s does not read", where, v->name,
                    v->origin, program);
        else if (v->value && sp_config_check(o, v->value, why, sizeof why) < 0)
            finding("%s: %s=%s would be refused by %s: %s", where, v->name, v->value, program, why);
        else if (!env_wanted(p, o))
            finding("%s: the operator sets %s, which this spec does not use", where, v->name);
        if (o && (o->from == SP_FROM_KAFKA_CA || o->from == SP_FROM_REGISTRY_CA ||
                  o->from == SP_FROM_REGISTRY_AUTH_FILE))
            check_file(ctr, where, v);
        for (int j = 0; j < i; j++)
            if (!strcmp(e.vars[j].name, v->name))
                finding("%s: %s is set twice", where, v->name);
    }
    for (const struct sp_option *o = table; o->name; o++) {
        if (!env_wanted(p, o))
            continue;
        if (!lookup(&e, o->env))
            finding("%s: %s needs %s (--%s) from the operator, which never sets it", where, program,
                    o->env, o->name);
        if ((o->from == SP_FROM_PORT_HTTP || o->from == SP_FROM_PORT_GRPC ||
             o->from == SP_FROM_PORT_METRICS) &&
            !has_container_port(ctr, (int)o->def_num))
            finding("%s: no container port %.0f for --%s", where, o->def_num, o->name);
    }
    if (!strcmp(program, "api"))
        dl->api = number(&e, "DOWNSTREAM_TIMEOUT_MS");
    else if (!strcmp(program, "bridge"))
        dl->bridge = number(&e, "DOWNSTREAM_TIMEOUT_MS");
    else if (!strcmp(program, "writer")) {
        long w = number(&e, "DELIVERY_TIMEOUT_MS");
        if (!dl->writers || w < dl->writer_min)
            dl->writer_min = w;
        if (!dl->writers || w > dl->writer_max)
            dl->writer_max = w;
        dl->writers++;
    }
}

/* Each hop's deadline inside its caller's, by at least the contract's margin. */
static void check_nesting(const char *outer_name, long outer, const char *inner_name, long inner)
{
    if (outer < 0 || inner < 0)
        finding("deadlines: not rendered for %s (%ld) or %s (%ld)", outer_name, outer, inner_name,
                inner);
    else if (outer - inner < SP_DEADLINE_MARGIN_MIN_MS)
        finding("deadlines: %s (%ld ms) is not inside %s (%ld ms) by %d ms", inner_name, inner,
                outer_name, outer, SP_DEADLINE_MARGIN_MIN_MS);
}

static void check_pipeline(const struct pipeline *pp)
{
    struct pipeline p = *pp;
    struct desired d;
    assert_int_equal(desired_build(&p, "0123456789abcdef", &d), 0);
    struct deadlines dl = {.api = -1, .bridge = -1};
    int containers = 0;
    findings = 0;
    for (int i = 0; i < d.n; i++) {
        if (d.objs[i].kind != KIND_DEPLOYMENT)
            continue;
        const cJSON *ctr;
        cJSON_ArrayForEach (ctr, at(d.objs[i].obj, "spec.template.spec.containers")) {
            check_container(&p, &d, d.objs[i].name, ctr, &dl);
            containers++;
        }
    }
    check_nesting("api", dl.api, "bridge", dl.bridge);
    if (!dl.writers)
        finding("deadlines: no writer container");
    check_nesting("bridge", dl.bridge, "writers", dl.writer_max);
    if (dl.writer_min != dl.writer_max)
        finding("deadlines: writer groups differ (%ld, %ld ms)", dl.writer_min, dl.writer_max);
    desired_free(&d);
    /* api, bridge, writer-a, writer-b, consumer */
    assert_int_equal(containers, 5);
    if (findings)
        fail_msg("%d contract findings (listed above)", findings);
}

static void load_sample(struct pipeline *p)
{
    char err[512];
    if (render_load(SAMPLE, p, err, sizeof err) < 0)
        fail_msg("%s (run from the repository root)", err);
}

static void test_sample_environment_matches_the_contract(void **state)
{
    (void)state;
    struct pipeline p;
    load_sample(&p);
    check_pipeline(&p);
}

/* The sample pointed at an external Kafka over SASL_SSL and an external Valkey, with and
 * without a Valkey password: the SASL and CA variables appear exactly then, with the CA
 * mounted, and the Valkey password only when there is one. */
static void test_external_environment_matches_the_contract(void **state)
{
    (void)state;
    struct pipeline p;
    load_sample(&p);
    p.kafka.managed = false;
    snprintf(p.kafka.bootstrap_servers, sizeof p.kafka.bootstrap_servers, "b-1.kafka:9096");
    snprintf(p.kafka.security.protocol, sizeof p.kafka.security.protocol, "SASL_SSL");
    snprintf(p.kafka.security.credentials_secret, sizeof p.kafka.security.credentials_secret,
             "kafka-credentials");
    snprintf(p.kafka.security.ca_configmap, sizeof p.kafka.security.ca_configmap, "kafka-ca");
    snprintf(p.valkey.url, sizeof p.valkey.url, "redis://10.0.0.7:6379");
    p.valkey.ns[0] = p.valkey.image[0] = '\0';
    snprintf(p.valkey.password_secret, sizeof p.valkey.password_secret, "memorystore-auth");
    check_pipeline(&p);
    p.valkey.password_secret[0] = '\0';
    snprintf(p.kafka.security.protocol, sizeof p.kafka.security.protocol, "PLAINTEXT");
    p.kafka.security.credentials_secret[0] = p.kafka.security.ca_configmap[0] = '\0';
    check_pipeline(&p);
}

/* The spec's deadline is the api's; the others follow the rule at both ends of the range. */
static void test_deadlines_follow_the_spec(void **state)
{
    (void)state;
    static const long api[] = {SP_DEADLINE_MIN_MS, SP_DEADLINE_DEFAULT_MS, SP_DEADLINE_MAX_MS};
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        struct pipeline p;
        char err[256], text[2048];
        assert_int_equal(render_load(SAMPLE, &p, err, sizeof err), 0);
        p.api.timeout_ms = (int)api[i];
        const struct sp_option *bridge = sp_option_by_env(sp_bridge_option_table,
                                                          "DOWNSTREAM_TIMEOUT_MS"),
                               *writer = sp_option_by_env(sp_writer_option_table,
                                                          "DELIVERY_TIMEOUT_MS");
        assert_int_equal(env_value(&p, bridge, text, sizeof text), 0);
        assert_int_equal(strtol(text, NULL, 10), SP_DEADLINE_BRIDGE_MS(api[i]));
        assert_int_equal(sp_config_check(bridge, text, err, sizeof err), 0);
        assert_int_equal(env_value(&p, writer, text, sizeof text), 0);
        assert_int_equal(strtol(text, NULL, 10), SP_DEADLINE_WRITER_MS(api[i]));
        assert_int_equal(sp_config_check(writer, text, err, sizeof err), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_environment_matches_the_contract),
        cmocka_unit_test(test_external_environment_matches_the_contract),
        cmocka_unit_test(test_deadlines_follow_the_spec),
    };
    return cmocka_run_group_tests_name("contract", tests, NULL, NULL);
}
