"""The bridge against STOCK grpcio servers: what the server receives, how each gRPC status comes back
as HTTP, deadlines, round robin over writers, readiness."""
import json
import re
import subprocess

import grpc
import pytest
import requests

from harness import BIN_DIR, free_port, http_get, wait_until
from ingest_util import (SALE, all_stored, expected_fields, make_sales, post, post_many,
                         received_fields, timed)


def test_server_receives_exactly_the_sales_with_their_ids(stock, bridge):
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    sales = make_sales(60)
    ids = [f"sale-{i:04d}" for i in range(len(sales))]
    responses = [post(b, s, headers={"X-Sale-Id": i}) for s, i in zip(sales, ids)]
    for s, r in zip(sales, responses):
        assert r.status_code == 202, r.text
        assert r.json() == {"estado": f"guardada {s['producto_id']}"}
    got = sorted((c["sale_id"], tuple(sorted(received_fields(c).items())))
                 for c in server.received())
    want = sorted((i, tuple(sorted(expected_fields(s).items()))) for s, i in zip(sales, ids))
    assert got == want


def batch_post(b, items, stubs, content_type="application/x-protobuf"):
    """POST /ventas/lote: items are (sale_id, sale dict or raw bytes)."""
    batch = stubs.intake.SaleBatch()
    for sale_id, sale in items:
        raw = sale if isinstance(sale, bytes) else stubs.pb.ProductSaleRequest(
            categoria=sale["categoria"], producto_id=sale["producto_id"], precio=sale["precio"],
            cantidad_vendida=sale["cantidad_vendida"]).SerializeToString()
        batch.items.add(sale_id=sale_id, sale=raw)
    return requests.post(b.url("/ventas/lote"), data=batch.SerializeToString(),
                         headers={"Content-Type": content_type}, timeout=30)


def test_batch_answers_each_sale_on_its_own(stock, bridge, stubs):
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    good = [dict(SALE, categoria=1 + i % 4, producto_id=f"p-{i}") for i in range(5)]
    items = [(f"id-{i}", s) for i, s in enumerate(good)]
    items.insert(2, ("id-bad-price", dict(SALE, precio=-1.0)))
    items.insert(4, ("has space", SALE))
    items.insert(5, ("id-junk", b"\xff\xff\xff"))
    items.append(("", dict(SALE, producto_id="no-id")))
    r = batch_post(b, items, stubs)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/x-protobuf"
    results = stubs.intake.SaleBatchReply.FromString(r.content).results
    assert [x.status for x in results] == [202, 202, 400, 202, 400, 400, 202, 202, 202]
    assert json.loads(results[2].body)["field"] == "precio"
    assert json.loads(results[4].body)["field"] == "sale_id"
    assert json.loads(results[0].body) == {"estado": "guardada p-0"}
    got = {c["sale_id"]: received_fields(c)["producto_id"] for c in server.received()}
    assert {k: v for k, v in got.items() if k.startswith("id-")} == \
        {f"id-{i}": f"p-{i}" for i in range(5)}
    assert len(got) == 6 and re.fullmatch(r"[0-9a-f]{32}", next(k for k, v in got.items() if v == "no-id"))
    # Counted per sale, by status.
    metrics = http_get(b.url("/metrics"))[1]
    assert re.search(r'sp_http_requests_total\{code="202"\} 6\b', metrics), metrics


def test_batch_refusals(stock, bridge, stubs):
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    assert batch_post(b, [("a", SALE)], stubs, content_type="application/json").status_code == 415
    r = requests.post(b.url("/ventas/lote"), data=b"\xff\x00garbage",
                      headers={"Content-Type": "application/x-protobuf"}, timeout=30)
    assert r.status_code == 400 and "SaleBatch" in r.json()["error"]
    assert batch_post(b, [], stubs).status_code == 400
    assert batch_post(b, [(f"i{n}", SALE) for n in range(61)], stubs).status_code == 400
    assert server.received() == []


def test_sale_id_is_created_when_missing(stock, bridge):
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    assert post(b, SALE).status_code == 202
    [call] = server.received()
    assert re.fullmatch(r"[0-9a-f]{32}", call["sale_id"])


@pytest.mark.parametrize("bad_id", ["has space", "x" * 65, "semi;colon", ""])
def test_bad_sale_id_is_refused(stock, bridge, bad_id):
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    r = post(b, SALE, headers={"X-Sale-Id": bad_id})
    if bad_id == "":
        # An empty X-Sale-Id counts as none: a fresh id is made.
        assert r.status_code == 202, r.text
        assert re.fullmatch(r"[0-9a-f]{32}", server.received()[0]["sale_id"])
        return
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "X-Sale-Id"
    assert server.received() == []
    assert post(b, SALE, headers={"X-Sale-Id": "good-1"}).status_code == 202


@pytest.mark.parametrize("mode,status", [
    ("INVALID_ARGUMENT", 400), ("RESOURCE_EXHAUSTED", 503), ("UNAVAILABLE", 503),
    ("INTERNAL", 502), ("UNIMPLEMENTED", 502), ("FAILED_PRECONDITION", 502),
])
def test_grpc_status_maps_to_http(stock, bridge, mode, status):
    server = stock(mode)
    b = bridge(f"ipv4:{server.address}")
    r = post(b, SALE, headers={"X-Sale-Id": "s-1"})
    assert r.status_code == status, r.text
    body = r.json()
    assert "error" in body
    if status == 400:
        assert body["field"] == "precio"       # named in the stock server's message
        assert "precio must be" in body["error"]
    if status == 503:
        assert r.headers["Retry-After"] == "1"
    assert len(server.received()) == 1          # one call, never retried
    server.mode = "ok"
    assert post(b, SALE).status_code == 202


def test_slow_writer_gets_504_within_the_deadline(stock, bridge):
    server = stock(delay=30)
    b = bridge(f"ipv4:{server.address}", "--timeout-ms", "700")
    r, took = timed(post, b, SALE)
    assert r.status_code == 504, r.text
    assert 0.6 <= took < 3.0, took
    assert len(server.received()) == 1
    m = b.metrics()
    assert m['sp_downstream_errors_total{kind="timeout"}'] == 1
    assert m['sp_http_requests_total{code="504"}'] == 1


def test_writer_down_is_503_at_once_and_not_ready(bridge):
    b = bridge(f"ipv4:127.0.0.1:{free_port()}", ready=False)
    wait_until(lambda: http_get(b.url("/healthz"))[0] == 200, what="bridge up")
    assert http_get(b.url("/readyz"))[0] == 503
    r, took = timed(post, b, SALE)
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    assert took < 3.0


def test_readiness_follows_the_writer(stock, bridge):
    server = stock()
    port = server.port
    b = bridge(f"ipv4:{server.address}")
    server.stop()
    wait_until(lambda: http_get(b.url("/readyz"))[0] == 503, what="bridge not ready")
    stock(port=port)
    b.wait_ready(30)
    wait_until(lambda: post(b, SALE).status_code == 202, what="sales flowing again")


def test_one_target_with_two_servers_is_round_robin(stock, bridge):
    one, two = stock(), stock()
    b = bridge(f"ipv4:{one.address},{two.address}")
    # round_robin starts each subchannel as it connects; wait until both take calls.
    wait_until(lambda: post(b, SALE).status_code == 202 and one.received() and two.received(),
               what="both servers to get calls")
    before = len(one.received()), len(two.received())
    for r in post_many(b, make_sales(40), concurrency=4):
        assert r.status_code == 202, r.text
    got = len(one.received()) - before[0], len(two.received()) - before[1]
    assert sum(got) == 40
    assert min(got) >= 10, got


@pytest.mark.parametrize("sep", [";", "|", " ; "])
def test_writer_groups_share_the_calls(stock, bridge, sep):
    one, two = stock(), stock()
    b = bridge(f"ipv4:{one.address}{sep}ipv4:{two.address}")
    wait_until(lambda: http_get(b.url("/readyz"))[1].count(": ready") == 2,
               what="both groups ready")
    for r in post_many(b, make_sales(40), concurrency=4):
        assert r.status_code == 202, r.text
    got = len(one.received()), len(two.received())
    assert sum(got) == 40
    assert min(got) >= 10, got


def test_failing_group_is_passed_over(stock, bridge):
    one = stock()
    b = bridge(f"ipv4:{one.address};ipv4:127.0.0.1:{free_port()}")
    wait_until(lambda: "transient failure" in http_get(b.url("/readyz"))[1],
               what="the dead group to be seen failing")
    for r in post_many(b, make_sales(20), concurrency=2):
        assert r.status_code == 202, r.text
    assert len(one.received()) == 20


@pytest.mark.parametrize("spec", ["", ";", "ipv4:127.0.0.1:1;", "a|" * 20 + "a"])
def test_bad_writer_target_fails_at_start(spec):
    r = subprocess.run([str(BIN_DIR / "bridge"), "--port", str(free_port()), "--writer-target", spec,
                        "--bind", "127.0.0.1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad_writer_target" in r.stdout


def test_metrics(stock, bridge):
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    for _ in range(5):
        assert post(b, SALE).status_code == 202
    assert post(b, {"categoria": 9}).status_code == 400
    m = b.metrics()
    assert m['sp_http_requests_total{code="202"}'] == 5
    assert m['sp_http_requests_total{code="400"}'] == 1
    assert m["sp_http_in_flight"] == 0
    assert m["sp_http_request_duration_seconds_count"] == 6
    assert m['sp_downstream_errors_total{kind="unavailable"}'] == 0


# --- bridge -> writer batches: one ProcesarLote call per api batch ---

def batch_results(stubs, r):
    assert r.status_code == 200, r.text
    return stubs.intake.SaleBatchReply.FromString(r.content).results


def test_batch_to_a_stock_writer_goes_one_call_per_sale(stock, bridge, stubs):
    # A stock ProductSaleService answers ProcesarLote UNIMPLEMENTED without reading a sale: that
    # batch's sales go out once each as ProcesarVenta, and so does every later batch.
    server = stock()
    b = bridge(f"ipv4:{server.address}")
    sales = make_sales(12, prefix="stock")
    for part in (sales[:5], sales[5:]):
        items = [(f"id-{s['producto_id']}", dict(s, categoria=1 + i % 4))
                 for i, s in enumerate(part)]
        results = batch_results(stubs, batch_post(b, items, stubs))
        assert [x.status for x in results] == [202] * len(part)
        assert [json.loads(x.body) for x in results] == \
            [{"estado": f"guardada {s['producto_id']}"} for s in part]
    got = sorted(c["sale_id"] for c in server.received())
    assert got == sorted(f"id-{s['producto_id']}" for s in sales)   # each once
    m = b.metrics()
    assert m["sp_bridge_writer_batches_total"] == 1
    assert m["sp_bridge_writer_batch_sales_total"] == 5
    assert [e["event"] for e in b.log_events()].count("writer_no_batches") == 1


def test_batch_goes_as_one_call_and_each_sale_gets_its_own_answer(batch_server, bridge, stubs):
    # What each sale's result says, by product: the HTTP answer it must get.
    outcomes = {"ok": (0, "", 202), "bad": (3, "precio must be greater than 0", 400),
                "busy": (8, "writer busy", 503), "down": (14, "kafka down", 503),
                "late": (4, "", 504), "odd": (9, "odd", 502)}

    def answer(items, ctx):
        out = stubs.intake.SaleResults()
        for _, sale in items:
            code, details, _ = outcomes[sale.producto_id.split("-")[0]]
            reply = stubs.pb.ProductSaleResponse(estado=f"stored {sale.producto_id}")
            out.results.add(code=code, details=details,
                            reply=reply.SerializeToString() if code == 0 else b"")
        return out

    server = batch_server(answer)
    b = bridge(f"ipv4:{server.address}")
    kinds = ["ok", "bad", "ok", "busy", "down", "late", "odd", "ok"]
    items = [(f"id-{i}", dict(SALE, producto_id=f"{k}-{i}")) for i, k in enumerate(kinds)]
    items.insert(1, ("id-refused", dict(SALE, precio=-1.0)))   # the bridge's own 400: not sent
    results = batch_results(stubs, batch_post(b, items, stubs))
    want = [outcomes[k][2] for k in kinds]
    want.insert(1, 400)
    assert [x.status for x in results] == want
    assert json.loads(results[0].body) == {"estado": "stored ok-0"}
    assert json.loads(results[2].body) == {"error": "precio must be greater than 0", "field": "precio"}
    assert "writer busy" in json.loads(results[4].body)["error"]
    [sent] = server.batches
    assert [i for i, _ in sent] == [f"id-{i}" for i in range(len(kinds))]
    assert [s.producto_id for _, s in sent] == [f"{k}-{i}" for i, k in enumerate(kinds)]
    assert server.sales == []
    m = b.metrics()
    assert m['sp_http_requests_total{code="202"}'] == 3
    assert m['sp_http_requests_total{code="503"}'] == 2
    assert m['sp_downstream_errors_total{kind="timeout"}'] == 1
    assert m['sp_downstream_errors_total{kind="rejected"}'] == 1
    assert m["sp_bridge_writer_batches_total"] == 1
    assert m["sp_bridge_writer_batch_sales_total"] == len(kinds)


@pytest.mark.parametrize("failure,status", [
    ("deadline", 504), ("UNAVAILABLE", 503), ("RESOURCE_EXHAUSTED", 503), ("INTERNAL", 502),
    ("short_reply", 502),
])
def test_lost_batch_answer_fails_every_sale_and_sends_none_again(batch_server, bridge, stubs,
                                                                 failure, status):
    def answer(items, ctx):
        if failure == "short_reply":   # one result missing: no sale can be answered from it
            out = stubs.intake.SaleResults()
            for _ in items[1:]:
                out.results.add(code=0)
            return out
        ctx.abort(getattr(grpc.StatusCode, failure), "the whole call failed")

    server = batch_server(answer, delay=30 if failure == "deadline" else 0)
    b = bridge(f"ipv4:{server.address}", "--timeout-ms", "700")
    items = [(f"id-{i}", dict(SALE, producto_id=f"p-{i}")) for i in range(6)]
    (r, took) = timed(batch_post, b, items, stubs)
    results = batch_results(stubs, r)
    assert [x.status for x in results] == [status] * 6
    assert took < 3.0, took
    assert len(server.batches) == 1 and server.sales == []   # never sent again, in any form
    m = b.metrics()
    assert m[f'sp_http_requests_total{{code="{status}"}}'] == 6
    assert m['sp_http_requests_total{code="202"}'] == 0


def test_batches_alternate_between_writer_groups(batch_server, bridge, stubs):
    one, two = batch_server(all_stored(stubs)), batch_server(all_stored(stubs))
    b = bridge(f"ipv4:{one.address};ipv4:{two.address}")
    wait_until(lambda: http_get(b.url("/readyz"))[1].count(": ready") == 2,
               what="both groups ready")
    for n in range(10):
        items = [(f"b{n}-{i}", dict(SALE, producto_id=f"p-{i}")) for i in range(3)]
        assert [x.status for x in batch_results(stubs, batch_post(b, items, stubs))] == [202] * 3
    assert (len(one.batches), len(two.batches)) == (5, 5)
    assert all(len(x) == 3 for x in one.batches + two.batches)


def test_stock_group_beside_a_batch_group_keeps_its_share(stock, batch_server, bridge, stubs):
    old, new = stock(), batch_server(all_stored(stubs))
    b = bridge(f"ipv4:{old.address};ipv4:{new.address}")
    wait_until(lambda: http_get(b.url("/readyz"))[1].count(": ready") == 2,
               what="both groups ready")
    for n in range(6):
        items = [(f"b{n}-{i}", dict(SALE, producto_id=f"p-{i}")) for i in range(4)]
        assert [x.status for x in batch_results(stubs, batch_post(b, items, stubs))] == [202] * 4
    # Alternating: 3 batches each. The stock group's went one call per sale (the first one
    # after its UNIMPLEMENTED answer), the other group's as ProcesarLote calls.
    assert sorted(c["sale_id"] for c in old.received()) == \
        sorted(f"b{n}-{i}" for n in (0, 2, 4) for i in range(4))
    assert [[i for i, _ in x] for x in new.batches] == \
        [[f"b{n}-{i}" for i in range(4)] for n in (1, 3, 5)]
    assert new.sales == []
    assert b.metrics()["sp_bridge_writer_batches_total"] == 4
