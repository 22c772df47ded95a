"""The whole ingest path as real processes: api -> bridge -> writer -> a real Kafka broker, read back
with a real Kafka consumer."""
import collections
import sys
import threading
import time

import requests

from harness import ROOT, wait_until
from ingest_util import SALE, expected_fields, make_sales, post, post_many, timed

# The writer area's helpers (start a writer, read a topic back) are used as they are, not copied.
sys.path.insert(0, str(ROOT / "tests" / "writer"))
from writer_util import headers, read_records, record_count  # noqa: E402

API_TIMEOUT_S = 5.0   # the api's default --timeout-ms


def _decode(pb, record):
    msg = pb.pb2.ProductSaleRequest.FromString(record.value())
    return {"categoria": msg.categoria, "producto_id": msg.producto_id, "precio": msg.precio,
            "cantidad_vendida": msg.cantidad_vendida}


def test_500_sales_reach_the_topic_exactly(kafka, topic, pipeline, pb):
    a, b, w = pipeline(kafka.bootstrap, topic)
    sales = make_sales(500, prefix="chain")
    responses = post_many(a, sales, concurrency=16)
    by_id = {}
    for s, r in zip(sales, responses):
        assert r.status_code == 202, r.text
        by_id[r.json()["id"]] = s
    assert len(by_id) == 500
    assert record_count(kafka.bootstrap, topic) == 500
    records = read_records(kafka.bootstrap, topic, 500)
    seen = set()
    for rec in records:
        sale_id = headers(rec)["sale-id"]
        assert sale_id in by_id and sale_id not in seen, sale_id
        seen.add(sale_id)
        want = expected_fields(by_id[sale_id])
        assert _decode(pb, rec) == want
        assert rec.key().decode() == want["producto_id"]
    assert seen == set(by_id)
    # Every sale went api -> bridge in a batch and bridge -> writer as a ProcesarLote call.
    bm, wm = b.metrics(), w.metrics()
    assert bm["sp_bridge_writer_batch_sales_total"] == 500
    assert wm["sp_writer_batch_sales_total"] == 500
    assert wm["sp_writer_batches_total"] == bm["sp_bridge_writer_batches_total"]
    assert wm['sp_writer_requests_total{code="OK"}'] == 500


def test_kafka_stopped_then_back(own_kafka, pipeline, pb):
    topic = own_kafka.create_topic("chain-outage", partitions=3)
    a, b, w = pipeline(own_kafka.bootstrap, topic, ("--delivery-timeout-ms", "3000"))
    first = post(a, SALE)
    assert first.status_code == 202, first.text
    accepted = {first.json()["id"]}

    own_kafka.stop()
    outcomes = collections.Counter()
    for i in range(6):
        r, took = timed(post, a, dict(SALE, producto_id=f"outage-{i}"), timeout=API_TIMEOUT_S + 10)
        assert r.status_code in (503, 504), r.text
        assert took < API_TIMEOUT_S + 1.5, took
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "1"
        outcomes[r.status_code] += 1

    own_kafka.start()

    def flows():
        r = post(a, dict(SALE, producto_id="after"), timeout=API_TIMEOUT_S + 10)
        assert r.status_code in (202, 503, 504), r.text
        if r.status_code == 202:
            accepted.add(r.json()["id"])
        return r.status_code == 202

    wait_until(flows, 120, interval=0.5, what="sales to flow after Kafka is back")
    for r in post_many(a, make_sales(50, prefix="back"), concurrency=8):
        assert r.status_code == 202, r.text
        accepted.add(r.json()["id"])
    stored = {headers(r)["sale-id"] for r in
              read_records(own_kafka.bootstrap, topic, record_count(own_kafka.bootstrap, topic))}
    assert accepted <= stored, f"{len(accepted - stored)} accepted sales are not in Kafka"


def test_sigterm_to_the_api_under_load_loses_no_accepted_sale(kafka, topic, pipeline):
    a, _, _ = pipeline(kafka.bootstrap, topic)
    accepted, other, lock, stop = [], collections.Counter(), threading.Lock(), threading.Event()

    def load(n):
        session = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = post(a, dict(SALE, producto_id=f"load-{n}-{i}"), session=session, timeout=30)
            except requests.ConnectionError:
                time.sleep(0.01)
                continue
            with lock:
                if r.status_code == 202:
                    accepted.append(r.json()["id"])
                else:
                    other[r.status_code] += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(accepted) >= 300, 120, what="300 sales accepted under load")
        a.proc.send_signal(15)
        assert a.proc.wait(60) == 0, a.logs()[-3000:]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert set(other) <= {503}, other
    ids = [headers(r)["sale-id"] for r in
           read_records(kafka.bootstrap, topic, record_count(kafka.bootstrap, topic))]
    assert len(ids) == len(set(ids)), "a sale was stored twice"
    missing = set(accepted) - set(ids)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted sales are not in Kafka"
