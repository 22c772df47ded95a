/* build_test.c - the object builders and the desired set, on the sample pipeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "json_path_test.h"
#include "desired.h"
#include "pipeline.h"

/* The sample, as the API server returns it (metadata filled in). */
static const char *sample_json =
    "{\"apiVersion\":\"sales.blackfriday.dev/v1alpha1\",\"kind\":\"SalesPipeline\","
    "\"metadata\":{\"name\":\"black-friday\",\"namespace\":\"blackfriday\","
    "\"uid\":\"0b7e5c1e-1111-2222-3333-444455556666\",\"generation\":3},"
    "\"spec\":{\"registry\":\"10.128.0.5:5000/blackfriday\",\"version\":\"0.1.0\","
    "\"imagePullSecret\":\"zot-pull\",\"ingress\":{\"className\":\"nginx\",\"host\":\"\"},"
    "\"api\":{\"minReplicas\":1,\"maxReplicas\":3,\"targetCPUUtilizationPercentage\":30},"
    "\"bridge\":{\"replicas\":1},"
    "\"writers\":[{\"name\":\"writer-a\",\"replicas\":1},{\"name\":\"writer-b\",\"replicas\":2}],"
    "\"consumer\":{\"replicas\":1},"
    "\"kafka\":{\"managed\":true,\"clusterRef\":\"\",\"brokers\":1,"
    "\"topic\":{\"name\":\"sales\",\"partitions\":6,\"replicas\":1,\"retentionHours\":24}},"
    "\"valkey\":{\"replicas\":2,\"cpu\":\"1\",\"memory\":\"1Gi\",\"storage\":\"2Gi\","
    "\"ttlSeconds\":86400,\"waitForReplica\":false},"
    "\"grafana\":{\"carnet\":\"202300539\"},"
    "\"catalog\":{\"artifact\":\"10.128.0.5:5000/blackfriday/"
    "catalog:v1\",\"caConfigMap\":\"zot-ca\"}}}";

static struct pipeline sample;

static int load_sample(void **state)
{
    (void)state;
    char err[256];
    cJSON *o = cJSON_Parse(sample_json);
    assert_non_null(o);
    int rc = pipeline_parse(o, &sample, err, sizeof err);
    cJSON_Delete(o);
    if (rc)
        fprintf(stderr, "%s\n", err);
    return rc;
}

static const struct component *comp(const struct component *cs, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(cs[i].name, name))
            return &cs[i];
    fail_msg("no component %s", name);
    return NULL;
}

static void test_components(void **state)
{
    (void)state;
    struct component cs[COMPONENTS_MAX];
    int n = component_list(&sample, cs);
    assert_int_equal(n, 5);
    assert_string_equal(cs[0].name, "api");
    assert_int_equal(cs[0].replicas, -1);
    assert_string_equal(cs[2].name, "writer-a");
    assert_string_equal(cs[3].name, "writer-b");
    assert_int_equal(cs[3].replicas, 2);
    assert_true(cs[3].headless);
    assert_string_equal(cs[4].name, "consumer");
}

static void check_owner_and_labels(const cJSON *o, const char *component)
{
    assert_string_equal(s_at(o, "metadata.namespace"), "blackfriday");
    assert_string_equal(s_at(o, "metadata.ownerReferences.0.kind"), "SalesPipeline");
    assert_string_equal(s_at(o, "metadata.ownerReferences.0.apiVersion"),
                        "sales.blackfriday.dev/v1alpha1");
    assert_string_equal(s_at(o, "metadata.ownerReferences.0.name"), "black-friday");
    assert_string_equal(s_at(o, "metadata.ownerReferences.0.uid"),
                        "0b7e5c1e-1111-2222-3333-444455556666");
    assert_true(cJSON_IsTrue(at(o, "metadata.ownerReferences.0.controller")));
    assert_true(cJSON_IsTrue(at(o, "metadata.ownerReferences.0.blockOwnerDeletion")));
    const cJSON *labels = at(o, "metadata.labels");
    assert_string_equal(key(labels, "app.kubernetes.io/instance"), "black-friday");
    assert_string_equal(key(labels, "app.kubernetes.io/managed-by"), "salespipeline-operator");
    assert_string_equal(key(labels, "app.kubernetes.io/part-of"), "salespipeline");
    assert_string_equal(key(labels, "app.kubernetes.io/version"), "0.1.0");
    assert_string_equal(key(labels, "app.kubernetes.io/component"), component);
}

static void check_restricted(const cJSON *pod)
{
    assert_true(cJSON_IsTrue(at(pod, "securityContext.runAsNonRoot")));
    assert_string_equal(s_at(pod, "securityContext.seccompProfile.type"), "RuntimeDefault");
    const cJSON *sc = at(pod, "containers.0.securityContext");
    assert_true(cJSON_IsFalse(at(sc, "allowPrivilegeEscalation")));
    assert_true(cJSON_IsTrue(at(sc, "readOnlyRootFilesystem")));
    assert_true(cJSON_IsTrue(at(sc, "runAsNonRoot")));
    assert_string_equal(s_at(sc, "capabilities.drop.0"), "ALL");
    assert_int_equal(cJSON_GetArraySize(at(sc, "capabilities.drop")), 1);
}

/* The value of a container's environment variable, "(missing)" when it has none. */
static const char *env_of(const cJSON *ctr, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach (e, at(ctr, "env"))
        if (!strcmp(s_at(e, "name"), name))
            return s_at(e, "value");
    return "(missing)";
}

static cJSON *deployment_of(const struct pipeline *p, const char *component)
{
    struct component cs[COMPONENTS_MAX];
    int n = component_list(p, cs);
    return build_deployment(p, comp(cs, n, component), "pw-hash");
}

static void test_deployment_api(void **state)
{
    (void)state;
    struct component cs[COMPONENTS_MAX];
    int n = component_list(&sample, cs);
    cJSON *d = build_deployment(&sample, comp(cs, n, "api"), "pw-hash");
    assert_non_null(d);
    /* Only the consumer uses Valkey: a new password must not restart the api. */
    assert_string_equal(
        key(at(d, "spec.template.metadata.annotations"), BUILD_PASSWORD_HASH_ANNOTATION),
        "(missing)");
    assert_string_equal(s_at(d, "apiVersion"), "apps/v1");
    assert_string_equal(s_at(d, "kind"), "Deployment");
    assert_string_equal(s_at(d, "metadata.name"), "black-friday-api");
    check_owner_and_labels(d, "api");
    assert_null(at(d, "spec.replicas")); /* the HPA owns it */
    const cJSON *pod = at(d, "spec.template.spec"), *c = at(pod, "containers.0");
    assert_string_equal(s_at(c, "image"), "10.128.0.5:5000/blackfriday/api:0.1.0");
    assert_string_equal(s_at(pod, "imagePullSecrets.0.name"), "zot-pull");
    assert_string_equal(s_at(c, "env.0.name"), "PORT");
    assert_string_equal(s_at(c, "env.0.value"), "8080");
    assert_null(at(c, "envFrom")); /* only its own variables, no shared ConfigMap */
    assert_int_equal((int)n_at(c, "ports.0.containerPort"), 8080);
    assert_string_equal(s_at(c, "readinessProbe.httpGet.path"), "/readyz");
    assert_string_equal(s_at(c, "livenessProbe.httpGet.path"), "/healthz");
    assert_string_equal(s_at(c, "resources.requests.cpu"), "100m");
    assert_string_equal(s_at(c, "resources.limits.memory"), "128Mi");
    const cJSON *sel = at(d, "spec.selector.matchLabels");
    assert_int_equal(cJSON_GetArraySize(sel), 3); /* no version: selectors are immutable */
    check_restricted(pod);
    /* The catalog pull: the pull Secret's credentials and the CA, read-only files. */
    assert_string_equal(env_of(c, "CATALOG_ARTIFACT"), sample.catalog);
    assert_string_equal(env_of(c, "REGISTRY_AUTH_FILE"), BUILD_REGISTRY_AUTH_DIR "/config.json");
    assert_string_equal(env_of(c, "REGISTRY_CA"), BUILD_REGISTRY_CA_DIR "/ca.crt");
    assert_string_equal(s_at(c, "volumeMounts.1.mountPath"), BUILD_REGISTRY_AUTH_DIR);
    assert_true(cJSON_IsTrue(at(c, "volumeMounts.1.readOnly")));
    assert_string_equal(s_at(c, "volumeMounts.2.mountPath"), BUILD_REGISTRY_CA_DIR);
    assert_string_equal(s_at(pod, "volumes.1.secret.secretName"), "zot-pull");
    assert_string_equal(s_at(pod, "volumes.1.secret.items.0.key"), ".dockerconfigjson");
    assert_string_equal(s_at(pod, "volumes.1.secret.items.0.path"), "config.json");
    assert_int_equal((int)n_at(pod, "volumes.1.secret.defaultMode"), 0444);
    assert_string_equal(s_at(pod, "volumes.2.configMap.name"), "zot-ca");
    assert_string_equal(s_at(pod, "volumes.2.configMap.items.0.key"), "ca.crt");
    cJSON_Delete(d);

    /* Without a catalog artifact, nothing of it. */
    struct pipeline plain = sample;
    plain.catalog[0] = '\0';
    d = build_deployment(&plain, comp(cs, n, "api"), "pw-hash");
    c = at(d, "spec.template.spec.containers.0");
    assert_string_equal(env_of(c, "CATALOG_ARTIFACT"), "");
    assert_string_equal(env_of(c, "REGISTRY_AUTH_FILE"), "");
    assert_string_equal(env_of(c, "REGISTRY_CA"), "");
    assert_int_equal(cJSON_GetArraySize(at(c, "volumeMounts")), 1);
    assert_int_equal(cJSON_GetArraySize(at(d, "spec.template.spec.volumes")), 1);
    cJSON_Delete(d);
}

static void test_deployment_writer(void **state)
{
    (void)state;
    struct component cs[COMPONENTS_MAX];
    int n = component_list(&sample, cs);
    cJSON *d = build_deployment(&sample, comp(cs, n, "writer-b"), "p");
    assert_non_null(d);
    assert_string_equal(s_at(d, "metadata.name"), "black-friday-writer-b");
    assert_int_equal((int)n_at(d, "spec.replicas"), 2);
    const cJSON *c = at(d, "spec.template.spec.containers.0");
    assert_string_equal(s_at(c, "name"), "writer");
    assert_string_equal(s_at(c, "image"), "10.128.0.5:5000/blackfriday/writer:0.1.0");
    assert_int_equal((int)n_at(c, "readinessProbe.grpc.port"), 50051);
    assert_string_equal(s_at(c, "livenessProbe.httpGet.port"), "metrics");
    assert_string_equal(s_at(c, "env.0.name"), "GRPC_PORT");
    assert_string_equal(s_at(c, "env.1.name"), "HTTP_PORT");
    assert_string_equal(s_at(c, "env.1.value"), "9091");
    check_restricted(at(d, "spec.template.spec"));
    cJSON_Delete(d);
}

static void test_deployment_consumer_secret(void **state)
{
    (void)state;
    struct component cs[COMPONENTS_MAX];
    int n = component_list(&sample, cs);
    cJSON *d = build_deployment(&sample, comp(cs, n, "consumer"), "pw-hash");
    assert_string_equal(
        key(at(d, "spec.template.metadata.annotations"), BUILD_PASSWORD_HASH_ANNOTATION),
        "pw-hash");
    const cJSON *c = at(d, "spec.template.spec.containers.0");
    const cJSON *e, *pw = NULL;
    cJSON_ArrayForEach (e, at(c, "env"))
        if (!strcmp(s_at(e, "name"), "VALKEY_PASSWORD"))
            pw = e;
    assert_non_null(pw);
    assert_null(at(pw, "value"));
    assert_string_equal(s_at(pw, "valueFrom.secretKeyRef.name"), "black-friday-valkey");
    assert_string_equal(s_at(pw, "valueFrom.secretKeyRef.key"), "password");
    assert_int_equal((int)n_at(d, "spec.replicas"), 1);
    cJSON_Delete(d);
}

static void test_services(void **state)
{
    (void)state;
    struct component cs[COMPONENTS_MAX];
    int n = component_list(&sample, cs);
    cJSON *api = build_service(&sample, comp(cs, n, "api"));
    assert_string_equal(s_at(api, "metadata.name"), "black-friday-api");
    assert_null(at(api, "spec.clusterIP"));
    assert_int_equal((int)n_at(api, "spec.ports.0.port"), 8080);
    assert_string_equal(key(at(api, "spec.selector"), "app.kubernetes.io/component"), "api");
    check_owner_and_labels(api, "api");
    cJSON *w = build_service(&sample, comp(cs, n, "writer-a"));
    assert_string_equal(s_at(w, "metadata.name"), "black-friday-writer-a-headless");
    assert_string_equal(s_at(w, "spec.clusterIP"), "None");
    assert_string_equal(s_at(w, "spec.ports.0.name"), "grpc");
    assert_int_equal((int)n_at(w, "spec.ports.0.port"), 50051);
    assert_string_equal(s_at(w, "spec.ports.0.appProtocol"), "kubernetes.io/h2c");
    cJSON *c = build_service(&sample, comp(cs, n, "consumer"));
    assert_string_equal(s_at(c, "metadata.name"), "black-friday-consumer");
    assert_string_equal(s_at(c, "spec.clusterIP"), "None"); /* only scraped */
    cJSON_Delete(api);
    cJSON_Delete(w);
    cJSON_Delete(c);
}

static void test_hpa_ingress(void **state)
{
    (void)state;
    cJSON *h = build_hpa(&sample);
    assert_string_equal(s_at(h, "apiVersion"), "autoscaling/v2");
    assert_string_equal(s_at(h, "spec.scaleTargetRef.name"), "black-friday-api");
    assert_int_equal((int)n_at(h, "spec.minReplicas"), 1);
    assert_int_equal((int)n_at(h, "spec.maxReplicas"), 3);
    assert_string_equal(s_at(h, "spec.metrics.0.resource.name"), "cpu");
    assert_int_equal((int)n_at(h, "spec.metrics.0.resource.target.averageUtilization"), 30);
    /* spec.api.behavior, Kubernetes' defaults written out. */
    assert_int_equal((int)n_at(h, "spec.behavior.scaleUp.stabilizationWindowSeconds"), 0);
    assert_string_equal(s_at(h, "spec.behavior.scaleUp.policies.1.type"), "Pods");
    assert_int_equal((int)n_at(h, "spec.behavior.scaleUp.policies.1.value"), 4);
    assert_int_equal((int)n_at(h, "spec.behavior.scaleDown.stabilizationWindowSeconds"), 300);
    assert_int_equal(cJSON_GetArraySize(at(h, "spec.behavior.scaleDown.policies")), 1);
    assert_string_equal(s_at(h, "spec.behavior.scaleDown.selectPolicy"), "Max");
    cJSON_Delete(h);
    struct pipeline p = sample; /* a demo's short scale-down */
    p.api.scale_down.window_s = 30;
    p.api.scale_down.policies[0] = (struct pl_scaling_policy){"Pods", 1, 10};
    h = build_hpa(&p);
    assert_int_equal((int)n_at(h, "spec.behavior.scaleDown.stabilizationWindowSeconds"), 30);
    assert_string_equal(s_at(h, "spec.behavior.scaleDown.policies.0.type"), "Pods");
    assert_int_equal((int)n_at(h, "spec.behavior.scaleDown.policies.0.periodSeconds"), 10);
    cJSON *i = build_ingress(&sample);
    assert_string_equal(s_at(i, "spec.ingressClassName"), "nginx");
    assert_null(at(i, "spec.rules.0.host")); /* "" = any host */
    assert_string_equal(s_at(i, "spec.rules.0.http.paths.0.path"), "/ventas");
    assert_string_equal(s_at(i, "spec.rules.0.http.paths.0.backend.service.name"),
                        "black-friday-api");
    check_owner_and_labels(i, "api");
    cJSON_Delete(h);
    cJSON_Delete(i);
}

/* Each worker gets its own values; pipeline-wide ones follow the spec. */
static void test_environment(void **state)
{
    (void)state;
    cJSON *api = deployment_of(&sample, "api"), *bridge = deployment_of(&sample, "bridge"),
          *writer = deployment_of(&sample, "writer-a"),
          *consumer = deployment_of(&sample, "consumer");
    const cJSON *a = at(api, "spec.template.spec.containers.0"),
                *b = at(bridge, "spec.template.spec.containers.0"),
                *w = at(writer, "spec.template.spec.containers.0"),
                *c = at(consumer, "spec.template.spec.containers.0");
    assert_string_equal(env_of(a, "BRIDGE_URL"), "http://black-friday-bridge:8081/ventas");
    assert_string_equal(env_of(a, "DOWNSTREAM_TIMEOUT_MS"), "5000"); /* the CRD's default */
    assert_string_equal(env_of(a, "KAFKA_BROKERS"), "(missing)");
    assert_string_equal(
        env_of(b, "WRITER_TARGET"),
        "dns:///black-friday-writer-a-headless.blackfriday.svc.cluster.local:50051;"
        "dns:///black-friday-writer-b-headless.blackfriday.svc.cluster.local:50051");
    assert_string_equal(env_of(b, "DOWNSTREAM_TIMEOUT_MS"), "3500");
    assert_string_equal(env_of(w, "DELIVERY_TIMEOUT_MS"), "2000");
    assert_string_equal(env_of(w, "KAFKA_BROKERS"),
                        "black-friday-kafka-bootstrap.blackfriday.svc:9092");
    assert_string_equal(env_of(w, "KAFKA_TOPIC"), "sales");
    assert_string_equal(env_of(w, "INSTANCE"), "(missing)"); /* the pod's host name */
    assert_string_equal(env_of(c, "KAFKA_GROUP"), "black-friday-consumer");
    assert_string_equal(
        env_of(c, "VALKEY_URL"),
        "redis://black-friday-valkey-primary.blackfriday-data.svc.cluster.local:6379");
    assert_string_equal(env_of(c, "SERIES_TTL_SECONDS"), "86400");
    assert_string_equal(env_of(c, "VALKEY_WAIT_REPLICAS"), "0");
    assert_string_equal(env_of(c, "LOG_LEVEL"), "info");
    cJSON_Delete(writer);
    struct pipeline p2 = sample;
    snprintf(p2.kafka.cluster_ref, sizeof p2.kafka.cluster_ref, "shared");
    p2.kafka.managed = false;
    p2.api.timeout_ms = 10000;
    writer = deployment_of(&p2, "writer-a");
    w = at(writer, "spec.template.spec.containers.0");
    assert_string_equal(env_of(w, "KAFKA_BROKERS"), "shared-kafka-bootstrap.blackfriday.svc:9092");
    assert_string_equal(env_of(w, "DELIVERY_TIMEOUT_MS"), "6400"); /* 10000 -> 8000 -> 6400 */
    cJSON_Delete(api);
    cJSON_Delete(bridge);
    cJSON_Delete(writer);
    cJSON_Delete(consumer);
}

/* Same spec, same bytes: a second apply must change nothing. The infrastructure (build.h):
 * 3 Secrets first, then Kafka + node pool + topic, then after the workers the
 * PVC, 2 VMs, 2 Services and the 3 Grafana objects. */
#define PW "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define INFRA_OBJECTS (3 + 3 + 1 + 2 + 2 + 3)

static void test_desired_deterministic(void **state)
{
    (void)state;
    struct desired a, b;
    assert_int_equal(desired_build(&sample, PW, &a), 0);
    assert_int_equal(desired_build(&sample, PW, &b), 0);
    assert_int_equal(a.n, 2 * 5 + 2 + NETPOL_COUNT + INFRA_OBJECTS);
    assert_int_equal(a.objs[0].kind, KIND_SECRET);
    assert_int_equal(a.objs[3].kind, KIND_KAFKA);
    assert_int_equal(a.objs[a.n - 1].kind, KIND_SECRET);
    for (int i = 0; i < a.n; i++) {
        char *x = cJSON_PrintUnformatted(a.objs[i].obj), *y = cJSON_PrintUnformatted(b.objs[i].obj);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    assert_true(desired_has(&a, KIND_SERVICE, "blackfriday", "black-friday-writer-b-headless"));
    assert_true(desired_has(&a, KIND_VM, "blackfriday-data", "black-friday-valkey-replica-1"));
    assert_false(desired_has(&a, KIND_DEPLOYMENT, "blackfriday", "black-friday-writer-c"));
    desired_free(&a);
    desired_free(&b);
    /* One writer group, no Ingress, an existing Kafka cluster, one Valkey VM, no persistence. */
    struct pipeline p = sample;
    p.ingress.enabled = false;
    p.n_writers = 1;
    p.kafka.managed = false;
    p.valkey.replicas = 1;
    p.valkey.persistence = false;
    p.netpol.enabled = false;
    assert_int_equal(desired_build(&p, PW, &a), 0);
    assert_int_equal(a.n, 2 * 4 + 1 + INFRA_OBJECTS - 2 - 1 - 1);
    assert_false(desired_has(&a, KIND_KAFKA, "blackfriday", "black-friday"));
    assert_false(desired_has(&a, KIND_NETPOL, "blackfriday", "black-friday-api"));
    desired_free(&a);
}

/* An external Kafka (SASL_SSL) and Valkey: no Strimzi object, no VM, no Valkey Secret of
 * ours; the workers point at them, the CA is mounted where KAFKA_CA_FILE says, the SASL
 * credentials come from the user's Secret, Grafana reads the given URL. */
static void test_external_kafka_and_valkey(void **state)
{
    (void)state;
    struct desired d;
    struct pipeline p = sample;
    p.kafka.managed = false;
    snprintf(p.kafka.bootstrap_servers, sizeof p.kafka.bootstrap_servers, "10.244.0.1:9092");
    snprintf(p.kafka.security.protocol, sizeof p.kafka.security.protocol, "SASL_SSL");
    snprintf(p.kafka.security.credentials_secret, sizeof p.kafka.security.credentials_secret, "kc");
    snprintf(p.kafka.security.ca_configmap, sizeof p.kafka.security.ca_configmap, "kca");
    snprintf(p.valkey.url, sizeof p.valkey.url, "redis://10.244.0.1:6379");
    p.valkey.ns[0] = p.valkey.image[0] = '\0';
    assert_int_equal(desired_build(&p, "", &d), 0);
    for (int i = 0; i < d.n; i++) {
        enum kind_id k = d.objs[i].kind;
        assert_true(k != KIND_KAFKA && k != KIND_KAFKA_NODEPOOL && k != KIND_KAFKA_TOPIC &&
                    k != KIND_VM && k != KIND_PVC);
        assert_string_equal(d.objs[i].ns, "blackfriday"); /* nothing in a data namespace */
        if (k == KIND_SECRET)                             /* only Grafana's data source */
            assert_string_equal(d.objs[i].name, "black-friday-grafana-datasource");
    }
    /* workers, HPA, Ingress, 2 dashboards + source, the NetworkPolicies but Valkey's */
    assert_int_equal(d.n, 2 * 5 + 2 + 3 + NETPOL_COUNT - 1);
    assert_false(desired_has(&d, KIND_NETPOL, "", "black-friday-valkey"));
    desired_free(&d);
    /* Egress to them: Kafka's bootstrap port anywhere (its brokers advertise their own
     * addresses), Valkey's address and port. */
    struct pipeline q = p;
    snprintf(q.kafka.bootstrap_servers, sizeof q.kafka.bootstrap_servers,
             "b-1.k:9096,b-2.k:9096,b-3.k:9094");
    cJSON *np = build_netpol(&q, NETPOL_WRITERS);
    assert_int_equal((int)n_at(np, "spec.egress.1.ports.0.port"), 9096);
    assert_null(at(np, "spec.egress.1.to"));
    assert_int_equal((int)n_at(np, "spec.egress.2.ports.0.port"), 9094);
    assert_null(at(np, "spec.egress.3"));
    cJSON_Delete(np);
    /* An entry without a port takes Kafka's, not the next entry's. */
    snprintf(q.kafka.bootstrap_servers, sizeof q.kafka.bootstrap_servers, "k0,b-1.k:9096");
    np = build_netpol(&q, NETPOL_WRITERS);
    assert_int_equal((int)n_at(np, "spec.egress.1.ports.0.port"), 9092);
    assert_int_equal((int)n_at(np, "spec.egress.2.ports.0.port"), 9096);
    assert_null(at(np, "spec.egress.3"));
    cJSON_Delete(np);
    /* A URL with credentials: the address alone, as a /32. */
    snprintf(q.valkey.url, sizeof q.valkey.url, "redis://:pw@10.244.0.1:6379/0");
    np = build_netpol(&q, NETPOL_CONSUMER);
    assert_string_equal(s_at(np, "spec.egress.3.to.0.ipBlock.cidr"), "10.244.0.1/32");
    cJSON_Delete(np);
    snprintf(q.valkey.url, sizeof q.valkey.url, "%s", p.valkey.url);
    np = build_netpol(&q, NETPOL_CONSUMER);
    assert_int_equal((int)n_at(np, "spec.egress.3.ports.0.port"), 6379);
    assert_string_equal(s_at(np, "spec.egress.3.to.0.ipBlock.cidr"), "10.244.0.1/32");
    assert_null(at(np, "spec.egress.4"));
    cJSON_Delete(np);

    struct component cs[COMPONENTS_MAX];
    int n = component_list(&p, cs);
    cJSON *w = build_deployment(&p, comp(cs, n, "writer-b"), "h");
    const cJSON *ctr = at(w, "spec.template.spec.containers.0");
    assert_string_equal(env_of(ctr, "KAFKA_BROKERS"), "10.244.0.1:9092");
    assert_string_equal(env_of(ctr, "KAFKA_SECURITY_PROTOCOL"), "sasl_ssl");
    assert_string_equal(env_of(ctr, "KAFKA_SASL_MECHANISM"), "SCRAM-SHA-512");
    assert_string_equal(env_of(ctr, "KAFKA_CA_FILE"), BUILD_KAFKA_CA_DIR "/ca.crt");
    const cJSON *e, *user = NULL;
    cJSON_ArrayForEach (e, at(ctr, "env"))
        if (!strcmp(s_at(e, "name"), "KAFKA_SASL_USERNAME"))
            user = e;
    assert_non_null(user);
    assert_string_equal(s_at(user, "valueFrom.secretKeyRef.name"), "kc");
    assert_string_equal(s_at(user, "valueFrom.secretKeyRef.key"), "username");
    assert_string_equal(s_at(w, "spec.template.spec.volumes.1.configMap.name"), "kca");
    assert_string_equal(s_at(ctr, "volumeMounts.1.mountPath"), BUILD_KAFKA_CA_DIR);
    cJSON *c = build_deployment(&p, comp(cs, n, "consumer"), "h");
    ctr = at(c, "spec.template.spec.containers.0");
    assert_string_equal(env_of(ctr, "VALKEY_URL"), "redis://10.244.0.1:6379");
    assert_string_equal(env_of(ctr, "VALKEY_PASSWORD"),
                        "(missing)"); /* no passwordSecret: no AUTH */
    assert_null(at(c, "spec.template.metadata.annotations." BUILD_PASSWORD_HASH_ANNOTATION));
    cJSON *api = build_deployment(&p, comp(cs, n, "api"), "h");
    assert_string_equal(
        env_of(at(api, "spec.template.spec.containers.0"), "KAFKA_SECURITY_PROTOCOL"), "(missing)");
    cJSON *ds = build_grafana_datasource(&p, "");
    assert_non_null(ds);
    cJSON_Delete(w);
    cJSON_Delete(c);
    cJSON_Delete(api);
    cJSON_Delete(ds);
}

static void test_host_and_version(void **state)
{
    (void)state;
    struct pipeline p = sample;
    snprintf(p.ingress.host, sizeof p.ingress.host, "ventas.example.com");
    snprintf(p.version, sizeof p.version, "0.2.0");
    cJSON *i = build_ingress(&p);
    assert_string_equal(s_at(i, "spec.rules.0.host"), "ventas.example.com");
    struct component cs[COMPONENTS_MAX];
    int n = component_list(&p, cs);
    cJSON *d = build_deployment(&p, comp(cs, n, "bridge"), "p");
    assert_string_equal(s_at(d, "spec.template.spec.containers.0.image"),
                        "10.128.0.5:5000/blackfriday/bridge:0.2.0");
    cJSON_Delete(i);
    cJSON_Delete(d);
}

/* The namespace and pod selector of peer `i` of rule `rule` ("spec.ingress.0"). */
static void check_peer(const cJSON *o, const char *rule, int i, const char *ns, const char *app)
{
    char path[128];
    snprintf(path, sizeof path, "%s.%s.%d", rule, strstr(rule, "ingress") ? "from" : "to", i);
    const cJSON *peer = at(o, path);
    assert_non_null(peer);
    const cJSON *nsl = at(peer, "namespaceSelector.matchLabels"),
                *pods = at(peer, "podSelector.matchLabels");
    if (ns)
        assert_string_equal(key(nsl, "kubernetes.io/metadata.name"), ns);
    else
        assert_null(nsl);
    if (app) {
        assert_string_equal(key(pods, "app.kubernetes.io/name"), app);
        if (strcmp(app, "grafana"))
            assert_string_equal(key(pods, "app.kubernetes.io/instance"), "black-friday");
    } else {
        assert_null(pods);
    }
}

static void check_port(const cJSON *o, const char *rule, int i, int port, const char *protocol)
{
    char path[128];
    snprintf(path, sizeof path, "%s.ports.%d.port", rule, i);
    assert_int_equal((int)n_at(o, path), port);
    snprintf(path, sizeof path, "%s.ports.%d.protocol", rule, i);
    assert_string_equal(s_at(o, path), protocol);
}

static void check_policy(const cJSON *o, const char *name, const char *app, bool egress)
{
    assert_string_equal(s_at(o, "apiVersion"), "networking.k8s.io/v1");
    assert_string_equal(s_at(o, "kind"), "NetworkPolicy");
    assert_string_equal(s_at(o, "metadata.name"), name);
    if (!strcmp(s_at(o, "metadata.namespace"), "blackfriday")) /* owned, or labelled elsewhere */
        assert_string_equal(s_at(o, "metadata.ownerReferences.0.kind"), "SalesPipeline");
    else
        assert_string_equal(key(at(o, "metadata.labels"), OP_PIPELINE_NS_LABEL), "blackfriday");
    const cJSON *sel = at(o, "spec.podSelector.matchLabels");
    assert_string_equal(key(sel, "app.kubernetes.io/name"), app);
    assert_string_equal(key(sel, "app.kubernetes.io/instance"), "black-friday");
    assert_string_equal(s_at(o, "spec.policyTypes.0"), "Ingress");
    if (egress) {
        assert_string_equal(s_at(o, "spec.policyTypes.1"), "Egress");
        check_port(o, "spec.egress.0", 0, 53, "UDP"); /* DNS, anywhere */
        check_port(o, "spec.egress.0", 1, 53, "TCP");
        assert_null(at(o, "spec.egress.0.to"));
    } else {
        assert_null(at(o, "spec.policyTypes.1"));
    }
}

static void test_network_policies(void **state)
{
    (void)state;
    cJSON *o = build_netpol(&sample, NETPOL_API);
    check_policy(o, "black-friday-api", "api", true);
    check_peer(o, "spec.ingress.0", 0, "ingress-nginx", NULL); /* the ingress controller */
    check_port(o, "spec.ingress.0", 0, 8080, "TCP");
    check_peer(o, "spec.ingress.1", 0, "monitoring", NULL); /* /metrics */
    check_port(o, "spec.ingress.1", 0, 8080, "TCP");
    assert_null(at(o, "spec.ingress.2"));
    check_peer(o, "spec.egress.1", 0, NULL, "bridge");
    check_port(o, "spec.egress.1", 0, 8081, "TCP");
    /* The catalog's registry (spec.catalog.artifact 10.128.0.5:5000/...): that address alone. */
    check_port(o, "spec.egress.2", 0, 5000, "TCP");
    assert_string_equal(s_at(o, "spec.egress.2.to.0.ipBlock.cidr"), "10.128.0.5/32");
    assert_null(at(o, "spec.egress.3"));
    cJSON_Delete(o);
    struct pipeline named = sample; /* a host name cannot be named: its port, anywhere */
    snprintf(named.catalog, sizeof named.catalog, "zot.example.com/blackfriday/catalog:v1");
    o = build_netpol(&named, NETPOL_API);
    check_port(o, "spec.egress.2", 0, 443, "TCP");
    assert_null(at(o, "spec.egress.2.to"));
    cJSON_Delete(o);
    named.catalog[0] = '\0'; /* no catalog: the bridge and DNS only */
    o = build_netpol(&named, NETPOL_API);
    assert_null(at(o, "spec.egress.2"));
    cJSON_Delete(o);

    o = build_netpol(&sample, NETPOL_BRIDGE);
    check_policy(o, "black-friday-bridge", "bridge", true);
    check_peer(o, "spec.ingress.0", 0, NULL, "api");
    check_port(o, "spec.ingress.0", 0, 8081, "TCP");
    check_peer(o, "spec.ingress.1", 0, "monitoring", NULL);
    check_peer(o, "spec.egress.1", 0, NULL, "writer");
    check_port(o, "spec.egress.1", 0, 50051, "TCP");
    cJSON_Delete(o);

    o = build_netpol(&sample, NETPOL_WRITERS);
    check_policy(o, "black-friday-writers", "writer", true); /* every writer group */
    check_peer(o, "spec.ingress.0", 0, NULL, "bridge");
    check_port(o, "spec.ingress.0", 0, 50051, "TCP");
    check_peer(o, "spec.ingress.1", 0, "monitoring", NULL);
    check_port(o, "spec.ingress.1", 0, 9091, "TCP");
    check_port(o, "spec.egress.1", 0, 9092, "TCP");
    assert_string_equal(
        key(at(o, "spec.egress.1.to.0.podSelector.matchLabels"), "strimzi.io/cluster"),
        "black-friday");
    cJSON_Delete(o);

    /* Valkey elsewhere (a data namespace): its policy goes there, the consumer's egress follows. */
    o = build_netpol(&sample, NETPOL_CONSUMER);
    check_policy(o, "black-friday-consumer", "consumer", true);
    check_peer(o, "spec.ingress.0", 0, "monitoring", NULL);
    check_port(o, "spec.ingress.0", 0, 9092, "TCP");
    assert_null(at(o, "spec.ingress.1"));
    check_port(o, "spec.egress.1", 0, 9092, "TCP"); /* Kafka */
    check_peer(o, "spec.egress.2", 0, "blackfriday-data", "valkey");
    check_port(o, "spec.egress.2", 0, 6379, "TCP");
    cJSON_Delete(o);

    o = build_netpol(&sample, NETPOL_VALKEY);
    check_policy(o, "black-friday-valkey", "valkey", false);
    assert_string_equal(s_at(o, "metadata.namespace"), "blackfriday-data");
    check_port(o, "spec.ingress.0", 0, 6379, "TCP");
    check_peer(o, "spec.ingress.0", 0, "blackfriday", "consumer");
    check_peer(o, "spec.ingress.0", 1, "monitoring", "grafana");
    check_peer(o, "spec.ingress.0", 2, NULL, "valkey"); /* replication */
    assert_null(at(o, "spec.ingress.1"));
    cJSON_Delete(o);

    /* The namespaces come from the spec. */
    struct pipeline p = sample;
    snprintf(p.netpol.ingress_ns, sizeof p.netpol.ingress_ns, "traefik");
    snprintf(p.netpol.monitoring_ns, sizeof p.netpol.monitoring_ns, "observability");
    o = build_netpol(&p, NETPOL_API);
    check_peer(o, "spec.ingress.0", 0, "traefik", NULL);
    check_peer(o, "spec.ingress.1", 0, "observability", NULL);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_components),        cmocka_unit_test(test_deployment_api),
        cmocka_unit_test(test_deployment_writer), cmocka_unit_test(test_deployment_consumer_secret),
        cmocka_unit_test(test_services),          cmocka_unit_test(test_hpa_ingress),
        cmocka_unit_test(test_environment),       cmocka_unit_test(test_desired_deterministic),
        cmocka_unit_test(test_host_and_version),  cmocka_unit_test(test_external_kafka_and_valkey),
        cmocka_unit_test(test_network_policies),
    };
    return cmocka_run_group_tests(tests, load_sample, NULL);
}
