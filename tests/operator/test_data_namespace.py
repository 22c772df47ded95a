"""The Valkey VMs' own namespace (spec.valkey.namespace, default <ns>-data), on a real control
plane: made with the privileged Pod Security level KubeVirt's virt-launcher pods need while the
workers' namespace keeps restricted (the API server's own Pod Security admission decides), an
existing namespace checked and never relabelled, the objects there cleaned up through the
pipeline's finalizer (owner references cannot cross namespaces), and a moved namespace
leaving nothing behind."""
import base64
import json
import uuid

import pytest

from harness import wait_until
from kubekit import ApiError, condition, data_namespace, sample_pipeline

NAME = "black-friday"
DATA_KINDS = ("VirtualMachine", "Service", "Secret", "PersistentVolumeClaim")
FINALIZER = "sales.blackfriday.dev/data-namespace"
PRIVILEGED_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "privileged"},
                  "spec": {"containers": [{"name": "c", "image": "busybox",
                                           "securityContext": {"privileged": True}}]}}


def namespace(kube, name):
    return kube.get_or_none(f"/api/v1/namespaces/{name}")


def create(kube, ns, name=NAME, **valkey):
    sp = sample_pipeline(ns, name)
    sp["spec"]["valkey"].update(valkey)
    return kube.create(kube.sp_path(ns), sp)


def data_objects(kube, where, name, ns):
    """Our objects of pipeline ns/name in namespace `where`."""
    return [(kind, o["metadata"]["name"]) for kind in DATA_KINDS for o in kube.owned(kind, where, name)
            if o["metadata"]["labels"].get("sales.blackfriday.dev/pipeline-namespace") == ns]


def vms(kube, where, name=NAME):
    return {o["metadata"]["name"] for o in kube.owned("VirtualMachine", where, name)}


def consumer_env(kube, ns, name=NAME):
    """The consumer container's environment as the operator rendered it: name -> value."""
    d = kube.get(kube.path("Deployment", ns, f"{name}-consumer"))
    return {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}


def admits(kube, ns, pod):
    """Whether the API server's Pod Security admission lets `pod` into `ns` (a dry run)."""
    try:
        kube.create(kube.path("Pod", ns), pod, dry_run=True)
        return True
    except ApiError as e:
        assert e.status == 403 and "violates PodSecurity" in e.message, e.message
        return False


@pytest.fixture
def other_namespaces(kube):
    """Namespaces a test makes besides `ns` and its default data namespace; deleted at the end."""
    made = []
    yield made
    for name in made:
        kube.delete(f"/api/v1/namespaces/{name}")


def test_vms_get_a_privileged_namespace_and_the_workers_keep_restricted(kube, ns, operator):
    operator()
    create(kube, ns)
    dns = data_namespace(ns)
    wait_until(lambda: len(vms(kube, dns)) == 2, 60, what="the VMs in the data namespace")
    labels = namespace(kube, dns)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["app.kubernetes.io/managed-by"] == "salespipeline-operator"
    assert labels["sales.blackfriday.dev/workers-namespace"] == ns
    assert namespace(kube, ns)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # What KubeVirt will do there, the workers' namespace refuses.
    assert not admits(kube, ns, PRIVILEGED_POD)
    assert admits(kube, dns, PRIVILEGED_POD)
    assert not kube.owned("VirtualMachine", ns, NAME)
    # A hand edit of the level is undone at the next reconcile.
    kube.merge_patch(f"/api/v1/namespaces/{dns}",
                     {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": 2}}})
    wait_until(lambda: namespace(kube, dns)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
               == "privileged", 60, what="the data namespace's level restored")


def test_an_existing_namespace_is_used_only_if_privileged(kube, ns, operator, other_namespaces):
    theirs = f"vms-{uuid.uuid4().hex[:8]}"
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": theirs, "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    other_namespaces.append(theirs)
    operator()
    create(kube, ns, namespace=theirs)

    def refused():
        c = condition(kube.get(kube.sp_path(ns, NAME)), "Ready")
        return c and c["status"] == "False" and theirs in c["message"] and "privileged" in c["message"] and c
    c = wait_until(refused, 60, what="Ready=False naming the namespace and the level it needs")
    assert '"baseline"' in c["message"]
    assert not vms(kube, theirs)
    assert namespace(kube, theirs)["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "baseline", "kubernetes.io/metadata.name": theirs}
    assert namespace(kube, data_namespace(ns)) is None  # the default one is not made either
    # Its owner makes it privileged: the VMs follow (the failed reconcile is retried).
    kube.merge_patch(f"/api/v1/namespaces/{theirs}",
                     {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    wait_until(lambda: len(vms(kube, theirs)) == 2, 120, what="the VMs in the user's namespace")
    assert consumer_env(kube, ns)["VALKEY_URL"] == \
        f"redis://{NAME}-valkey-primary.{theirs}.svc.cluster.local:6379"
    # Deleting the pipeline deletes our objects there, never the namespace itself.
    kube.delete(kube.sp_path(ns, NAME))
    wait_until(lambda: kube.get_or_none(kube.sp_path(ns, NAME)) is None, 60, what="the pipeline to go")
    assert not data_objects(kube, theirs, NAME, ns)
    assert "deletionTimestamp" not in namespace(kube, theirs)["metadata"]


def test_deleting_pipelines_cleans_up_the_data_namespace(kube, ns, operator):
    operator()
    create(kube, ns)
    create(kube, ns, name="cyber-monday")
    dns = data_namespace(ns)
    wait_until(lambda: len(vms(kube, dns)) == 2 and len(vms(kube, dns, "cyber-monday")) == 2, 60,
               what="both pipelines' VMs")
    for name in (NAME, "cyber-monday"):
        assert FINALIZER in kube.get(kube.sp_path(ns, name))["metadata"]["finalizers"]
    # One goes: its objects there go, the namespace stays for the other.
    kube.delete(kube.sp_path(ns, NAME))
    wait_until(lambda: kube.get_or_none(kube.sp_path(ns, NAME)) is None, 60, what="the first pipeline to go")
    assert not data_objects(kube, dns, NAME, ns)
    assert len(data_objects(kube, dns, "cyber-monday", ns)) == 7  # 2 VMs, 2 Services, 2 Secrets, a PVC
    assert "deletionTimestamp" not in namespace(kube, dns)["metadata"]
    # The last one goes: so does the namespace the operator made.
    kube.delete(kube.sp_path(ns, "cyber-monday"))
    wait_until(lambda: kube.get_or_none(kube.sp_path(ns, "cyber-monday")) is None, 60,
               what="the second pipeline to go")
    wait_until(lambda: (n := namespace(kube, dns)) is None or "deletionTimestamp" in n["metadata"], 60,
               what="the data namespace deleted")


def test_moving_the_data_namespace_leaves_nothing_behind(kube, ns, operator, other_namespaces):
    operator()
    create(kube, ns)
    old, new = data_namespace(ns), f"{ns}-vms"
    other_namespaces.append(new)
    wait_until(lambda: len(vms(kube, old)) == 2, 60, what="the VMs in the default data namespace")
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"valkey": {"namespace": new}}})
    wait_until(lambda: len(data_objects(kube, new, NAME, ns)) == 7, 60, what="everything in the new namespace")
    assert namespace(kube, new)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    wait_until(lambda: not data_objects(kube, old, NAME, ns), 60, what="the old namespace emptied")
    wait_until(lambda: (n := namespace(kube, old)) is None or "deletionTimestamp" in n["metadata"], 60,
               what="the old namespace, ours and empty, deleted")
    wait_until(lambda: consumer_env(kube, ns)["VALKEY_URL"] ==
               f"redis://{NAME}-valkey-primary.{new}.svc.cluster.local:6379", 60,
               what="the consumer's VALKEY_URL in the new namespace")
    # The pipeline's own namespace is not a data namespace: refused, named.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"valkey": {"namespace": ns}}})
    wait_until(lambda: (c := condition(kube.get(kube.sp_path(ns, NAME)), "Ready")) and
               c["reason"] == "InvalidSpec" and "spec.valkey.namespace" in c["message"], 60,
               what="InvalidSpec for the pipeline's own namespace")


def test_the_pull_secret_is_copied_next_to_the_vms(kube, ns, operator):
    """KubeVirt pulls the disk image with a Secret of the VM's own namespace: the operator
    keeps a copy of spec.imagePullSecret (zot-pull in the sample) there."""
    operator()
    create(kube, ns)
    dns, copy = data_namespace(ns), f"{NAME}-pull"

    def events(reason):
        return [e for e in kube.get(kube.path("Event", ns))["items"] if e["reason"] == reason]
    missing = wait_until(lambda: events("PullSecretMissing"), 60, what="the missing pull Secret reported")
    assert "zot-pull" in missing[0]["message"]
    vm = wait_until(lambda: kube.get_or_none(kube.path("VirtualMachine", dns, f"{NAME}-valkey-primary")),
                    60, what="the primary VM")
    assert vm["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]["imagePullSecret"] == copy

    def docker_config(user):
        auth = base64.b64encode(f"{user}:pw".encode()).decode()
        return base64.b64encode(json.dumps({"auths": {"10.128.0.5:5000": {"auth": auth}}}).encode()).decode()
    kube.create(kube.path("Secret", ns), {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "zot-pull"},
                                          "type": "kubernetes.io/dockerconfigjson",
                                          "data": {".dockerconfigjson": docker_config("one")}})
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": 2}}})
    # The user's Secret is read only once its owner opts in (the operator reads no Secret it did
    # not make otherwise): until then a Warning says how, and there is no copy.
    refused = wait_until(lambda: events("PullSecretNotReadable"), 60, what="the opt-in asked for")
    assert "sales.blackfriday.dev/operator-may-read=true" in refused[0]["message"]
    assert not kube.get_or_none(kube.path("Secret", dns, copy))
    kube.merge_patch(kube.path("Secret", ns, "zot-pull"), {"metadata": {"annotations": {
        "sales.blackfriday.dev/operator-may-read": "true"}}})
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": 3}}})
    got = wait_until(lambda: kube.get_or_none(kube.path("Secret", dns, copy)), 60, what="the copy")
    assert got["type"] == "kubernetes.io/dockerconfigjson"
    assert got["data"] == {".dockerconfigjson": docker_config("one")}
    assert got["metadata"]["labels"]["sales.blackfriday.dev/pipeline-namespace"] == ns
    # A new credential reaches the copy at the next reconcile.
    kube.merge_patch(kube.path("Secret", ns, "zot-pull"), {"data": {".dockerconfigjson": docker_config("two")}})
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": 1}}})
    wait_until(lambda: kube.get(kube.path("Secret", dns, copy))["data"][".dockerconfigjson"] ==
               docker_config("two"), 60, what="the copy to follow")
