"""Strimzi Kafka, Valkey in KubeVirt VMs and the Grafana objects, reconciled by the operator
against a real control plane with the upstream Strimzi and KubeVirt CRDs installed (conftest's
`kube`): the server validates everything the operator writes. No Strimzi or KubeVirt operator
runs: tests write their objects' status as those operators would."""
import base64
import json
import re
import subprocess

import yaml

from harness import BIN_DIR, wait_until
from kubekit import condition, data_namespace, sample_pipeline, strimzi_status, vm_status
from test_reconcile import make_pods_ready

NAME = "black-friday"
# In the pipeline's namespace (owner references to it).
SAMPLE_INFRA = {
    "Kafka": [NAME], "KafkaNodePool": [f"{NAME}-pool"], "KafkaTopic": [f"{NAME}-topic"],
    "Secret": [f"{NAME}-valkey", f"{NAME}-grafana-datasource"],
    "ConfigMap": [f"{NAME}-dashboard-sales", f"{NAME}-dashboard-health"],
}
# In the data namespace (spec.valkey.namespace, default <ns>-data; labels, no owner reference).
SAMPLE_DATA = {
    "VirtualMachine": [f"{NAME}-valkey-primary", f"{NAME}-valkey-replica-1"],
    "Service": [f"{NAME}-valkey-primary", f"{NAME}-valkey-replica"],
    "Secret": [f"{NAME}-valkey-primary-cloudinit", f"{NAME}-valkey-replica-cloudinit"],
    "PersistentVolumeClaim": [f"{NAME}-valkey-data"],
}
CONDITIONS = ("KafkaReady", "ValkeyReady", "WorkersReady", "DashboardReady")


def obj(kube, kind, ns, name):
    return kube.get_or_none(kube.path(kind, ns, name))


def all_infra(kube, ns, data_ns=None):
    """Every object of the sample, in the pipeline's namespace and in the data namespace."""
    data_ns = data_ns or data_namespace(ns)
    return all(obj(kube, kind, ns, n) for kind, names in SAMPLE_INFRA.items() for n in names) and \
        all(obj(kube, kind, data_ns, n) for kind, names in SAMPLE_DATA.items() for n in names)


def secret_text(secret, key):
    return base64.b64decode(secret["data"][key]).decode()


def password(kube, ns):
    return secret_text(obj(kube, "Secret", ns, f"{NAME}-valkey"), "password")


def password_hash(kube, ns, component):
    """The Valkey password fingerprint on a component's pod template, or None."""
    d = kube.get(kube.path("Deployment", ns, f"{NAME}-{component}"))
    return d["spec"]["template"]["metadata"].get("annotations", {}).get(
        "sales.blackfriday.dev/valkey-password-hash")


def cloud_config(kube, ns, role):
    text = secret_text(obj(kube, "Secret", data_namespace(ns), f"{NAME}-valkey-{role}-cloudinit"),
                       "userdata")
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def valkey_conf(kube, ns, role):
    doc = cloud_config(kube, ns, role)
    return next(f["content"] for f in doc["write_files"] if f["path"].endswith("valkey.conf"))


def dashboard(kube, ns, which="sales"):
    cm = obj(kube, "ConfigMap", ns, f"{NAME}-dashboard-{which}")
    return json.loads(cm["data"][f"{NAME}-dashboard-{which}.json"])


def sp_status(kube, ns):
    return kube.get(kube.sp_path(ns, NAME))


def cond_is(kube, ns, ctype, status, reason=None):
    sp = sp_status(kube, ns)
    c = condition(sp, ctype)
    return sp if c and c["status"] == status and (reason is None or c["reason"] == reason) else None


def reconciled(kube, ns):
    sp = sp_status(kube, ns)
    return sp if (sp.get("status") or {}).get("observedGeneration") == sp["metadata"]["generation"] else None


def create(kube, ns, edit=None):
    sp = sample_pipeline(ns, NAME)
    if edit:
        edit(sp["spec"])
    return kube.create(kube.sp_path(ns), sp)


# ---------------------------------------------------------------- what Strimzi and KubeVirt do

def kafka_ready(kube, ns, managed=True):
    if managed:
        strimzi_status(kube, ns, "Kafka", NAME)
        strimzi_status(kube, ns, "KafkaNodePool", f"{NAME}-pool")
    strimzi_status(kube, ns, "KafkaTopic", f"{NAME}-topic")


def valkey_ready(kube, ns):
    for name in SAMPLE_DATA["VirtualMachine"]:
        vm_status(kube, data_namespace(ns), name)


# ---------------------------------------------------------------- tests

def test_sample_produces_every_infra_object_as_rendered(kube, ns, operator, tmp_path):
    operator()
    uid = create(kube, ns)["metadata"]["uid"]
    wait_until(lambda: all_infra(kube, ns), 60, interval=0.2, what="every infrastructure object")
    # What is stored is exactly what the operator builds (`--render objects` prints it without
    # a cluster): nothing was pruned as unknown by the upstream schemas.
    manifest = tmp_path / "sp.yaml"
    doc = sample_pipeline(ns, NAME)
    doc["metadata"]["uid"] = uid  # the uid keys the password fingerprint on the consumer's pods
    manifest.write_text(yaml.safe_dump(doc))
    out = subprocess.run([str(BIN_DIR / "operator"), "--render", "objects", "--file", str(manifest),
                          "--password", password(kube, ns)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rendered = json.loads(out.stdout)["items"]
    names = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in rendered}
    assert {(k, ns, n) for k, ns_ in SAMPLE_INFRA.items() for n in ns_} <= names
    assert {(k, data_namespace(ns), n) for k, ns_ in SAMPLE_DATA.items() for n in ns_} <= names

    def contained(want, got, where):
        if isinstance(want, dict):
            for k, v in want.items():
                if k not in got and v in (False, 0, "", [], {}) and not isinstance(v, float):
                    continue  # a built-in kind's zero value, omitted when stored
                assert k in got, f"{where}.{k} missing"
                contained(v, got[k], f"{where}.{k}")
        elif isinstance(want, list):
            assert len(want) == len(got), where
            for i, (a, b) in enumerate(zip(want, got)):
                contained(a, b, f"{where}[{i}]")
        else:
            assert want == got, f"{where}: {want!r} != {got!r}"
    for o in rendered:  # the workers' objects too
        live = kube.get(kube.path(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]))
        for part in ("spec", "data", "type"):
            if part in o:
                contained(o[part], live[part], f"{o['kind']}/{o['metadata']['name']}.{part}")
        labels = live["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "salespipeline-operator"
        assert labels["app.kubernetes.io/instance"] == NAME
        if o["metadata"]["namespace"] == ns:
            assert live["metadata"]["ownerReferences"][0]["uid"] == uid
        else:  # an owner reference would not hold across namespaces: labels and the finalizer
            assert "ownerReferences" not in live["metadata"]
            assert labels["sales.blackfriday.dev/pipeline-namespace"] == ns
    assert "sales.blackfriday.dev/data-namespace" in sp_status(kube, ns)["metadata"]["finalizers"]

    pw = password(kube, ns)
    assert re.fullmatch(r"[0-9a-f]{64}", pw)
    for role in ("primary", "replica"):
        assert f'requirepass "{pw}"' in valkey_conf(kube, ns, role)
    vm = obj(kube, "VirtualMachine", data_namespace(ns), f"{NAME}-valkey-primary")
    assert pw not in json.dumps(vm)
    assert obj(kube, "Service", data_namespace(ns), f"{NAME}-valkey-replica")["spec"]["selector"][
        "app.kubernetes.io/component"] == "valkey-replica"
    assert obj(kube, "KafkaTopic", ns, f"{NAME}-topic")["metadata"]["labels"]["strimzi.io/cluster"] == NAME
    ds = obj(kube, "Secret", ns, f"{NAME}-grafana-datasource")
    assert ds["metadata"]["labels"]["grafana_datasource"] == "1"
    assert f"redis://{NAME}-valkey-replica.{data_namespace(ns)}.svc.cluster.local:6379" in \
        secret_text(ds, "valkey-datasource.yaml")
    assert obj(kube, "ConfigMap", ns, f"{NAME}-dashboard-sales")["metadata"]["labels"]["grafana_dashboard"] == "1"
    # The consumer writes to the primary with the password from the Secret.
    consumer = kube.get(kube.path("Deployment", ns, f"{NAME}-consumer"))["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in consumer["env"]}
    assert env["VALKEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": f"{NAME}-valkey", "key": "password"}
    assert env["VALKEY_URL"]["value"] == \
        f"redis://{NAME}-valkey-primary.{data_namespace(ns)}.svc.cluster.local:6379"
    # The VMs boot our disk image, from the pipeline's registry.
    assert vm["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]["image"] == \
        "10.128.0.5:5000/blackfriday/valkey-vm:0.1.0"


def test_existing_cluster_reference_produces_only_the_topic(kube, ns, operator):
    operator()

    def shared(spec):
        spec["kafka"].update(managed=False, clusterRef="shared")
    create(kube, ns, shared)
    wait_until(lambda: obj(kube, "KafkaTopic", ns, f"{NAME}-topic") and reconciled(kube, ns), 60,
               what="the topic")
    topic = obj(kube, "KafkaTopic", ns, f"{NAME}-topic")
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "shared"
    assert not obj(kube, "Kafka", ns, NAME) and not obj(kube, "KafkaNodePool", ns, f"{NAME}-pool")
    assert not kube.get(kube.path("Kafka", ns))["items"]
    writer = kube.get(kube.path("Deployment", ns, f"{NAME}-writer-a"))["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in writer["env"]}["KAFKA_BROKERS"] == \
        f"shared-kafka-bootstrap.{ns}.svc:9092"
    # KafkaReady needs only the topic here.
    strimzi_status(kube, ns, "KafkaTopic", f"{NAME}-topic")
    wait_until(lambda: cond_is(kube, ns, "KafkaReady", "True"), 60, what="KafkaReady from the topic alone")

    # Managed again: the cluster and its pool appear.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"kafka": {"managed": True, "clusterRef": ""}}})
    wait_until(lambda: obj(kube, "Kafka", ns, NAME) and obj(kube, "KafkaNodePool", ns, f"{NAME}-pool"), 60,
               what="the managed cluster")
    wait_until(lambda: obj(kube, "KafkaTopic", ns, f"{NAME}-topic")["metadata"]["labels"]["strimzi.io/cluster"] == NAME,
               60, what="the topic moved to the managed cluster")


def external(spec, password_secret=""):
    """An external Kafka (SASL_SSL, as a managed service) and an external Valkey."""
    spec["kafka"].update(managed=False, bootstrapServers="b-1.kafka.example.com:9096",
                         security={"protocol": "SASL_SSL", "credentialsSecret": "kafka-credentials",
                                   "caConfigMap": "kafka-ca"})
    spec["valkey"].update(url="redis://10.20.30.40:6379", passwordSecret=password_secret)


def test_external_kafka_and_valkey_get_no_objects(kube, ns, operator):
    """spec.kafka.bootstrapServers and spec.valkey.url: no Strimzi object, no VM, no data
    namespace, no password Secret of ours; the workers point at them; KafkaReady and
    ValkeyReady say External, and Ready follows the workers alone."""
    operator()
    create(kube, ns, external)
    sp = wait_until(lambda: reconciled(kube, ns), 60, what="the first reconcile")
    for kind in ("Kafka", "KafkaNodePool", "KafkaTopic"):
        assert not kube.get(kube.path(kind, ns))["items"], kind
    assert not obj(kube, "Secret", ns, f"{NAME}-valkey")
    assert obj(kube, "Secret", ns, f"{NAME}-grafana-datasource")
    assert not kube.get_or_none(f"/api/v1/namespaces/{data_namespace(ns)}")
    assert condition(sp, "KafkaReady")["reason"] == "ExternalKafka"
    assert condition(sp, "ValkeyReady")["reason"] == "ExternalValkey"
    writer = kube.get(kube.path("Deployment", ns, f"{NAME}-writer-b"))["spec"]["template"]["spec"]
    env = {e["name"]: e for e in writer["containers"][0]["env"]}
    assert env["KAFKA_BROKERS"]["value"] == "b-1.kafka.example.com:9096"
    assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "sasl_ssl"
    assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "kafka-credentials", "key": "password"}
    assert {"name": "kafka-ca", "configMap": {"name": "kafka-ca", "defaultMode": 0o444,
            "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in writer["volumes"]
    consumer = kube.get(kube.path("Deployment", ns, f"{NAME}-consumer"))["spec"]["template"]["spec"]["containers"][0]
    cenv = {e["name"]: e for e in consumer["env"]}
    assert cenv["VALKEY_URL"]["value"] == "redis://10.20.30.40:6379" and "VALKEY_PASSWORD" not in cenv
    assert "redis://10.20.30.40:6379" in secret_text(obj(kube, "Secret", ns, f"{NAME}-grafana-datasource"),
                                                     "valkey-datasource.yaml")

    def ready():
        make_pods_ready(kube, ns)
        return cond_is(kube, ns, "Ready", "True")
    wait_until(ready, 120, interval=0.5, what="Ready=True from the workers alone")


def test_switching_to_an_external_valkey_removes_the_vms(kube, ns, operator):
    """From the operator's VMs to spec.valkey.url: the VMs, their Services, Secrets, disk and the
    data namespace the operator made go; a Valkey password Secret of the user's is used."""
    operator()
    create(kube, ns)
    wait_until(lambda: all_infra(kube, ns) and reconciled(kube, ns), 60, what="the VMs")
    # The operator reads a Secret it did not make only when its owner says so (for Grafana's
    # data source and the consumer's password fingerprint).
    kube.create(kube.path("Secret", ns), {"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "memorystore-auth", "annotations": {
                                              "sales.blackfriday.dev/operator-may-read": "true"}},
                                          "stringData": {"password": "s3cret-Pass"}})
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"valkey": {"url": "redis://10.20.30.40:6379",
                                                                  "passwordSecret": "memorystore-auth"}}})
    wait_until(lambda: not kube.get_or_none(f"/api/v1/namespaces/{data_namespace(ns)}"), 120,
               interval=0.5, what="the data namespace to be collected")
    sp = wait_until(lambda: reconciled(kube, ns), 60, what="the new generation")
    assert condition(sp, "ValkeyReady")["reason"] == "ExternalValkey"
    consumer = kube.get(kube.path("Deployment", ns, f"{NAME}-consumer"))["spec"]["template"]
    env = {e["name"]: e for e in consumer["spec"]["containers"][0]["env"]}
    assert env["VALKEY_URL"]["value"] == "redis://10.20.30.40:6379"
    assert env["VALKEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "memorystore-auth", "key": "password"}
    assert "s3cret-Pass" in secret_text(obj(kube, "Secret", ns, f"{NAME}-grafana-datasource"),
                                        "valkey-datasource.yaml")
    assert consumer["metadata"]["annotations"]["sales.blackfriday.dev/valkey-password-hash"]


def test_spec_changes_are_applied(kube, ns, operator):
    operator()
    create(kube, ns)
    wait_until(lambda: all_infra(kube, ns) and reconciled(kube, ns), 60, what="first reconcile")
    uuid_before = obj(kube, "VirtualMachine", data_namespace(ns), f"{NAME}-valkey-primary")["spec"]["template"]["spec"][
        "domain"]["firmware"]["uuid"]
    assert dashboard(kube, ns)["templating"]["list"][0]["query"] == "ZREVRANGE sp:units:Belleza 0 -1"

    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {
        "kafka": {"topic": {"partitions": 12}},
        "valkey": {"cpu": "2", "memory": "2Gi"},
        "grafana": {"carnet": "202300533"}}})
    wait_until(lambda: obj(kube, "KafkaTopic", ns, f"{NAME}-topic")["spec"]["partitions"] == 12, 60,
               what="12 partitions")
    for vm in SAMPLE_DATA["VirtualMachine"]:
        wait_until(lambda: (d := obj(kube, "VirtualMachine", data_namespace(ns), vm)["spec"]["template"]["spec"]["domain"])
                   ["memory"]["guest"] == "2Gi" and d["cpu"]["cores"] == 2, 60, what=f"{vm} resized")
    primary = obj(kube, "VirtualMachine", data_namespace(ns), f"{NAME}-valkey-primary")["spec"]["template"]["spec"]
    assert primary["domain"]["firmware"]["uuid"] != uuid_before  # cloud-init runs again at restart
    assert f"maxmemory {2 * (1 << 30) // 100 * 60}" in valkey_conf(kube, ns, "primary")
    wait_until(lambda: dashboard(kube, ns)["templating"]["list"][0]["query"] == "ZREVRANGE sp:units:Ropa 0 -1",
               60, what="the dashboard's assigned category to follow the carnet")
    d = dashboard(kube, ns)
    keys = {p["targets"][0]["keyName"] for p in d["panels"] if "targets" in p}
    assert "sp:units:Ropa" in keys and "sp:units:Belleza" not in keys
    sp = wait_until(lambda: reconciled(kube, ns), 60, what="status of the new generation")
    assert sp["status"]["category"] == "Ropa"

    # One Valkey VM only: the replica VM goes, reads go to the primary.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"valkey": {"replicas": 1}}})
    wait_until(lambda: not obj(kube, "VirtualMachine", data_namespace(ns), f"{NAME}-valkey-replica-1"), 60,
               what="the replica VM removed")
    assert obj(kube, "Service", data_namespace(ns), f"{NAME}-valkey-replica")["spec"]["selector"][
        "app.kubernetes.io/component"] == "valkey-primary"


def test_hand_edits_are_undone(kube, ns, operator):
    operator()
    create(kube, ns)
    wait_until(lambda: all_infra(kube, ns) and reconciled(kube, ns), 60, what="first reconcile")

    kube.merge_patch(kube.path("KafkaTopic", ns, f"{NAME}-topic"), {"spec": {"partitions": 2}})
    wait_until(lambda: obj(kube, "KafkaTopic", ns, f"{NAME}-topic")["spec"]["partitions"] == 6, 60,
               what="the topic's partitions restored")
    kube.merge_patch(kube.path("VirtualMachine", data_namespace(ns), f"{NAME}-valkey-primary"),
                     {"spec": {"template": {"spec": {"domain": {"memory": {"guest": "16Gi"}}}}}})
    wait_until(lambda: obj(kube, "VirtualMachine", data_namespace(ns), f"{NAME}-valkey-primary")["spec"]["template"]["spec"]
               ["domain"]["memory"]["guest"] == "1Gi", 60, what="the VM's memory restored")
    kube.merge_patch(kube.path("Service", data_namespace(ns), f"{NAME}-valkey-replica"),
                     {"spec": {"selector": {"app.kubernetes.io/component": "valkey-primary"}}})
    wait_until(lambda: obj(kube, "Service", data_namespace(ns), f"{NAME}-valkey-replica")["spec"]["selector"]
               ["app.kubernetes.io/component"] == "valkey-replica", 60, what="the replica Service's selector")
    # Deleted by hand: back at once, also in the data namespace (its events reach the
    # pipeline through the labels, owner references cannot cross namespaces).
    dns = data_namespace(ns)
    for kind, where, name in (("VirtualMachine", dns, f"{NAME}-valkey-replica-1"), ("Kafka", ns, NAME),
                              ("ConfigMap", ns, f"{NAME}-dashboard-sales"),
                              ("Secret", dns, f"{NAME}-valkey-primary-cloudinit")):
        old = obj(kube, kind, where, name)["metadata"]["uid"]
        kube.delete(kube.path(kind, where, name))
        wait_until(lambda: (o := obj(kube, kind, where, name)) and o["metadata"]["uid"] != old, 60,
                   what=f"{kind} {name} to come back")


def test_conditions_follow_strimzi_and_kubevirt(kube, ns, operator):
    operator()
    create(kube, ns)
    sp = wait_until(lambda: all_infra(kube, ns) and reconciled(kube, ns), 60, what="first status")
    conds = {t: condition(sp, t) for t in CONDITIONS}
    assert all(conds.values()), sp["status"]["conditions"]
    assert conds["KafkaReady"]["status"] == "False" and conds["ValkeyReady"]["status"] == "False"
    assert conds["WorkersReady"]["status"] == "False"
    assert conds["DashboardReady"]["status"] == "True"
    assert condition(sp, "Ready")["status"] == "False"

    # Strimzi reports the cluster, pool and topic ready.
    kafka_ready(kube, ns)
    sp = wait_until(lambda: cond_is(kube, ns, "KafkaReady", "True"), 60, what="KafkaReady=True")
    assert condition(sp, "Ready")["status"] == "False"
    # KubeVirt: one VM still starting.
    vm_status(kube, data_namespace(ns), f"{NAME}-valkey-primary")
    vm_status(kube, data_namespace(ns), f"{NAME}-valkey-replica-1", ready=False)
    sp = wait_until(lambda: (s := cond_is(kube, ns, "ValkeyReady", "False")) and
                    "valkey-replica-1" in condition(s, "ValkeyReady")["message"] and s, 60,
                    what="ValkeyReady=False naming the replica")
    vm_status(kube, data_namespace(ns), f"{NAME}-valkey-replica-1")
    wait_until(lambda: cond_is(kube, ns, "ValkeyReady", "True"), 60, what="ValkeyReady=True")

    def all_ready():
        make_pods_ready(kube, ns)
        return cond_is(kube, ns, "Ready", "True")
    sp = wait_until(all_ready, 120, interval=0.5, what="Ready=True with every part ready")
    assert condition(sp, "WorkersReady")["status"] == "True"
    assert condition(sp, "Ready")["reason"] == "AllComponentsReady"

    # The Kafka cluster fails: KafkaReady and Ready drop, with Strimzi's message.
    strimzi_status(kube, ns, "Kafka", NAME, ready=False, message="brokers unreachable")
    sp = wait_until(lambda: cond_is(kube, ns, "KafkaReady", "False"), 60, what="KafkaReady=False")
    assert "brokers unreachable" in condition(sp, "KafkaReady")["message"]
    assert condition(sp, "Ready")["status"] == "False"
    assert "brokers unreachable" in condition(sp, "Ready")["message"]
    strimzi_status(kube, ns, "Kafka", NAME)
    wait_until(lambda: cond_is(kube, ns, "Ready", "True"), 60, what="Ready=True again")

    # A VM still running an older spec says so.
    vm_status(kube, data_namespace(ns), f"{NAME}-valkey-primary", restart_required=True)
    sp = wait_until(lambda: "restart" in condition(sp_status(kube, ns), "ValkeyReady")["message"].lower()
                    and sp_status(kube, ns), 60, what="ValkeyReady to mention the pending restart")
    assert condition(sp, "ValkeyReady")["status"] == "True"


def test_password_is_generated_once_and_kept(kube, ns, operator):
    op = operator()
    create(kube, ns)
    wait_until(lambda: all_infra(kube, ns) and reconciled(kube, ns), 60, what="first reconcile")
    pw = password(kube, ns)
    consumer_hash = password_hash(kube, ns, "consumer")
    assert consumer_hash and password_hash(kube, ns, "api") is None  # only the consumer uses Valkey
    # Reconciles of several generations, and an operator restart: the same password everywhere.
    for replicas in (2, 3):
        kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": replicas}}})
        wait_until(lambda: reconciled(kube, ns) and sp_status(kube, ns)["metadata"]["generation"] ==
                   sp_status(kube, ns)["status"]["observedGeneration"], 60, what="reconcile")
    assert op.terminate() == 0
    operator()
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": 1}}})
    wait_until(lambda: kube.get(kube.path("Deployment", ns, f"{NAME}-bridge"))["spec"]["replicas"] == 1,
               60, what="the new operator to reconcile")
    assert password(kube, ns) == pw
    for role in ("primary", "replica"):
        assert f'requirepass "{pw}"' in valkey_conf(kube, ns, role)
    assert password_hash(kube, ns, "consumer") == consumer_hash  # so no needless rollout

    # A Secret of that name that the operator did not make (no controller reference to the
    # pipeline) is not read: Degraded, and the copies keep the old password.
    kube.delete(kube.path("Secret", ns, f"{NAME}-valkey"))
    kube.create(kube.path("Secret", ns), {"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": f"{NAME}-valkey"},
                                          "stringData": {"password": "planted-by-someone"}})
    c = wait_until(lambda: (c := condition(sp_status(kube, ns), "Degraded")) and c["status"] == "True" and c,
                   60, what="Degraded: a Secret not made by the operator")
    assert "was not made by the operator" in c["message"], c
    assert "planted-by-someone" not in valkey_conf(kube, ns, "primary")

    # Deleted by hand: a new one is generated and every copy follows.
    kube.delete(kube.path("Secret", ns, f"{NAME}-valkey"))
    new = wait_until(lambda: (s := obj(kube, "Secret", ns, f"{NAME}-valkey")) and secret_text(s, "password"),
                     60, what="a new password Secret")
    assert new != pw
    wait_until(lambda: f'requirepass "{new}"' in valkey_conf(kube, ns, "primary") and
               f'requirepass "{new}"' in valkey_conf(kube, ns, "replica"), 60, what="the VMs' configuration")
    wait_until(lambda: new in secret_text(obj(kube, "Secret", ns, f"{NAME}-grafana-datasource"),
                                          "valkey-datasource.yaml"), 60, what="Grafana's data source")
    # The consumers read the password from a secretKeyRef, fixed at pod start: a new pod template
    # hash rolls them onto the new password.
    wait_until(lambda: password_hash(kube, ns, "consumer") not in (None, consumer_hash), 60,
               what="the consumer's pod template to change")


def test_user_password_secret_is_used_not_written(kube, ns, operator):
    """The user's Secret is read only once its owner opts in with the annotation; before, the
    pipeline is Degraded saying so, and nothing carries the password."""
    operator()
    kube.create(kube.path("Secret", ns), {"apiVersion": "v1", "kind": "Secret",
                                     "metadata": {"name": "my-valkey"},
                                     "stringData": {"password": "s3cret-Pass"}})

    def mine(spec):
        spec["valkey"]["passwordSecret"] = "my-valkey"
    create(kube, ns, mine)

    def degraded():
        c = condition(sp_status(kube, ns), "Degraded")
        return c if c and c["status"] == "True" else None
    c = wait_until(degraded, 60, what="Degraded: the Secret is not opted in")
    assert "annotate it sales.blackfriday.dev/operator-may-read=true" in c["message"], c
    assert not obj(kube, "Secret", data_namespace(ns), f"{NAME}-valkey-primary-cloudinit")
    assert not obj(kube, "Secret", ns, f"{NAME}-grafana-datasource")
    kube.merge_patch(kube.path("Secret", ns, "my-valkey"), {"metadata": {"annotations": {
        "sales.blackfriday.dev/operator-may-read": "true"}}})
    wait_until(lambda: obj(kube, "Secret", data_namespace(ns), f"{NAME}-valkey-primary-cloudinit") and reconciled(kube, ns),
               60, what="reconcile with the user's Secret")
    assert 'requirepass "s3cret-Pass"' in valkey_conf(kube, ns, "primary")
    assert not obj(kube, "Secret", ns, f"{NAME}-valkey")
    mine_after = obj(kube, "Secret", ns, "my-valkey")
    assert "ownerReferences" not in mine_after["metadata"]
    consumer = kube.get(kube.path("Deployment", ns, f"{NAME}-consumer"))["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e for e in consumer["env"]}["VALKEY_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "my-valkey"
