"""Fixtures for the operator's tests: a real control plane (scripts/cluster.sh: etcd,
kube-apiserver, kube-controller-manager) started once per run on free ports in a temporary
state folder, the SalesPipeline CRD installed into it, a fresh namespace per test, and
operator processes (the sanitizer build) started against it.

Set SP_TEST_CLUSTER_DIR to the state folder of a cluster that is already up
(`SP_CLUSTER_DIR=... scripts/cluster.sh up`) to reuse it instead: faster when iterating."""
import os
import subprocess
import uuid

import pytest

from harness import free_port, wait_until
from kubekit import CLUSTER_SH, CRD_FILE, UPSTREAM_CRDS, Kube, data_namespace, sample_pipeline


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The control plane: reused from SP_TEST_CLUSTER_DIR, else started here and stopped at the end."""
    reuse = os.environ.get("SP_TEST_CLUSTER_DIR")
    if reuse:
        yield Kube(reuse)
        return
    state = tmp_path_factory.mktemp("cluster")
    env = dict(os.environ, SP_CLUSTER_DIR=str(state), SP_CLUSTER_PORT=str(free_port()),
               SP_KCM_PORT=str(free_port()), SP_ETCD_PORT=str(free_port()),
               SP_ETCD_PEER_PORT=str(free_port()), SP_CLUSTER_TIMEOUT="240")
    up = subprocess.run([str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True, timeout=3600)
    if up.returncode != 0:
        subprocess.run([str(CLUSTER_SH), "down"], env=env, capture_output=True)
        pytest.fail(f"scripts/cluster.sh up failed:\n{up.stderr[-4000:]}")
    try:
        yield Kube(state)
    finally:
        subprocess.run([str(CLUSTER_SH), "down"], env=env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def kube(cluster):
    """The cluster with the SalesPipeline CRD installed and served, and the upstream Strimzi and
    KubeVirt CRDs (upstream-crds/), so that the server validates what the operator writes."""
    files = [str(CRD_FILE)] + [str(f) for f in sorted(UPSTREAM_CRDS.glob("*.yaml"))]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *sum((["-f", f] for f in files), []))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=120s",
                    "crd/salespipelines.sales.blackfriday.dev", "crd/kafkas.kafka.strimzi.io",
                    "crd/kafkanodepools.kafka.strimzi.io", "crd/kafkatopics.kafka.strimzi.io",
                    "crd/virtualmachines.kubevirt.io")
    # Discovery and the CEL compiler can lag behind Established: wait until a dry run passes.
    probe = sample_pipeline("default", "probe")
    wait_until(lambda: cluster.create(cluster.sp_path("default"), probe, dry_run=True), 60,
               interval=0.5, what="SalesPipelines to be served")
    return cluster


@pytest.fixture
def ns(kube):
    """A fresh namespace per test; deleted afterwards (the namespace controller empties it)."""
    name = f"sp-{uuid.uuid4().hex[:10]}"
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name, "labels": {
                                           "pod-security.kubernetes.io/enforce": "restricted"}}})
    wait_until(lambda: kube.get_or_none(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 60,
               interval=0.2, what="the namespace's default ServiceAccount")
    yield name
    # The test's operator has stopped by now: nobody will honour the pipelines' finalizer
    # (data_namespace.h), so the test removes it and the data namespace itself.
    for sp in kube.get(kube.sp_path(name))["items"]:
        path = kube.sp_path(name, sp["metadata"]["name"])
        if sp["metadata"].get("finalizers"):
            kube.merge_patch(path, {"metadata": {"finalizers": None}})
        kube.delete(path)
    kube.delete(f"/api/v1/namespaces/{name}")
    kube.delete(f"/api/v1/namespaces/{data_namespace(name)}")


@pytest.fixture
def operator(kube, workers, tmp_path):
    """Starts operator processes against the cluster; each gets its own admin port. The
    processes of one test share a Lease of their own (start.lease_name in "default")."""
    lease_name = f"op-{uuid.uuid4().hex[:10]}"

    def start(*args, lease_ns="default", identity=None, env=None, kubeconfig=None, ready=True):
        port = free_port()
        w = workers("operator", args=["--http-port", str(port), "--lease-namespace", lease_ns,
                                      "--lease-name", lease_name,
                                      *(["--leader-elect-id", identity] if identity else []), *args],
                    env={"KUBECONFIG": str(kubeconfig or kube.kubeconfig), "HOME": str(tmp_path),
                         **(env or {})},
                    http_port=port)
        return w.wait_ready(60) if ready else w
    start.lease_name = lease_name
    return start

