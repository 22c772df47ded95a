"""The pipeline for real on the local node (`make e2e-k8s`; issue 11): the operator runs in the
cluster from its image, and the sample SalesPipeline's pods, pulled from the local registry,
carry 3,000 sales while a writer and the consumer are killed and writer-b is scaled down and
up again through the SalesPipeline. Every sale that got a 2xx is on the dashboard exactly once.

The setup (local_pipeline.py) is the sample pipeline with tests/e2e/overlay's patch: the local
registry, and the local stack's Kafka and Valkey on the node's bridge address as the
pipeline's external Kafka and Valkey. Sales go to the api's Service (its ClusterIP, through
kube-proxy, from the host) over several kept-alive connections."""
import collections
import json
import re
import threading
import time
import urllib.request

import pytest
import valkey

from harness import end_offsets, stored_offsets, topic_sale_ids, wait_until
from local_pipeline import NAME, NS, OPERATOR_NS, LocalPipeline, SetupError, ready
from sales import Sender

TOTAL = 3000
RATE = 50.0          # sales/s in all: the phases below span about a minute
CONNECTIONS = 8
# When each phase starts, by sales sent.
KILL_AT, SCALE_DOWN_AT, SCALE_UP_AT, ALL_WRITERS_AT = 400, 1000, 1600, 2400


@pytest.fixture(scope="module")
def pipeline(node, tmp_path_factory):
    lp = LocalPipeline(node, tmp_path_factory.mktemp("e2e"))
    try:
        try:
            lp.start()
        except SetupError as e:
            pytest.fail(str(e))
        yield lp
    finally:
        try:
            if lp.storage:
                print(f"\npods' logs: {lp.save_logs()}")
        finally:  # kubectl may fail here (likely when the test did): tear down regardless
            lp.stop()
            print(f"\ne2e timings (s): {json.dumps(lp.timings)}")


def component_pods(lp, component):
    return [p for p in lp.pods(NS, f"app.kubernetes.io/component={component}")]


def ready_count(lp, component):
    return sum(1 for p in component_pods(lp, component) if ready(p))


def writer_requests(pod_ip):
    """The writer pod's OK answers (its /metrics on the admin port, from the host)."""
    with urllib.request.urlopen(f"http://{pod_ip}:9091/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r'^sp_writer_requests_total\{code="OK"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


class Faults:
    """The faults, from a thread of their own as the count of sales sent passes each mark, while
    sales flow; only the last part of the sales waits (`hold`) until writer-b has its two pods
    again, so that the bridge has all three writer pods to spread them over."""

    def __init__(self, lp):
        self.lp = lp
        self.log = []
        self.error = None
        self.writers_back = threading.Event()

    def hold(self, i):
        if i >= ALL_WRITERS_AT and not self.writers_back.wait(180):
            raise TimeoutError("writer-b never came back to two pods")

    def _phase(self, sender, mark, what, fn):
        wait_until(lambda: sender.sent >= mark or not any(t.is_alive() for t in sender.threads), 600,
                   interval=0.05, what=f"{mark} sales sent")
        t0 = time.monotonic()
        fn()
        self.log.append((what, f"{sender.sent} sent", f"at {t0 - sender.start:.1f} s",
                         f"took {time.monotonic() - t0:.1f} s"))

    def run(self, sender):
        lp, k = self.lp, self.lp.node.kubectl
        try:
            self._phase(sender, KILL_AT, "delete a writer-b pod and the consumer pod", lambda: k(
                "delete", "pod", "-n", NS, "--wait=false", component_pods(lp, "writer-b")[0]["metadata"]["name"],
                component_pods(lp, "consumer")[0]["metadata"]["name"]))
            self._phase(sender, SCALE_DOWN_AT, "writer-b to 1 through the SalesPipeline", lambda: (
                lp.scale_writers("writer-b", 1),
                wait_until(lambda: len(component_pods(lp, "writer-b")) == 1, 120, interval=0.5,
                           what="writer-b at one pod")))
            self._phase(sender, SCALE_UP_AT, "writer-b back to 2", lambda: (
                lp.scale_writers("writer-b", 2),
                wait_until(lambda: ready_count(lp, "writer-b") == 2 and ready_count(lp, "consumer") == 1,
                           120, interval=0.5, what="writer-b back at two ready pods")))
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.writers_back.set()

    def start(self, sender):
        self.thread = threading.Thread(target=self.run, args=(sender,), daemon=True)
        self.thread.start()


def test_sales_through_the_pipeline_with_faults_counted_exactly_once(pipeline, node):
    lp = pipeline
    # Every pod of both namespaces runs under the `restricted` Pod Security level.
    for ns in (NS, OPERATOR_NS):
        labels = node.get("namespace", ns)["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", (ns, labels)
    row = node.kubectl("get", "sp", "-n", NS, NAME, "--no-headers").stdout.split()
    assert row[1] == "True", row

    faults = Faults(lp)
    sender = Sender(lp.service_url("api"), TOTAL, connections=CONNECTIONS, rate=RATE, hold=faults.hold)
    t0 = time.monotonic()
    faults.start(sender.start_sending())
    sender.wait(900)
    faults.thread.join(60)
    send_seconds = time.monotonic() - t0
    assert faults.error is None, f"a fault phase failed: {faults.error}"
    statuses = collections.Counter(o.status for o in sender.outcomes)
    failed = sender.failed()
    print(f"\nsent {TOTAL} in {send_seconds:.1f} s: {dict(statuses)}; phases {faults.log}")
    for o in failed[:10]:
        print(f"  failed: {o}")
    assert len(sender.outcomes) == TOTAL
    assert not sender.refused(), sender.refused()[:5]
    ok = sender.ok_ids()
    assert len(ok) == len(set(ok))

    # Kafka holds every 2xx sale once; a sale whose request failed may be there (once) or not.
    def in_kafka():
        ids = topic_sale_ids(lp.storage["KAFKA_BROKERS"], lp.storage["KAFKA_TOPIC"])
        return ids if set(ok) <= set(ids) else None
    ids = wait_until(in_kafka, 120, interval=2, what="every 2xx sale in Kafka")
    assert len(ids) == len(set(ids)), "a sale reached Kafka twice"
    extra = set(ids) - set(ok)
    assert len(extra) <= len(failed), (len(extra), len(failed))

    # The dashboard counts exactly what Kafka holds: every 2xx once, nothing twice.
    # Read once the consumer has applied every record Kafka holds (its offsets in Valkey reach
    # the end of each partition): a late double count would show by then.
    ends = end_offsets(lp.storage["KAFKA_BROKERS"], lp.storage["KAFKA_TOPIC"])
    vk = valkey.from_url(lp.storage["VALKEY_URL"], password=lp.storage["VALKEY_PASSWORD"] or None,
                         decode_responses=True, socket_timeout=10)
    wait_until(lambda: all(stored_offsets(vk, lp.storage["KAFKA_TOPIC"]).get(p, 0) >= end
                           for p, end in ends.items()), 180, interval=1,
               what=f"the consumer to apply every record of {ends}")
    dash = lp.dashboard()
    assert dash["total_sales"] == len(ids) == len(ok) + len(extra), \
        (dash["total_sales"], len(ids), len(ok), len(extra))
    assert sum(dash["reports_by_category"].values()) == len(ids)
    print(f"dashboard {dash['total_sales']} = 2xx {len(ok)} + {len(extra)} of {len(failed)} failed requests")

    # The bridge spread the sales over all three writer pods there are now (the last 600 were
    # sent once writer-b had its second pod again).
    writers = [p for p in lp.pods(NS, "app.kubernetes.io/name=writer") if ready(p)]
    assert len(writers) == 3, [p["metadata"]["name"] for p in writers]
    served = {p["metadata"]["name"]: writer_requests(p["status"]["podIP"]) for p in writers}
    print(f"writer pods' OK answers: {served}")
    assert all(n > 0 for n in served.values()), served

    # The pipeline is Ready again, as `kubectl get sp` shows it, with the api's replicas from its
    # HPA, which reads real metrics (metrics-server): current = the api's pods, desired known.
    wait_until(lambda: not lp.not_ready(), 120, interval=1, what="the pipeline Ready again")

    def columns():
        row = node.kubectl("get", "sp", "-n", NS, NAME, "--no-headers").stdout.split()
        api = (lp.pipeline().get("status") or {}).get("api") or {}
        return row if "cpuUtilization" in api and row[2] == str(ready_count(lp, "api")) and \
            row[3] == str(api.get("desiredReplicas")) else None
    row = wait_until(columns, 120, interval=2, what="kubectl get sp to show the api's replicas from its HPA")
    assert row[0] == NAME and row[1] == "True", row
    print(f"kubectl get sp: {' '.join(row)}")
