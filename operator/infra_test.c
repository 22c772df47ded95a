/* infra_test.c - the Strimzi, KubeVirt and Grafana builders and the readiness readers, on the
 * sample manifest (manifests/sample-salespipeline.yaml, the contract). */
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
#include "cloudinit.h"
#include "grafana.h"
#include "infra.h"
#include "infra_status.h"
#include "kubeconfig.h"
#include "pipeline.h"
#include "quantity.h"
#include "valkey_password.h"
#include "yamljson.h"

#define PW "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct pipeline sample;

/* Tests run from the top of the tree (scripts/test.sh); the build folder is one level off. */
static char *read_sample(size_t *len)
{
    static const char *const paths[] = {"manifests/sample-salespipeline.yaml",
                                        "../manifests/sample-salespipeline.yaml"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f)
            continue;
        char *buf = calloc(1, 1 << 16);
        *len = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
        fclose(f);
        return buf;
    }
    return NULL;
}

static int load_sample(void **state)
{
    (void)state;
    char err[256];
    size_t len = 0;
    char *text = read_sample(&len);
    assert_non_null(text);
    cJSON *o = yamljson_parse(text, len, "SalesPipeline", err, sizeof err);
    free(text);
    assert_non_null(o);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
    cJSON_AddStringToObject(md, "uid", "0b7e5c1e-1111-2222-3333-444455556666");
    cJSON_AddNumberToObject(md, "generation", 1);
    int rc = pipeline_parse(o, &sample, err, sizeof err);
    cJSON_Delete(o);
    if (rc)
        fprintf(stderr, "%s\n", err);
    return rc;
}

static void check_kind(const cJSON *o, const char *api_version, const char *kind, const char *name,
                       const char *ns)
{
    assert_non_null(o);
    assert_string_equal(s_at(o, "apiVersion"), api_version);
    assert_string_equal(s_at(o, "kind"), kind);
    assert_string_equal(s_at(o, "metadata.name"), name);
    assert_string_equal(s_at(o, "metadata.namespace"), ns);
}

static void check_owned(const cJSON *o, const char *api_version, const char *kind, const char *name)
{
    check_kind(o, api_version, kind, name, "blackfriday");
    assert_string_equal(s_at(o, "metadata.ownerReferences.0.uid"),
                        "0b7e5c1e-1111-2222-3333-444455556666");
    assert_true(cJSON_IsTrue(at(o, "metadata.ownerReferences.0.controller")));
    assert_string_equal(key(at(o, "metadata.labels"), "app.kubernetes.io/managed-by"),
                        "salespipeline-operator");
    assert_string_equal(key(at(o, "metadata.labels"), "app.kubernetes.io/instance"),
                        "black-friday");
}

/* An object of the data namespace: no owner reference (it would not hold across namespaces),
 * the pipeline's namespace and name as labels instead. */
static void check_data(const cJSON *o, const char *api_version, const char *kind, const char *name)
{
    check_kind(o, api_version, kind, name, "blackfriday-data");
    assert_null(at(o, "metadata.ownerReferences"));
    assert_string_equal(key(at(o, "metadata.labels"), "app.kubernetes.io/managed-by"),
                        "salespipeline-operator");
    assert_string_equal(key(at(o, "metadata.labels"), "app.kubernetes.io/instance"),
                        "black-friday");
    assert_string_equal(key(at(o, "metadata.labels"), OP_PIPELINE_NS_LABEL), "blackfriday");
}

/* The text of a Secret's key, decoded. */
static char *secret_value(const cJSON *secret, const char *k)
{
    size_t len;
    const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(at(secret, "data"), k));
    assert_non_null(b64);
    char *v = kubeconfig_b64decode(b64, &len);
    assert_non_null(v);
    return v;
}

/* ---------------------------------------------------------------- Strimzi */

static void test_kafka(void **state)
{
    (void)state;
    cJSON *k = build_kafka(&sample);
    check_owned(k, "kafka.strimzi.io/v1", "Kafka", "black-friday");
    assert_null(
        at(k, "metadata.annotations")); /* Strimzi >= 0.48: no kraft/node-pools annotations */
    assert_string_equal(s_at(k, "spec.kafka.listeners.0.name"), "plain");
    assert_int_equal((int)n_at(k, "spec.kafka.listeners.0.port"), 9092);
    assert_string_equal(s_at(k, "spec.kafka.listeners.0.type"), "internal");
    assert_true(cJSON_IsFalse(at(k, "spec.kafka.listeners.0.tls")));
    const cJSON *cfg = at(k, "spec.kafka.config");
    assert_int_equal(
        (int)cJSON_GetObjectItemCaseSensitive(cfg, "offsets.topic.replication.factor")->valuedouble,
        1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(cfg, "min.insync.replicas")->valuedouble,
                     1);
    assert_true(cJSON_IsObject(at(k, "spec.entityOperator.topicOperator")));
    assert_null(at(k, "spec.entityOperator.userOperator"));
    cJSON_Delete(k);

    struct pipeline p = sample;
    p.kafka.brokers = 3;
    k = build_kafka(&p);
    cfg = at(k, "spec.kafka.config");
    assert_int_equal(
        (int)cJSON_GetObjectItemCaseSensitive(cfg, "default.replication.factor")->valuedouble, 3);
    assert_int_equal(
        (int)cJSON_GetObjectItemCaseSensitive(cfg, "transaction.state.log.min.isr")->valuedouble,
        2);
    cJSON_Delete(k);
}

static void test_nodepool(void **state)
{
    (void)state;
    cJSON *np = build_kafka_nodepool(&sample);
    check_owned(np, "kafka.strimzi.io/v1", "KafkaNodePool", "black-friday-pool");
    assert_string_equal(key(at(np, "metadata.labels"), "strimzi.io/cluster"), "black-friday");
    assert_int_equal((int)n_at(np, "spec.replicas"), 1);
    assert_string_equal(s_at(np, "spec.roles.0"), "controller");
    assert_string_equal(s_at(np, "spec.roles.1"), "broker");
    assert_string_equal(s_at(np, "spec.storage.type"), "jbod");
    assert_string_equal(s_at(np, "spec.storage.volumes.0.type"), "persistent-claim");
    assert_string_equal(s_at(np, "spec.storage.volumes.0.size"), "10Gi");
    assert_string_equal(s_at(np, "spec.storage.volumes.0.kraftMetadata"), "shared");
    cJSON_Delete(np);

    /* Pod names <cluster>-<pool>-<id> stay DNS labels with the longest pipeline names. */
    struct pipeline p = sample;
    char pool[128];
    snprintf(p.name, sizeof p.name, "%s", "abcdefghijklmnopqrstuvwxyz0123");
    infra_nodepool_name(&p, pool, sizeof pool);
    assert_true(strlen(p.name) + 1 + strlen(pool) + 3 <= 63);
    assert_memory_equal(pool, "pool-", 5);
}

static void test_topic(void **state)
{
    (void)state;
    cJSON *t = build_kafka_topic(&sample);
    check_owned(t, "kafka.strimzi.io/v1", "KafkaTopic", "black-friday-topic");
    assert_string_equal(key(at(t, "metadata.labels"), "strimzi.io/cluster"), "black-friday");
    assert_string_equal(s_at(t, "spec.topicName"), "sales");
    assert_int_equal((int)n_at(t, "spec.partitions"), 6);
    assert_int_equal((int)n_at(t, "spec.replicas"), 1);
    assert_true(
        cJSON_GetObjectItemCaseSensitive(at(t, "spec.config"), "retention.ms")->valuedouble ==
        86400000.0);
    cJSON_Delete(t);

    struct pipeline p = sample;
    p.kafka.managed = false;
    snprintf(p.kafka.cluster_ref, sizeof p.kafka.cluster_ref, "shared");
    p.kafka.partitions = 12;
    p.kafka.retention_hours = 8760;
    t = build_kafka_topic(&p);
    assert_string_equal(key(at(t, "metadata.labels"), "strimzi.io/cluster"), "shared");
    assert_int_equal((int)n_at(t, "spec.partitions"), 12);
    assert_true(
        cJSON_GetObjectItemCaseSensitive(at(t, "spec.config"), "retention.ms")->valuedouble ==
        31536000000.0);
    cJSON_Delete(t);
}

/* ---------------------------------------------------------------- Valkey */

static void test_password(void **state)
{
    (void)state;
    char a[INFRA_PASSWORD_LEN + 1], b[INFRA_PASSWORD_LEN + 1], back[200];
    assert_int_equal(valkey_password_generate(a), 0);
    assert_int_equal(valkey_password_generate(b), 0);
    assert_int_equal(strlen(a), INFRA_PASSWORD_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(a, "0123456789abcdef"), INFRA_PASSWORD_LEN);
    cJSON *s = build_valkey_secret(&sample, a);
    check_owned(s, "v1", "Secret", "black-friday-valkey");
    assert_int_equal(valkey_password_read(s, back, sizeof back), 0);
    assert_string_equal(back, a);
    cJSON_Delete(s);
    /* Unusable passwords (quotes, spaces) are refused rather than written into valkey.conf. */
    s = build_valkey_secret(&sample, "bad\"one");
    assert_int_equal(valkey_password_read(s, back, sizeof back), -1);
    cJSON_Delete(s);
    assert_int_equal(valkey_password_read(NULL, back, sizeof back), -1);
    struct pipeline p = sample;
    snprintf(p.valkey.password_secret, sizeof p.valkey.password_secret, "mine");
    infra_password_secret(&p, back, sizeof back);
    assert_string_equal(back, "mine");
    assert_false(infra_password_secret_owned(&p));
}

/* The fingerprint on the consumers' pod template: stable, 16 hex digits, different for another
 * password or another pipeline (keyed with its uid), and not the password's own prefix. */
static void test_password_hash(void **state)
{
    (void)state;
    char h1[17], h2[17], h3[17], h4[17];
    assert_int_equal(valkey_password_hash(&sample, "secret-one", h1), 0);
    assert_int_equal(valkey_password_hash(&sample, "secret-one", h2), 0);
    assert_string_equal(h1, h2);
    assert_int_equal(strspn(h1, "0123456789abcdef"), 16);
    assert_int_equal(valkey_password_hash(&sample, "secret-two", h3), 0);
    assert_string_not_equal(h1, h3);
    struct pipeline other = sample;
    snprintf(other.uid, sizeof other.uid, "another-uid");
    assert_int_equal(valkey_password_hash(&other, "secret-one", h4), 0);
    assert_string_not_equal(h1, h4);
}

static bool contains(const cJSON *o, const char *needle)
{
    char *text = cJSON_PrintUnformatted(o);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

static void test_vm_primary(void **state)
{
    (void)state;
    cJSON *vm = build_valkey_vm(&sample, VALKEY_PRIMARY, 0, PW);
    check_data(vm, "kubevirt.io/v1", "VirtualMachine", "black-friday-valkey-primary");
    assert_string_equal(s_at(vm, "spec.runStrategy"), "Always");
    const cJSON *tl = at(vm, "spec.template.metadata.labels"), *ts = at(vm, "spec.template.spec");
    assert_string_equal(key(tl, "app.kubernetes.io/component"), "valkey-primary");
    assert_string_equal(key(tl, "app.kubernetes.io/name"), "valkey");
    assert_null(cJSON_GetObjectItemCaseSensitive(tl, "app.kubernetes.io/version"));
    assert_int_equal((int)n_at(ts, "domain.cpu.cores"), 1);
    assert_string_equal(s_at(ts, "domain.memory.guest"), "1Gi");
    assert_string_equal(s_at(ts, "domain.resources.requests.cpu"), "1");
    assert_string_equal(s_at(ts, "domain.devices.disks.2.name"), "data");
    assert_string_equal(s_at(ts, "domain.devices.disks.2.serial"), INFRA_DATA_DISK_SERIAL);
    assert_int_equal((int)n_at(ts, "domain.devices.interfaces.0.ports.0.port"), 6379);
    assert_true(cJSON_IsObject(at(ts, "domain.devices.interfaces.0.masquerade")));
    /* Our disk image, from the pipeline's registry, unless the spec names another. */
    assert_string_equal(s_at(ts, "volumes.0.containerDisk.image"),
                        "10.128.0.5:5000/blackfriday/valkey-vm:0.1.0");
    /* spec.imagePullSecret zot-pull, read from the VM's namespace: our copy there. */
    assert_string_equal(s_at(ts, "volumes.0.containerDisk.imagePullSecret"), "black-friday-pull");
    assert_string_equal(s_at(ts, "volumes.1.cloudInitNoCloud.secretRef.name"),
                        "black-friday-valkey-primary-cloudinit");
    assert_string_equal(s_at(ts, "volumes.2.persistentVolumeClaim.claimName"),
                        "black-friday-valkey-data");
    assert_int_equal((int)n_at(ts, "readinessProbe.tcpSocket.port"), 6379);
    assert_false(contains(vm, PW)); /* only the Secret holds it */
    const char *uuid = s_at(ts, "domain.firmware.uuid");
    assert_int_equal(strlen(uuid), 36);
    assert_int_equal(uuid[14], '5');

    /* Same spec, same bytes; a configuration change is a new instance id. */
    cJSON *again = build_valkey_vm(&sample, VALKEY_PRIMARY, 0, PW);
    assert_true(cJSON_Compare(vm, again, true));
    struct pipeline p = sample;
    snprintf(p.valkey.memory, sizeof p.valkey.memory, "2Gi");
    snprintf(p.valkey.cpu, sizeof p.valkey.cpu, "1500m");
    cJSON *bigger = build_valkey_vm(&p, VALKEY_PRIMARY, 0, PW);
    assert_string_equal(s_at(bigger, "spec.template.spec.domain.memory.guest"), "2Gi");
    assert_int_equal((int)n_at(bigger, "spec.template.spec.domain.cpu.cores"), 2);
    assert_string_not_equal(s_at(bigger, "spec.template.spec.domain.firmware.uuid"), uuid);
    cJSON_Delete(again);
    cJSON_Delete(bigger);
    cJSON_Delete(vm);
}

static void test_vm_replica_and_services(void **state)
{
    (void)state;
    cJSON *vm = build_valkey_vm(&sample, VALKEY_REPLICA, 1, PW);
    check_data(vm, "kubevirt.io/v1", "VirtualMachine", "black-friday-valkey-replica-1");
    assert_int_equal(cJSON_GetArraySize(at(vm, "spec.template.spec.domain.devices.disks")), 2);
    assert_int_equal(cJSON_GetArraySize(at(vm, "spec.template.spec.volumes")), 2);
    assert_string_equal(s_at(vm, "spec.template.spec.volumes.1.cloudInitNoCloud.secretRef.name"),
                        "black-friday-valkey-replica-cloudinit");
    assert_int_equal(infra_valkey_replicas(&sample), 1);
    cJSON_Delete(vm);

    cJSON *w = build_valkey_service(&sample, VALKEY_PRIMARY),
          *r = build_valkey_service(&sample, VALKEY_REPLICA);
    check_data(w, "v1", "Service", "black-friday-valkey-primary");
    check_data(r, "v1", "Service", "black-friday-valkey-replica");
    assert_string_equal(key(at(w, "spec.selector"), "app.kubernetes.io/component"),
                        "valkey-primary");
    assert_string_equal(key(at(r, "spec.selector"), "app.kubernetes.io/component"),
                        "valkey-replica");
    assert_int_equal((int)n_at(r, "spec.ports.0.port"), 6379);
    cJSON_Delete(r);
    struct pipeline p = sample;
    p.valkey.replicas = 1; /* no replica VM: reads go to the primary */
    r = build_valkey_service(&p, VALKEY_REPLICA);
    assert_string_equal(key(at(r, "spec.selector"), "app.kubernetes.io/component"),
                        "valkey-primary");
    cJSON_Delete(r);
    cJSON_Delete(w);
}

static void test_cloudinit_secret_and_pvc(void **state)
{
    (void)state;
    cJSON *s = build_valkey_cloudinit_secret(&sample, VALKEY_REPLICA, PW);
    check_data(s, "v1", "Secret", "black-friday-valkey-replica-cloudinit");
    char *ud = secret_value(s, INFRA_CLOUDINIT_KEY);
    assert_memory_equal(ud, "#cloud-config\n", 14);
    assert_non_null(strstr(
        ud, "replicaof black-friday-valkey-primary.blackfriday-data.svc.cluster.local 6379"));
    assert_non_null(strstr(ud, "requirepass \"" PW "\""));
    free(ud);
    cJSON_Delete(s);
    cJSON *pvc = build_valkey_pvc(&sample);
    check_data(pvc, "v1", "PersistentVolumeClaim", "black-friday-valkey-data");
    assert_string_equal(s_at(pvc, "spec.resources.requests.storage"), "2Gi");
    assert_string_equal(s_at(pvc, "spec.accessModes.0"), "ReadWriteOnce");
    cJSON_Delete(pvc);
}

static void test_data_namespace(void **state)
{
    (void)state;
    cJSON *ns = build_data_namespace(&sample);
    assert_non_null(ns);
    assert_string_equal(s_at(ns, "kind"), "Namespace");
    assert_string_equal(s_at(ns, "metadata.name"), "blackfriday-data");
    assert_null(at(ns, "metadata.namespace"));
    assert_null(at(ns, "metadata.ownerReferences"));
    const cJSON *labels = at(ns, "metadata.labels");
    assert_string_equal(key(labels, "pod-security.kubernetes.io/enforce"), "privileged");
    assert_string_equal(key(labels, INFRA_WORKERS_NS_LABEL), "blackfriday");
    assert_string_equal(key(labels, "app.kubernetes.io/managed-by"), "salespipeline-operator");
    cJSON_Delete(ns);
}

static void test_pull_secret_copy(void **state)
{
    (void)state;
    cJSON *src = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":"
                             "{\"name\":\"zot-pull\",\"namespace\":\"blackfriday\",\"uid\":\"x\"},"
                             "\"type\":\"kubernetes.io/dockerconfigjson\","
                             "\"data\":{\".dockerconfigjson\":\"e30=\"}}");
    cJSON *copy = build_valkey_pull_secret(&sample, src);
    check_data(copy, "v1", "Secret", "black-friday-pull");
    assert_string_equal(s_at(copy, "type"), "kubernetes.io/dockerconfigjson");
    assert_string_equal(key(at(copy, "data"), ".dockerconfigjson"), "e30=");
    assert_null(at(copy, "metadata.uid"));
    cJSON_Delete(copy);
    cJSON_Delete(src);
}

static void test_quantities(void **state)
{
    (void)state;
    unsigned long long b;
    assert_int_equal(quantity_bytes("1Gi", &b), 0);
    assert_true(b == 1073741824ull);
    assert_int_equal(quantity_bytes("1.5Gi", &b), 0);
    assert_true(b == 1610612736ull);
    assert_int_equal(quantity_bytes("512M", &b), 0);
    assert_true(b == 512000000ull);
    assert_int_equal(quantity_bytes("1073741824", &b), 0);
    assert_true(b == 1073741824ull);
    assert_int_equal(quantity_bytes("12Zi", &b), -1);
    assert_int_equal(quantity_bytes("", &b), -1);
    assert_int_equal(quantity_cpus("500m"), 1);
    assert_int_equal(quantity_cpus("2"), 2);
    assert_int_equal(quantity_cpus("2500m"), 3);
    assert_int_equal(quantity_cpus("junk"), 1);
    /* Found by pipeline_json_fuzz: a valid but huge quantity overflowed the int cast (UB). */
    assert_int_equal(quantity_cpus("444455556666"), 64);
    assert_int_equal(quantity_cpus("1e300"), 64);
    assert_int_equal(quantity_cpus("65"), 64);
}

/* ---------------------------------------------------------------- Grafana */

static void test_grafana(void **state)
{
    (void)state;
    cJSON *cm = build_grafana_dashboard(&sample, false);
    check_owned(cm, "v1", "ConfigMap", "black-friday-dashboard-sales");
    assert_string_equal(key(at(cm, "metadata.labels"), INFRA_GRAFANA_LABEL), "1");
    const char *json = key(at(cm, "data"), "black-friday-dashboard-sales.json");
    cJSON *dash = cJSON_Parse(json);
    assert_non_null(dash);
    char uid[64];
    grafana_uid(&sample, "sales", uid, sizeof uid);
    assert_string_equal(s_at(dash, "uid"), uid);
    assert_true(strlen(uid) <= 40);
    assert_string_equal(s_at(dash, "templating.list.0.query"), "ZREVRANGE sp:units:Belleza 0 -1");
    cJSON_Delete(dash);
    cJSON_Delete(cm);

    cm = build_grafana_dashboard(&sample, true);
    check_owned(cm, "v1", "ConfigMap", "black-friday-dashboard-health");
    cJSON_Delete(cm);

    cJSON *ds = build_grafana_datasource(&sample, PW);
    check_owned(ds, "v1", "Secret", "black-friday-grafana-datasource");
    assert_string_equal(key(at(ds, "metadata.labels"), INFRA_DATASOURCE_LABEL), "1");
    char *yaml = secret_value(ds, "valkey-datasource.yaml"), err[128];
    cJSON *doc = yamljson_parse(yaml, strlen(yaml), NULL, err, sizeof err);
    assert_non_null(doc);
    assert_string_equal(s_at(doc, "datasources.0.type"), "redis-datasource");
    assert_string_equal(
        s_at(doc, "datasources.0.url"),
        "redis://black-friday-valkey-replica.blackfriday-data.svc.cluster.local:6379");
    assert_string_equal(s_at(doc, "datasources.0.secureJsonData.password"), PW);
    grafana_uid(&sample, "valkey", uid, sizeof uid);
    assert_string_equal(s_at(doc, "datasources.0.uid"), uid);
    cJSON_Delete(doc);
    free(yaml);
    cJSON_Delete(ds);
}

/* ---------------------------------------------------------------- readiness */

static cJSON *obj(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    return o;
}

static void test_read_strimzi(void **state)
{
    (void)state;
    struct part_status s;
    cJSON *k = obj("{\"kind\":\"Kafka\",\"metadata\":{\"name\":\"k\",\"generation\":2},"
                   "\"status\":{\"observedGeneration\":2,\"conditions\":[{\"type\":\"Ready\","
                   "\"status\":\"True\"}]}}");
    infra_read_strimzi(k, &s);
    assert_true(s.known && s.ready);
    cJSON_Delete(k);
    k = obj("{\"kind\":\"Kafka\",\"metadata\":{\"name\":\"k\",\"generation\":3},"
            "\"status\":{\"observedGeneration\":2,\"conditions\":[{\"type\":\"Ready\",\"status\":"
            "\"True\"}]}}");
    infra_read_strimzi(k, &s);
    assert_false(s.ready);
    assert_non_null(strstr(s.message, "generation 3"));
    cJSON_Delete(k);
    k = obj("{\"kind\":\"KafkaTopic\",\"metadata\":{\"name\":\"t\",\"generation\":1},\"status\":{"
            "\"observedGeneration\":1,"
            "\"conditions\":[{\"type\":\"NotReady\",\"status\":\"True\",\"reason\":\"KafkaError\","
            "\"message\":\"no brokers\"}]}}");
    infra_read_strimzi(k, &s);
    assert_false(s.ready);
    assert_string_equal(s.message, "KafkaTopic t: no brokers");
    cJSON_Delete(k);
    infra_read_strimzi(NULL, &s);
    assert_false(s.known || s.ready);

    cJSON *np = obj(
        "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"replicas\":3},\"status\":{\"nodeIds\":[0,1]}}");
    infra_read_nodepool(np, &s);
    assert_false(s.ready);
    assert_string_equal(s.message, "KafkaNodePool p: 2/3 nodes");
    cJSON_Delete(np);
    np = obj(
        "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"replicas\":1},\"status\":{\"replicas\":1}}");
    infra_read_nodepool(np, &s);
    assert_true(s.ready);
    cJSON_Delete(np);
}

static void test_read_vm(void **state)
{
    (void)state;
    struct part_status s;
    cJSON *vm = obj(
        "{\"metadata\":{\"name\":\"v\"},\"status\":{\"ready\":true,\"printableStatus\":\"Running\","
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    infra_read_vm(vm, &s);
    assert_true(s.ready);
    assert_false(s.restart_required);
    cJSON_Delete(vm);
    vm = obj(
        "{\"metadata\":{\"name\":\"v\"},\"status\":{\"printableStatus\":\"Starting\","
        "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\",\"message\":\"guest not ready\"},"
        "{\"type\":\"RestartRequired\",\"status\":\"True\"}]}}");
    infra_read_vm(vm, &s);
    assert_false(s.ready);
    assert_true(s.restart_required);
    assert_string_equal(s.message, "VirtualMachine v: Starting: guest not ready");
    cJSON_Delete(vm);
    vm = obj("{\"metadata\":{\"name\":\"v\"}}");
    infra_read_vm(vm, &s);
    assert_string_equal(s.message, "VirtualMachine v: not started yet");
    cJSON_Delete(vm);
}

/* The operator reads the data of its own Secret (controller reference to this pipeline) and of a
 * user's Secret that opts in by annotation, of no other. */
static void test_password_secret_may_read(void **state)
{
    (void)state;
    cJSON *ours = build_valkey_secret(&sample, "pw");
    assert_true(valkey_password_may_read(&sample, ours));
    struct pipeline other = sample;
    snprintf(other.uid, sizeof other.uid, "another-uid");
    assert_false(valkey_password_may_read(&other, ours)); /* another pipeline's */
    cJSON_Delete(ours);
    cJSON *user = obj("{\"metadata\":{\"name\":\"mine\",\"annotations\":{\"x\":\"true\"}}}");
    assert_false(valkey_password_may_read(&sample, user));
    cJSON_Delete(user);
    user = obj(
        "{\"metadata\":{\"name\":\"mine\",\"annotations\":{\"" VALKEY_PASSWORD_READ_ANNOTATION
        "\":\"false\"}}}");
    assert_false(valkey_password_may_read(&sample, user));
    cJSON_Delete(user);
    user = obj(
        "{\"metadata\":{\"name\":\"mine\",\"annotations\":{\"" VALKEY_PASSWORD_READ_ANNOTATION
        "\":\"true\"}}}");
    assert_true(valkey_password_may_read(&sample, user));
    cJSON_Delete(user);
    /* An owner reference that is not the controller one does not count. */
    char json[512];
    snprintf(json, sizeof json,
             "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"%s\","
             "\"controller\":false}]}}",
             sample.uid);
    user = obj(json);
    assert_false(valkey_password_may_read(&sample, user));
    cJSON_Delete(user);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka),
        cmocka_unit_test(test_nodepool),
        cmocka_unit_test(test_topic),
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_password_hash),
        cmocka_unit_test(test_vm_primary),
        cmocka_unit_test(test_vm_replica_and_services),
        cmocka_unit_test(test_cloudinit_secret_and_pvc),
        cmocka_unit_test(test_data_namespace),
        cmocka_unit_test(test_pull_secret_copy),
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_grafana),
        cmocka_unit_test(test_read_strimzi),
        cmocka_unit_test(test_read_vm),
        cmocka_unit_test(test_password_secret_may_read),
    };
    return cmocka_run_group_tests(tests, load_sample, NULL);
}
