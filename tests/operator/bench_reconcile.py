"""Operator benchmark (a measurement, never an assertion): reconcile of N SalesPipelines.

  .venv/bin/python tests/operator/bench_reconcile.py [N] [WORKERS...]

For each worker count: N sample pipelines are created with no operator running, then the
operator (build/bin/operator, the optimised build) starts cold; the clock runs until every
pipeline has a status for its generation ("all reconciled"), then until the follow-up work
(kube-controller-manager's Deployment status writes, each one a reconcile) dies down ("settled").
Reported: seconds, applies, reconciles, and the operator's RSS (VmRSS, and the peak VmHWM).
The sample owns 5 ClusterIP Services, more than the test cluster's /24 holds for N=100: the bench
adds a ServiceCIDR of its own (BENCH_SERVICE_CIDR), and installs the upstream Strimzi and KubeVirt
CRDs as the tests do (without them every Kafka/VM apply fails and nothing ever reconciles).
It starts its own control plane (scripts/cluster.sh, temporary folder, free ports) unless
SP_TEST_CLUSTER_DIR names one that is up. Results also go to build/bench/operator-<time>.md."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, free_port, http_get, wait_until  # noqa: E402
from kubekit import CLUSTER_SH, CRD_FILE, UPSTREAM_CRDS, Kube, data_namespace, sample_pipeline  # noqa: E402

OPERATOR = ROOT / "build" / "bin" / "operator"
# 4094 more cluster IPs beside scripts/cluster.sh's 10.0.0.0/24 (ServiceCIDR: GA in 1.33).
BENCH_SERVICE_CIDR = "10.96.0.0/20"


def start_cluster():
    reuse = os.environ.get("SP_TEST_CLUSTER_DIR")
    if reuse:
        return Kube(reuse), None
    state = tempfile.mkdtemp(prefix="sp-bench-cluster-")
    env = dict(os.environ, SP_CLUSTER_DIR=state, SP_CLUSTER_PORT=str(free_port()),
               SP_KCM_PORT=str(free_port()), SP_ETCD_PORT=str(free_port()),
               SP_ETCD_PEER_PORT=str(free_port()), SP_CLUSTER_TIMEOUT="240")
    subprocess.run([str(CLUSTER_SH), "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    return Kube(state), env


def rss_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def create_many(kube, ns, names):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: kube.create(kube.sp_path(ns), sample_pipeline(ns, n)), names))


def all_reconciled(kube, ns, names):
    items = {i["metadata"]["name"]: i for i in kube.get(kube.sp_path(ns))["items"]}
    return all(n in items and (items[n].get("status") or {}).get("observedGeneration")
               == items[n]["metadata"]["generation"] for n in names)


def metric(port, name):
    _, text = http_get(f"http://127.0.0.1:{port}/metrics")
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))


def idle(kube, log_dir):
    """RSS of an operator with nothing to do (an empty namespace watched), after start-up."""
    port = free_port()
    with open(Path(log_dir) / "operator-idle.log", "wb") as log:
        proc = subprocess.Popen([str(OPERATOR), "--http-port", str(port), "--namespace", "bench-idle",
                                 "--lease-namespace", "default", "--lease-name", f"idle-{uuid.uuid4().hex[:6]}"],
                                env=dict(os.environ, KUBECONFIG=str(kube.kubeconfig), LOG_LEVEL="warn",
                                         BIND_ADDR="127.0.0.1"), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30, what="idle operator")
            return (f"RSS {rss_kb(proc.pid, 'VmRSS') / 1024:.1f} MB = anon {rss_kb(proc.pid, 'RssAnon') / 1024:.1f}"
                    f" + file {rss_kb(proc.pid, 'RssFile') / 1024:.1f}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def run(kube, n, workers, log_dir):
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    cold = [f"cold-{i:03d}" for i in range(n)]
    create_many(kube, ns, cold)
    port = free_port()
    log = open(Path(log_dir) / f"operator-w{workers}.log", "wb")
    env = dict(os.environ, KUBECONFIG=str(kube.kubeconfig), LOG_LEVEL="warn", BIND_ADDR="127.0.0.1")
    t0 = time.monotonic()
    proc = subprocess.Popen([str(OPERATOR), "--http-port", str(port), "--workers", str(workers),
                             "--namespace", ns, "--lease-namespace", ns], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: all_reconciled(kube, ns, cold), 900, interval=0.5, what="cold reconcile")
        cold_s = time.monotonic() - t0
        cold_rss = rss_kb(proc.pid, "VmRSS")
        applies_cold = metric(port, "sp_operator_applies_total")
        # Then the follow-up work (kube-controller-manager writing Deployment status, each write
        # an event): until the reconcile count stays put for 5 s.
        last, since = -1.0, time.monotonic()
        while time.monotonic() - since < 5:
            now = metric(port, "sp_operator_reconciles_total")
            if now != last:
                last, since = now, time.monotonic()
            time.sleep(0.5)
        settled_s = time.monotonic() - t0 - 5
        return {
            "workers": workers, "cold_s": cold_s, "settled_s": settled_s,
            "applies": metric(port, "sp_operator_applies_total"), "applies_cold": applies_cold,
            "reconciles": metric(port, "sp_operator_reconciles_total"),
            "errors": metric(port, 'sp_operator_reconciles_total{result="error"}'),
            "rss_cold_mb": cold_rss / 1024, "rss_end_mb": rss_kb(proc.pid, "VmRSS") / 1024,
            "hwm_mb": rss_kb(proc.pid, "VmHWM") / 1024,
            "anon_mb": rss_kb(proc.pid, "RssAnon") / 1024, "file_mb": rss_kb(proc.pid, "RssFile") / 1024,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        # The operator is gone: the pipelines' finalizer (their Valkey VMs' namespace) is lifted
        # here, and that namespace deleted with the bench's.
        for sp in kube.get(kube.sp_path(ns))["items"]:
            kube.merge_patch(kube.sp_path(ns, sp["metadata"]["name"]), {"metadata": {"finalizers": None}})
        for name in (ns, data_namespace(ns)):
            kube.delete(f"/api/v1/namespaces/{name}")
        # Gone before the next run: its Services hold cluster IPs (a /24 here).
        for name in (ns, data_namespace(ns)):
            wait_until(lambda: kube.get_or_none(f"/api/v1/namespaces/{name}") is None, 600, interval=1,
                       what=f"namespace {name} to be deleted")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    worker_counts = [int(w) for w in sys.argv[2:]] or [1, 4]
    if not OPERATOR.exists():
        sys.exit(f"{OPERATOR} missing: run make build/bin/operator")
    kube, env = start_cluster()
    log_dir = tempfile.mkdtemp(prefix="sp-bench-logs-")
    try:
        files = [CRD_FILE] + sorted(UPSTREAM_CRDS.glob("*.yaml"))
        kube.kubectl("apply", "--server-side", "--force-conflicts", *sum((["-f", str(f)] for f in files), []))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=120s",
                     "crd/salespipelines.sales.blackfriday.dev", "crd/kafkas.kafka.strimzi.io",
                     "crd/kafkanodepools.kafka.strimzi.io", "crd/kafkatopics.kafka.strimzi.io",
                     "crd/virtualmachines.kubevirt.io")
        kube.apply("/apis/networking.k8s.io/v1/servicecidrs/bench", {
            "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "bench"},
            "spec": {"cidrs": [BENCH_SERVICE_CIDR]}})
        wait_until(lambda: kube.create(kube.sp_path("default"), sample_pipeline("default", "probe"),
                                       dry_run=True), 60, interval=0.5, what="the CRD served")
        idle_rss = idle(kube, log_dir)
        rows = [run(kube, n, w, log_dir) for w in worker_counts]
    finally:
        if env:
            subprocess.run([str(CLUSTER_SH), "down"], env=env, stdout=subprocess.DEVNULL)
    lines = [f"# operator bench: {n} SalesPipelines (the sample spec: workers, Strimzi Kafka, "
             "KubeVirt Valkey, dashboards), "
             f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}", "",
             f"Machine: {os.cpu_count()} cores; etcd, kube-apiserver and kube-controller-manager "
             "(which makes 6 pods per pipeline) on the same cores. RSS file pages are the shared "
             "libraries (libcurl and its TLS/LDAP/Kerberos dependencies, libcrypto): "
             f"idle operator, no pipelines: {idle_rss}.", "",
             "| workers | all reconciled (s) | pipelines/s | settled (s) | applies (at reconciled / settled) "
             "| reconciles (errors) | RSS at reconciled (MB) | RSS settled (MB) | of which anon / file (MB) "
             "| peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['cold_s']:.1f} | {n / r['cold_s']:.1f} | {r['settled_s']:.1f} "
                     f"| {r['applies_cold']:.0f} / {r['applies']:.0f} | {r['reconciles']:.0f} ({r['errors']:.0f}) "
                     f"| {r['rss_cold_mb']:.1f} | {r['rss_end_mb']:.1f} | {r['anon_mb']:.1f} / {r['file_mb']:.1f} "
                     f"| {r['hwm_mb']:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"operator-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.md").write_text(text)
    print(f"operator logs: {log_dir}")


if __name__ == "__main__":
    main()
