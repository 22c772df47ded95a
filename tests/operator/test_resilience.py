"""Leader election and an API server restart under the operator. (The install's RBAC used for
real: test_rbac.py.)"""
import os
import signal
import subprocess
import time
from pathlib import Path

from harness import process_gone, wait_until
from kubekit import lease_holder
from test_reconcile import NAME, all_objects_exist, create_sample, get, reconciled

LEASE_DURATION = 15.0
RETRY_PERIOD = 2.0


def applies(op):
    return op.metrics()["sp_operator_applies_total"]


def test_only_the_lease_holder_writes_and_a_standby_takes_over(kube, ns, operator):
    ops = {i: operator(identity=i) for i in ("op-1", "op-2")}
    lease = operator.lease_name
    holder = wait_until(lambda: lease_holder(kube, "default", lease), 30, what="a leader")
    leader, standby = ops[holder], ops[next(i for i in ops if i != holder)]
    standby_id = next(i for i in ops if i != holder)

    create_sample(kube, ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 60, what="reconcile")
    assert applies(leader) > 0
    assert applies(standby) == 0 and standby.metrics()["sp_operator_leader"] == 0
    assert leader.metrics()["sp_operator_leader"] == 1

    # kill -9: no release. The standby waits for the lease to expire by its own clock.
    leader.kill()
    t0 = time.monotonic()
    wait_until(lambda: lease_holder(kube, "default", lease) == standby_id, LEASE_DURATION + 20,
               interval=0.2, what="the standby to take the lease")
    took = time.monotonic() - t0
    print(f"takeover after kill -9: {took:.1f} s (lease {LEASE_DURATION:.0f} s, retry {RETRY_PERIOD:.0f} s)")
    # Lease duration from the standby's last sight of a renewal, plus its retry period; the rest
    # is slack for a loaded 2-core machine.
    assert took <= LEASE_DURATION + 2 * RETRY_PERIOD + 5, took

    # The new leader acts: a spec change rolls out.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"bridge": {"replicas": 2}}})
    wait_until(lambda: get(kube, "Deployment", ns, "bridge")["spec"]["replicas"] == 2, 60,
               what="the new leader to reconcile")
    assert applies(standby) > 0


def test_sigterm_releases_the_lease_at_once(kube, operator):
    ops = {i: operator(identity=i) for i in ("op-a", "op-b")}
    lease = operator.lease_name
    holder = wait_until(lambda: lease_holder(kube, "default", lease), 30, what="a leader")
    other = next(i for i in ops if i != holder)
    t0 = time.monotonic()
    assert ops[holder].terminate() == 0  # exit 0, and no leak (ASan)
    wait_until(lambda: lease_holder(kube, "default", lease) == other, 10, interval=0.1,
               what="the other replica to take the released lease")
    took = time.monotonic() - t0
    print(f"takeover after SIGTERM: {took:.1f} s")
    assert took < LEASE_DURATION / 2


def _stop_apiserver(kube):
    """Stops kube-apiserver (SIGTERM, then SIGKILL once it stopped listening: its drain of
    watches takes a minute) and returns its command line for the restart."""
    pidfile = kube.state / "run" / "kube-apiserver.pid"
    pid = int(pidfile.read_text())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")

    def refused():
        try:
            kube.session.get(kube.server + "/readyz", timeout=1)
            return False
        except Exception:
            return True
    os.kill(pid, signal.SIGTERM)
    wait_until(refused, 60, what="kube-apiserver to stop listening")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), 30, what="kube-apiserver to exit")
    return argv, pidfile


def test_apiserver_restart_under_the_operator(kube, ns, operator):
    op = operator()
    create_sample(kube, ns)
    wait_until(lambda: all_objects_exist(kube, ns) and reconciled(kube, ns), 60, what="reconcile")
    restarts = sum(v for k, v in op.metrics().items() if k.startswith("sp_operator_watch_restarts_total"))

    argv, pidfile = _stop_apiserver(kube)
    # Down for longer than the renew deadline (10 s): the operator stops leading, and stays up.
    wait_until(lambda: "leader_lost" in [e.get("event") for e in op.log_events()], 60, interval=0.5,
               what="the operator to step down")
    # The same command line again; the pid goes where scripts/cluster.sh looks for it (it has no
    # restart of one component), so that `cluster.sh down` stops this process too.
    with open(kube.state / "logs" / "kube-apiserver.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    pidfile.write_text(str(proc.pid))
    wait_until(lambda: kube.session.get(kube.server + "/readyz", timeout=2).text == "ok", 120,
               interval=0.5, what="kube-apiserver back")
    assert op.proc.poll() is None, "the operator died with the API server"

    # It reconnects, leads again and catches up with changes made after the restart.
    kube.merge_patch(kube.sp_path(ns, NAME), {"spec": {"writers": [
        {"name": "writer-a", "replicas": 1}, {"name": "writer-b", "replicas": 4}]}})
    wait_until(lambda: get(kube, "Deployment", ns, "writer-b")["spec"]["replicas"] == 4, 90,
               interval=0.5, what="the operator to catch up after the restart")
    kube.delete(kube.path("Deployment", ns, f"{NAME}-bridge"))
    wait_until(lambda: get(kube, "Deployment", ns, "bridge"), 60, what="drift undone after the restart")
    after = sum(v for k, v in op.metrics().items() if k.startswith("sp_operator_watch_restarts_total"))
    assert after > restarts
    assert op.metrics()["sp_operator_leader"] == 1
    events = [e.get("event") for e in op.log_events()]
    assert "watch_failed" in events and "leader_elected" in events
