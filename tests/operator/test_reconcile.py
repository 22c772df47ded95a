"""The operator against a real control plane: objects, rollouts, drift, garbage collection,
status. Each test starts its own operator (sanitizer build), watching all namespaces."""
import socket
import subprocess
import time

import pytest

from harness import BIN_DIR, http_get, wait_until
from kubekit import condition, data_namespace, infra_ready, sample_pipeline

NAME = "black-friday"
DEPLOYMENTS = ["api", "bridge", "writer-a", "writer-b", "consumer"]
SERVICES = ["api", "bridge", "writer-a-headless", "writer-b-headless", "consumer"]
EXPECTED = {"Deployment": DEPLOYMENTS, "Service": SERVICES,
            "HorizontalPodAutoscaler": ["api"], "Ingress": ["api"]}
# Pods the sample asks for: api 1 (HPA minimum), bridge 1, writer-a 1, writer-b 2, consumer 1.
SAMPLE_PODS = 6


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def get(kube, kind, ns, suffix, name=NAME):
    return kube.get_or_none(kube.path(kind, ns, f"{name}-{suffix}"))


def all_objects_exist(kube, ns, name=NAME):
    return all(get(kube, kind, ns, s, name) for kind, suffixes in EXPECTED.items() for s in suffixes)


def reconciled(kube, ns, name=NAME):
    """The SalesPipeline once the operator wrote a status for its current generation."""
    sp = kube.get(kube.sp_path(ns, name))
    st = sp.get("status") or {}
    return sp if st.get("observedGeneration") == sp["metadata"]["generation"] else None


def create_sample(kube, ns, name=NAME):
    return kube.create(kube.sp_path(ns), sample_pipeline(ns, name))


def container(deploy):
    return deploy["spec"]["template"]["spec"]["containers"][0]


def env(kube, ns, deployment):
    """A worker container's environment as name -> value (secret references as their dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in container(get(kube, "Deployment", ns, deployment)).get("env", [])}


def events(kube, ns, reason=None):
    items = kube.get(kube.path("Event", ns))["items"]
    return [e for e in items if e["involvedObject"]["kind"] == "SalesPipeline"
            and (reason is None or e["reason"] == reason)]


def test_operator_help_and_endpoints(operator):
    out = subprocess.run([str(BIN_DIR / "operator"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--kubeconfig", "--leader-elect", "--lease-namespace", "--http-port", "--namespace"):
        assert flag in out.stdout
    op = operator()
    assert http_get(op.url("/healthz"))[0] == 200
    # Ready once the informers listed; "leading" once it took the Lease (a moment later).
    wait_until(lambda: "leading" in http_get(op.url("/readyz"))[1], 30, what="/readyz to say leading")
    m = op.metrics()
    for series in ('sp_operator_reconciles_total{result="success"}', "sp_operator_queue_depth",
                   'sp_operator_watch_restarts_total{kind="deployments"}', "sp_operator_leader",
                   "sp_operator_reconcile_duration_seconds_count"):
        assert series in m, series


def test_nothing_but_kubeconfig_just_works(kube, ns, workers, tmp_path):
    """No flags at all: admin port 8090, all namespaces, Lease default/salespipeline-operator."""
    if not port_free(8090):
        pytest.skip("port 8090 (the default admin port) is taken on this machine")
    op = workers("operator", env={"KUBECONFIG": str(kube.kubeconfig), "HOME": str(tmp_path)},
                 http_port=8090).wait_ready(60)
    create_sample(kube, ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 60, what="reconcile")
    assert op.metrics()["sp_operator_leader"] == 1


def test_sample_becomes_every_object_with_the_right_fields(kube, ns, operator):
    op = operator()
    uid = create_sample(kube, ns)["metadata"]["uid"]
    wait_until(lambda: all_objects_exist(kube, ns), 60, interval=0.2, what="every owned object")

    for kind, suffixes in EXPECTED.items():
        for s in suffixes:
            obj = get(kube, kind, ns, s)
            refs = obj["metadata"]["ownerReferences"]
            assert refs == [{"apiVersion": "sales.blackfriday.dev/v1alpha1", "kind": "SalesPipeline",
                             "name": NAME, "uid": uid, "controller": True, "blockOwnerDeletion": True}]
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "salespipeline-operator"
            assert labels["app.kubernetes.io/instance"] == NAME
            assert labels["app.kubernetes.io/part-of"] == "salespipeline"

    replicas = {d: get(kube, "Deployment", ns, d)["spec"]["replicas"] for d in DEPLOYMENTS}
    assert replicas == {"api": 1, "bridge": 1, "writer-a": 1, "writer-b": 2, "consumer": 1}

    hpa = get(kube, "HorizontalPodAutoscaler", ns, "api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 30}
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{NAME}-api"}

    for w in ("writer-a", "writer-b"):
        svc = get(kube, "Service", ns, f"{w}-headless")["spec"]
        assert svc["clusterIP"] == "None"
        assert svc["ports"][0]["port"] == 50051
        assert svc["selector"]["app.kubernetes.io/component"] == w
    assert get(kube, "Service", ns, "api")["spec"]["clusterIP"] != "None"

    api = container(get(kube, "Deployment", ns, "api"))
    assert api["image"] == "10.128.0.5:5000/blackfriday/api:0.1.0"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": "500m", "memory": "128Mi"}}
    writer = container(get(kube, "Deployment", ns, "writer-b"))
    assert writer["readinessProbe"]["grpc"]["port"] == 50051
    for d in DEPLOYMENTS:
        pod = get(kube, "Deployment", ns, d)["spec"]["template"]["spec"]
        sc = pod["containers"][0]["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["imagePullSecrets"] == [{"name": "zot-pull"}]

    ing = get(kube, "Ingress", ns, "api")["spec"]
    assert ing["ingressClassName"] == "nginx"
    assert ing["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == f"{NAME}-api"
    # Each worker gets only what it reads (common/contract.h), with nested deadlines.
    assert env(kube, ns, "bridge")["WRITER_TARGET"] == ";".join(
        f"dns:///{NAME}-{w}-headless.{ns}.svc.cluster.local:50051" for w in ("writer-a", "writer-b"))
    assert env(kube, ns, "writer-a")["KAFKA_BROKERS"] == f"{NAME}-kafka-bootstrap.{ns}.svc:9092"
    assert "KAFKA_BROKERS" not in env(kube, ns, "api") and "CATEGORY" not in env(kube, ns, "api")
    deadlines = [int(env(kube, ns, "api")["DOWNSTREAM_TIMEOUT_MS"]),
                 int(env(kube, ns, "bridge")["DOWNSTREAM_TIMEOUT_MS"]),
                 int(env(kube, ns, "writer-b")["DELIVERY_TIMEOUT_MS"])]
    assert deadlines == [5000, 3500, 2000]
    assert not get(kube, "ConfigMap", ns, "config")  # no shared all-settings ConfigMap

    sp = wait_until(lambda: reconciled(kube, ns), 60, what="status")
    assert condition(sp, "Ready")["status"] == "False"  # no kubelet: pods stay Pending
    assert sp["status"]["category"] == "Belleza"
    assert len(wait_until(lambda: len(events(kube, ns, "Created")) >= 13 and events(kube, ns, "Created"),
                          30, what="Created events")) >= 13
    # The namespace enforces the "restricted" Pod Security Standard: the ReplicaSet controller
    # can only create the pods if the pod templates comply.
    pods = wait_until(lambda: len(kube.get(kube.path("Pod", ns))["items"]) == SAMPLE_PODS and
                      kube.get(kube.path("Pod", ns))["items"], 90, interval=0.5, what="the pods")
    assert len(pods) == SAMPLE_PODS
    assert op.metrics()['sp_operator_reconciles_total{result="error"}'] == 0


def test_spec_change_rolls_out(kube, ns, operator):
    op = operator()
    create_sample(kube, ns)
    wait_until(lambda: reconciled(kube, ns), 60, what="first reconcile")
    # A pass that changes nothing says nothing: another manager's annotation on an owned object
    # brings one, and no Updated event follows it.
    passes = op.metrics()['sp_operator_reconciles_total{result="success"}']
    kube.merge_patch(kube.path("Deployment", ns, f"{NAME}-bridge"),
                     {"metadata": {"annotations": {"example.com/poke": "1"}}})
    wait_until(lambda: op.metrics()['sp_operator_reconciles_total{result="success"}'] > passes, 30,
               what="a pass after the poke")
    assert not events(kube, ns, "Updated")
    sp = kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {
        "version": "0.2.0",
        "writers": [{"name": "writer-a", "replicas": 1}, {"name": "writer-b", "replicas": 3}]}})
    gen = sp["metadata"]["generation"]
    wait_until(lambda: get(kube, "Deployment", ns, "writer-b")["spec"]["replicas"] == 3, 60,
               what="writer-b at 3 replicas")
    wait_until(lambda: all(container(get(kube, "Deployment", ns, d))["image"].endswith(":0.2.0")
                           for d in DEPLOYMENTS), 60, what="the new image tag everywhere")
    sp = wait_until(lambda: reconciled(kube, ns), 60, what="status of the new generation")
    assert sp["status"]["observedGeneration"] == gen
    assert wait_until(lambda: events(kube, ns, "Updated"), 30, what="Updated events")

    # A writer group removed from the spec: its Deployment and Service go too, and the bridge's
    # target follows (its pod template changes: a rolling restart).
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"writers": [{"name": "writer-b", "replicas": 3}]}})
    wait_until(lambda: not get(kube, "Deployment", ns, "writer-a") and
               not get(kube, "Service", ns, "writer-a-headless"), 60, what="writer-a removed")
    wait_until(lambda: env(kube, ns, "bridge")["WRITER_TARGET"] ==
               f"dns:///{NAME}-writer-b-headless.{ns}.svc.cluster.local:50051", 30,
               what="the bridge's WRITER_TARGET without writer-a")
    # The api's deadline changes the bridge's and the writers' with it.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"api": {"downstreamTimeoutMs": 10000}}})
    wait_until(lambda: env(kube, ns, "writer-b")["DELIVERY_TIMEOUT_MS"] == "6400" and
               env(kube, ns, "bridge")["DOWNSTREAM_TIMEOUT_MS"] == "8000", 30,
               what="deadlines derived from the new api deadline")
    assert wait_until(lambda: events(kube, ns, "Deleted"), 30, what="Deleted events")


def test_drift_is_undone(kube, ns, operator):
    operator()
    create_sample(kube, ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 60, what="reconcile")

    old_uid = get(kube, "Deployment", ns, "bridge")["metadata"]["uid"]
    kube.delete(kube.path("Deployment", ns, f"{NAME}-bridge"))
    wait_until(lambda: (d := get(kube, "Deployment", ns, "bridge")) and d["metadata"]["uid"] != old_uid,
               60, what="the deleted Deployment to come back")

    kube.kubectl("scale", "deployment", f"{NAME}-writer-b", "--replicas=5", "-n", ns)
    wait_until(lambda: get(kube, "Deployment", ns, "writer-b")["spec"]["replicas"] == 2, 60,
               what="writer-b scaled back to 2")

    kube.kubectl("set", "image", f"deployment/{NAME}-consumer", "consumer=evil/consumer:latest", "-n", ns)
    wait_until(lambda: container(get(kube, "Deployment", ns, "consumer"))["image"]
               == "10.128.0.5:5000/blackfriday/consumer:0.1.0", 60, what="the consumer image restored")

    svc = get(kube, "Service", ns, "api")
    svc["spec"]["ports"][0]["targetPort"] = 9999
    kube.request("PUT", kube.path("Service", ns, f"{NAME}-api"), svc)
    wait_until(lambda: get(kube, "Service", ns, "api")["spec"]["ports"][0]["targetPort"] == "http", 60,
               what="the api Service's targetPort restored")

    for kind, suffix in (("HorizontalPodAutoscaler", "api"), ("Ingress", "api"),
                         ("Service", "writer-a-headless")):
        kube.delete(kube.path(kind, ns, f"{NAME}-{suffix}"))
        wait_until(lambda: get(kube, kind, ns, suffix), 60, what=f"{kind} {suffix} to come back")


def test_deleting_the_pipeline_leaves_no_orphans(kube, ns, operator):
    operator()
    create_sample(kube, ns)
    wait_until(lambda: all_objects_exist(kube, ns), 60, what="every owned object")
    kube.delete(kube.sp_path(ns, NAME))

    def gone():
        return all(not kube.owned(kind, ns, NAME) for kind in EXPECTED) and \
            not kube.get(kube.path("Pod", ns))["items"]
    # kube-controller-manager's garbage collector follows the owner references; the operator's
    # finalizer cleans up the Valkey VMs' namespace, which no owner reference reaches.
    wait_until(gone, 120, interval=0.5, what="the garbage collector to remove every owned object")
    assert kube.get_or_none(kube.sp_path(ns, NAME)) is None
    data = kube.get_or_none(f"/api/v1/namespaces/{data_namespace(ns)}")
    assert data is None or "deletionTimestamp" in data["metadata"]


def make_pods_ready(kube, ns):
    """Plays the kubelet: marks every pod Running and Ready (no kubelet runs here)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for pod in kube.get(kube.path("Pod", ns))["items"]:
        if pod["metadata"].get("deletionTimestamp") or condition(pod, "Ready") and \
                condition(pod, "Ready")["status"] == "True":
            continue
        conds = [{"type": t, "status": "True", "lastTransitionTime": now}
                 for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        kube.merge_patch(kube.path("Pod", ns, pod["metadata"]["name"]) + "/status",
                         {"status": {"phase": "Running", "conditions": conds, "startTime": now}})


def test_hpa_behavior_and_its_status_in_the_pipeline(kube, ns, operator):
    """spec.api.behavior reaches the HPA whole; the HPA controller's status (replicas, here
    without metrics: no metrics-server in this cluster) comes back as status.api and in the
    `kubectl get sp` columns. A changed target or window reaches the HPA."""
    operator()
    sp = sample_pipeline(ns, NAME)
    sp["spec"]["api"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 30,
                                                   "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}}
    kube.create(kube.sp_path(ns), sp)
    hpa = wait_until(lambda: kube.get_or_none(kube.path("HorizontalPodAutoscaler", ns, f"{NAME}-api")), 60,
                     what="the HPA")
    assert hpa["spec"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 30, "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}
    assert hpa["spec"]["behavior"]["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15}, {"type": "Pods", "value": 4, "periodSeconds": 15}]
    make_pods_ready(kube, ns)
    got = wait_until(lambda: (st := kube.get(kube.sp_path(ns, NAME)).get("status", {}).get("api")) and st,
                     120, interval=0.5, what="status.api from the HPA controller")
    # No metrics API here: the HPA has no recommendation (desiredReplicas 0), so none is shown.
    assert got["currentReplicas"] == 1 and "desiredReplicas" not in got, got
    assert got["cpu"] == "<unknown>/30%", got
    # What `kubectl get sp` prints: the server's Table of the printer columns.
    table = kube.session.get(kube.server + kube.sp_path(ns, NAME), timeout=30, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    row = dict(zip((c["name"] for c in table["columnDefinitions"]), table["rows"][0]["cells"]))
    assert row["API-Replicas"] == 1 and row["API-Desired"] is None and row["API-CPU"] == "<unknown>/30%", row

    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"api": {
        "targetCPUUtilizationPercentage": 50, "behavior": {"scaleUp": {"stabilizationWindowSeconds": 10}}}}})
    wait_until(lambda: (h := kube.get(kube.path("HorizontalPodAutoscaler", ns, f"{NAME}-api")))["spec"]["metrics"][0]
               ["resource"]["target"]["averageUtilization"] == 50 and
               h["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 10, 60, what="the new target")
    wait_until(lambda: kube.get(kube.sp_path(ns, NAME))["status"]["api"]["cpu"] == "<unknown>/50%", 60,
               what="status.api.cpu to name the new target")


def test_status_follows_the_deployments(kube, ns, operator):
    operator()
    create_sample(kube, ns)
    sp = wait_until(lambda: reconciled(kube, ns), 60, what="first status")
    assert sp["status"]["observedGeneration"] == 1
    assert condition(sp, "Ready")["reason"] == "ComponentsNotReady"
    assert condition(sp, "Progressing")["status"] == "True"
    assert condition(sp, "Degraded")["status"] == "False"
    degraded_since = condition(sp, "Degraded")["lastTransitionTime"]
    assert {c["name"]: c["ready"] for c in sp["status"]["components"]} == {d: False for d in DEPLOYMENTS}

    def ready():
        make_pods_ready(kube, ns)
        infra_ready(kube, ns, NAME)  # Strimzi's and KubeVirt's part (test_infra.py tests it)
        sp = kube.get(kube.sp_path(ns, NAME))
        return sp if (condition(sp, "Ready") or {}).get("status") == "True" else None
    # Pods ready -> ReplicaSets -> Deployments' status (kube-controller-manager) -> our status.
    sp = wait_until(ready, 120, interval=0.5, what="Ready=True once every pod is ready")
    assert condition(sp, "Ready")["reason"] == "AllComponentsReady"
    assert condition(sp, "Progressing")["status"] == "False"
    assert condition(sp, "Progressing")["reason"] == "Complete"
    assert all(c["ready"] for c in sp["status"]["components"])
    writer_b = next(c for c in sp["status"]["components"] if c["name"] == "writer-b")
    assert (writer_b["replicas"], writer_b["readyReplicas"]) == (2, 2)

    # The ingress controller's part: an address in the Ingress status reaches ours.
    kube.merge_patch(kube.path("Ingress", ns, f"{NAME}-api") + "/status",
                     {"status": {"loadBalancer": {"ingress": [{"ip": "34.120.1.2"}]}}})
    sp = wait_until(lambda: (s := kube.get(kube.sp_path(ns, NAME)))["status"].get("ingressAddress") and s,
                    60, what="the ingress address in the status")
    assert sp["status"]["apiURL"] == "http://34.120.1.2/ventas"
    out = kube.kubectl("get", "sp", NAME, "-n", ns).stdout.splitlines()
    assert out[1].split()[1:3] == ["True", "http://34.120.1.2/ventas"], out

    # A spec change: the new generation is observed at once, Ready drops until the new pod is ready.
    gen = kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"writers": [
        {"name": "writer-a", "replicas": 1}, {"name": "writer-b", "replicas": 3}]}})["metadata"]["generation"]
    sp = wait_until(lambda: (s := reconciled(kube, ns)) and s["status"]["observedGeneration"] == gen and s,
                    60, what="the new generation observed")
    if condition(sp, "Ready")["status"] == "False":
        assert "writer-b" in condition(sp, "Ready")["message"]
        assert condition(sp, "Progressing")["reason"] == "RollingOut"
    sp = wait_until(ready, 120, interval=0.5, what="Ready again after the rollout")
    writer_b = next(c for c in sp["status"]["components"] if c["name"] == "writer-b")
    assert (writer_b["replicas"], writer_b["readyReplicas"]) == (3, 3)
    assert condition(sp, "Degraded")["lastTransitionTime"] == degraded_since  # never changed status


def test_unmergeable_drift_is_reported_then_repaired(kube, ns, operator):
    """A hand edit that server-side apply cannot undo (a Service port number is the key of its
    list entry, so ours is added beside the user's and the names clash) shows as Degraded with
    the server's message and a Warning Event; deleting the object lets the operator recreate it."""
    operator()
    create_sample(kube, ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 60, what="reconcile")
    svc = get(kube, "Service", ns, "api")
    svc["spec"]["ports"][0]["port"] = 9999
    kube.request("PUT", kube.path("Service", ns, f"{NAME}-api"), svc)

    def degraded():
        sp = kube.get(kube.sp_path(ns, NAME))
        c = condition(sp, "Degraded")
        return sp if c and c["status"] == "True" else None
    sp = wait_until(degraded, 60, what="Degraded=True")
    assert condition(sp, "Degraded")["reason"] == "ReconcileFailed"
    assert "black-friday-api" in condition(sp, "Degraded")["message"]
    assert condition(sp, "Ready")["reason"] == "ReconcileFailed"
    warnings = wait_until(lambda: [e for e in events(kube, ns, "ReconcileFailed") if e["type"] == "Warning"],
                          30, what="a Warning Event")
    assert "Duplicate value" in warnings[0]["message"]

    kube.delete(kube.path("Service", ns, f"{NAME}-api"))
    wait_until(lambda: (s := get(kube, "Service", ns, "api")) and s["spec"]["ports"][0]["port"] == 8080,
               60, what="the Service recreated")
    wait_until(lambda: condition(kube.get(kube.sp_path(ns, NAME)), "Degraded")["status"] == "False", 60,
               what="Degraded=False again")
