"""The SalesPipeline CRD on a real kube-apiserver: it installs, the sample applies, defaults
fill in, and wrong specs are refused with a message that names the field. No operator runs."""
import copy
import json
from pathlib import Path

import pytest
import yaml

from kubekit import CRD_FILE, SAMPLE_FILE, ApiError, sample_pipeline

DEFAULTED = json.loads((Path(__file__).parent / "defaulted-spec.json").read_text())


def test_crd_is_established_with_its_names_and_columns(kube):
    crd = kube.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/salespipelines.sales.blackfriday.dev")
    conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"
    assert crd["spec"]["names"]["kind"] == "SalesPipeline"
    assert crd["spec"]["names"]["shortNames"] == ["sp"]
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")] == \
        ["Ready", "API-Replicas", "API-Desired", "API", "Age"]


def test_sample_applies_and_kubectl_knows_the_short_name(kube, ns):
    text = SAMPLE_FILE.read_text().replace("namespace: blackfriday", f"namespace: {ns}")
    # The sample file also creates its namespace; apply only the SalesPipeline into ours.
    sp_doc = text.split("---\n")[-1]
    kube.kubectl("apply", "-f", "-", stdin=sp_doc)
    out = kube.kubectl("get", "sp", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "API-REPLICAS", "API-DESIRED", "API", "AGE"], out
    assert out[1].split()[0] == "black-friday"
    sp = kube.get(kube.sp_path(ns, "black-friday"))
    assert sp["spec"]["writers"][1] == {"name": "writer-b", "replicas": 2, "resources": DEFAULTED["writers"][1]["resources"]}
    assert sp["spec"]["grafana"]["carnet"] == "202300539"


def test_defaults_fill_in(kube, ns):
    """A spec with only a registry comes back with every default of the schema: exactly the
    fixture that operator/pipeline_test.c checks the operator's own defaults against."""
    sp = {"apiVersion": "sales.blackfriday.dev/v1alpha1", "kind": "SalesPipeline",
          "metadata": {"name": "minimal", "namespace": ns},
          "spec": {"registry": DEFAULTED["registry"]}}
    got = kube.create(kube.sp_path(ns), sp)["spec"]
    assert got == DEFAULTED, json.dumps(got, indent=1)


def _set(obj, path, value):
    keys = path.split(".")
    for k in keys[:-1]:
        obj = obj[int(k)] if k.isdigit() else obj.setdefault(k, {})
    if value is _DELETE:
        del obj[keys[-1]]
    elif keys[-1].isdigit():
        obj[int(keys[-1])] = value
    else:
        obj[keys[-1]] = value


_DELETE = object()

# (what is wrong, [(path, value), ...], text the refusal must contain: the field, and the reason)
INVALID = [
    ("min above max replicas", [("spec.api.minReplicas", 4)], ["spec.api.minReplicas", "less than or equal"]),
    ("carnet with a letter", [("spec.grafana.carnet", "20230053X")], ["spec.grafana.carnet", "digits only"]),
    ("duplicate writer names", [("spec.writers", [{"name": "w"}, {"name": "w"}])], ["spec.writers", "Duplicate value"]),
    ("writer named like a component", [("spec.writers", [{"name": "api"}])], ["spec.writers[0].name", "another component"]),
    ("registry with a scheme", [("spec.registry", "http://10.128.0.5:5000/blackfriday")], ["spec.registry"]),
    ("unmanaged Kafka without a source", [("spec.kafka.managed", False)], ["spec.kafka", "exactly one Kafka source"]),
    ("managed Kafka with a clusterRef", [("spec.kafka.clusterRef", "other")], ["spec.kafka", "exactly one Kafka source"]),
    ("managed Kafka with bootstrapServers", [("spec.kafka.bootstrapServers", "kafka.example.com:9092")], ["spec.kafka", "exactly one Kafka source"]),
    ("clusterRef and bootstrapServers", [("spec.kafka.managed", False), ("spec.kafka.clusterRef", "other"), ("spec.kafka.bootstrapServers", "k:9092")], ["spec.kafka", "exactly one Kafka source"]),
    ("bootstrapServers without a port", [("spec.kafka.managed", False), ("spec.kafka.bootstrapServers", "kafka.example.com")], ["spec.kafka.bootstrapServers"]),
    ("SASL without credentials", [("spec.kafka.managed", False), ("spec.kafka.bootstrapServers", "k:9092"), ("spec.kafka.security", {"protocol": "SASL_PLAINTEXT"})], ["spec.kafka.security.credentialsSecret", "required with a SASL protocol"]),
    ("credentials without SASL", [("spec.kafka.managed", False), ("spec.kafka.bootstrapServers", "k:9092"), ("spec.kafka.security", {"credentialsSecret": "kc"})], ["spec.kafka.security.credentialsSecret", "only used with a SASL protocol"]),
    ("TLS without a CA", [("spec.kafka.managed", False), ("spec.kafka.bootstrapServers", "k:9092"), ("spec.kafka.security", {"protocol": "SSL"})], ["spec.kafka.security.caConfigMap", "required with TLS"]),
    ("a CA without TLS", [("spec.kafka.managed", False), ("spec.kafka.bootstrapServers", "k:9092"), ("spec.kafka.security", {"protocol": "SASL_PLAINTEXT", "credentialsSecret": "kc", "caConfigMap": "ca"})], ["spec.kafka.security.caConfigMap", "only used with TLS"]),
    ("TLS to the Strimzi cluster", [("spec.kafka.security", {"protocol": "SSL", "caConfigMap": "ca"})], ["spec.kafka.security.protocol", "external Kafka"]),
    ("unknown SASL mechanism", [("spec.kafka.managed", False), ("spec.kafka.bootstrapServers", "k:9092"), ("spec.kafka.security", {"protocol": "SASL_SSL", "saslMechanism": "GSSAPI", "credentialsSecret": "kc", "caConfigMap": "ca"})], ["spec.kafka.security.saslMechanism", "Unsupported value"]),
    ("Valkey URL with a password in it", [("spec.valkey.url", "redis://:secret@10.0.0.7:6379")], ["spec.valkey.url"]),
    ("Valkey URL over TLS", [("spec.valkey.url", "rediss://10.0.0.7:6379")], ["spec.valkey.url"]),
    ("Valkey URL with a VM namespace", [("spec.valkey.url", "redis://10.0.0.7:6379"), ("spec.valkey.namespace", "vms")], ["spec.valkey.url", "leave them empty"]),
    ("topic replicas above brokers", [("spec.kafka.topic.replicas", 3)], ["spec.kafka.topic.replicas", "must not exceed kafka.brokers"]),
    ("wait for a replica that does not exist", [("spec.valkey.replicas", 1), ("spec.valkey.waitForReplica", True)], ["spec.valkey.waitForReplica"]),
    ("memory that is not a quantity", [("spec.valkey.memory", "lots")], ["spec.valkey.memory", "positive quantity"]),
    ("three consumers", [("spec.consumer.replicas", 3)], ["spec.consumer.replicas", "less than or equal to 2"]),
    ("more consumers than partitions", [("spec.kafka.topic.partitions", 1), ("spec.consumer.replicas", 2)], ["spec.consumer.replicas", "partitions"]),
    ("requests above limits", [("spec.bridge.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})], ["spec.bridge.resources.requests.cpu", "must not exceed"]),
    ("name starting with a digit", [("metadata.name", "1-black-friday")], ["metadata.name", "DNS-1035"]),
    ("ingress host with an underscore", [("spec.ingress.host", "ventas_bf.example.com")], ["spec.ingress.host"]),
    ("image tag with a bad character", [("spec.version", "0.1.0!")], ["spec.version"]),
    ("no registry", [("spec.registry", _DELETE)], ["spec.registry", "Required value"]),
    ("no writers", [("spec.writers", [])], ["spec.writers", "at least 1"]),
    ("CPU target of zero", [("spec.api.targetCPUUtilizationPercentage", 0)], ["spec.api.targetCPUUtilizationPercentage"]),
    ("unknown log level", [("spec.logLevel", "verbose")], ["spec.logLevel", "Unsupported value"]),
    ("negative writer replicas", [("spec.writers", [{"name": "w", "replicas": -1}])], ["spec.writers[0].replicas"]),
    ("scale-up policy of an unknown type", [("spec.api.behavior", {"scaleUp": {"policies": [{"type": "Cores", "value": 1, "periodSeconds": 15}]}})], ["spec.api.behavior.scaleUp.policies[0].type", "Unsupported value"]),
    ("scale-down window above an hour", [("spec.api.behavior", {"scaleDown": {"stabilizationWindowSeconds": 7200}})], ["spec.api.behavior.scaleDown.stabilizationWindowSeconds"]),
    ("no scale-down policy", [("spec.api.behavior", {"scaleDown": {"policies": []}})], ["spec.api.behavior.scaleDown.policies", "at least 1"]),
    ("catalog without a tag", [("spec.catalog.artifact", "10.128.0.5:5000/blackfriday/catalog")], ["spec.catalog.artifact"]),
]


@pytest.mark.parametrize("what,changes,expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_is_refused_naming_the_field(kube, what, changes, expected):
    sp = copy.deepcopy(sample_pipeline("default", "bf"))
    for path, value in changes:
        _set(sp, path, value)
    with pytest.raises(ApiError) as e:
        kube.create(kube.sp_path("default"), sp, dry_run=True)
    assert e.value.status == 422, e.value
    for text in expected:
        assert text in e.value.message, f"{what}: {text!r} not in {e.value.message!r}"


def test_valid_sample_passes_the_same_checks(kube):
    kube.create(kube.sp_path("default"), sample_pipeline("default", "bf"), dry_run=True)


def test_external_kafka_and_valkey_pass(kube):
    """The sample with a managed Kafka service over SASL_SSL and a managed Valkey: accepted, and
    a single replica Valkey may be waited for (it is not ours to count)."""
    sp = copy.deepcopy(sample_pipeline("default", "bf"))
    sp["spec"]["kafka"].update(managed=False, bootstrapServers="b-1.kafka.example.com:9096,b-2.kafka.example.com:9096",
                               security={"protocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512",
                                         "credentialsSecret": "kafka-credentials", "caConfigMap": "kafka-ca"})
    sp["spec"]["valkey"].update(url="redis://10.20.30.40:6379/0", passwordSecret="memorystore-auth",
                                replicas=1, waitForReplica=True)
    got = kube.create(kube.sp_path("default"), sp, dry_run=True)["spec"]
    assert got["kafka"]["security"]["protocol"] == "SASL_SSL"
    assert got["valkey"]["url"] == "redis://10.20.30.40:6379/0"


@pytest.mark.parametrize("install,bindings,watch", [
    ("", {("RoleBinding", "blackfriday", "salespipeline-operator"),
          ("RoleBinding", "blackfriday-data", "salespipeline-operator"),
          ("ClusterRoleBinding", "", "salespipeline-operator-data-namespace")}, "blackfriday"),
    ("cluster-wide", {("ClusterRoleBinding", "", "salespipeline-operator"),
                      ("ClusterRoleBinding", "", "salespipeline-operator-namespaces")}, "")])
def test_install_manifests_render_and_validate(kube, install, bindings, watch):
    """manifests/ (kustomize: namespaces, ../crds, RBAC, the operator Deployment; one watched
    namespace and its data namespace) and manifests/cluster-wide/ (every namespace) render, bind
    the operator's rules as they say, and the API server accepts every object in a server-side
    dry run."""
    folder = SAMPLE_FILE.parent / install
    docs = [d for d in yaml.safe_load_all(kube.kubectl("kustomize", str(folder)).stdout) if d]
    kinds = [d["kind"] for d in docs]
    for kind in ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Role",
                 "Deployment", "Service"):
        assert kind in kinds, kinds
    bound = {(d["kind"], d["metadata"].get("namespace", ""), d["roleRef"]["name"]) for d in docs
             if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
             and d["roleRef"]["name"] != "salespipeline-operator-leader-election"}
    assert bound == bindings, bound
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WATCH_NAMESPACE"] == watch
    assert CRD_FILE.read_text().split("apiVersion:", 1)[1].split("\n", 1)[0].strip() == "apiextensions.k8s.io/v1"
    # The namespaces must exist for a namespaced dry run; create them for real (harmless).
    for d in docs:
        if d["kind"] == "Namespace":
            kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(d))
    kube.kubectl("apply", "--dry-run=server", "-k", str(folder))
