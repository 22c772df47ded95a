"""api -> bridge -> STOCK grpcio server: answers, every bad-input rule, overload, timeouts, a bridge
that is down, SIGTERM under load and its lame duck, keep-alive connections, --help."""
import json
import re
import subprocess
import threading
import time

import pytest
import requests

from harness import BIN_DIR, free_port, http_get, tcp_sockets, wait_until
from ingest_util import (SALE, all_stored, expected_fields, make_sales, post, post_many,
                         received_fields, timed)

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_sales_get_202_with_the_id_the_server_saw(chain):
    a, _, server = chain()
    sales = make_sales(200)
    responses = post_many(a, sales, concurrency=8)
    ids = []
    for s, r in zip(sales, responses):
        assert r.status_code == 202, r.text
        body = r.json()
        assert set(body) == {"estado", "id"}
        assert body["estado"] == f"guardada {s['producto_id']}"
        assert HEX_ID.fullmatch(body["id"])
        ids.append(body["id"])
    assert len(set(ids)) == len(ids)
    got = sorted((c["sale_id"], tuple(sorted(received_fields(c).items())))
                 for c in server.received())
    want = sorted((i, tuple(sorted(expected_fields(s).items()))) for s, i in zip(sales, ids))
    assert got == want


def test_boundary_values_are_accepted(chain):
    a, _, server = chain()
    edge = [
        {"categoria": "electronica", "producto_id": "x", "precio": 1e-9, "cantidad_vendida": 1},
        {"categoria": "BELLEZA", "producto_id": "~" * 64, "precio": 1000000, "cantidad_vendida": 100000},
        {"categoria": 3, "producto_id": " a\"b\\c ", "precio": 0.01, "cantidad_vendida": 5.0},
        {"categoria": "2", "producto_id": "p", "precio": 999999.999, "cantidad_vendida": 7,
         "extra": {"nested": [1, 2]}},
    ]
    for s in edge:
        r = post(a, s)
        assert r.status_code == 202, (s, r.text)
    got = [received_fields(c) for c in server.received()]
    assert got == [expected_fields(s) for s in edge]


def _raw(product_id_bytes):
    """A sale body whose producto_id is these raw bytes (not JSON-escaped)."""
    return (b'{"categoria":2,"producto_id":"' + product_id_bytes +
            b'","precio":10,"cantidad_vendida":1}')


SALE_JSON = json.dumps(SALE)

# (body, field or None, words the error must contain). Every rule of issues 2 and 9.
BAD_SALES = [
    ("{", None, "malformed JSON"),
    (SALE_JSON + " x", None, "exactly one JSON value"),
    (SALE_JSON + SALE_JSON, None, "exactly one JSON value"),
    (SALE_JSON + "\n" + SALE_JSON, None, "exactly one JSON value"),
    (SALE_JSON + "]", None, "exactly one JSON value"),
    ("", None, "malformed JSON"),
    ("[1, 2]", None, "must be a JSON object"),
    ('"text"', None, "must be a JSON object"),
    ("null", None, "must be a JSON object"),
    ({"producto_id": "p", "precio": 1, "cantidad_vendida": 1}, "categoria", "is required"),
    (dict(SALE, categoria=0), "categoria", "1-4"),
    (dict(SALE, categoria=5), "categoria", "1-4"),
    (dict(SALE, categoria=1.5), "categoria", "1-4"),
    (dict(SALE, categoria="Juguetes"), "categoria", "1-4"),
    (dict(SALE, categoria=""), "categoria", "1-4"),
    (dict(SALE, categoria=True), "categoria", "1-4"),
    (dict(SALE, categoria=None), "categoria", "1-4"),
    ({"categoria": 1, "precio": 1, "cantidad_vendida": 1}, "producto_id", "is required"),
    (dict(SALE, producto_id=""), "producto_id", "1-64 characters"),
    (dict(SALE, producto_id="x" * 65), "producto_id", "1-64 characters"),
    (dict(SALE, producto_id="\u00f1" * 65), "producto_id", "1-64 characters"),
    (dict(SALE, producto_id="a\u0001b"), "producto_id", "control characters"),
    (dict(SALE, producto_id="a\u0085b"), "producto_id", "control characters"),
    (dict(SALE, producto_id="tab\there"), "producto_id", "control characters"),
    (dict(SALE, producto_id="a\u0000b"), None, "NUL"),
    (_raw(b"a\xc3("), "producto_id", "valid UTF-8"),            # a lead byte alone
    (_raw(b"\x80abc"), "producto_id", "valid UTF-8"),           # a continuation byte first
    (_raw(b"\xc0\xaf"), "producto_id", "valid UTF-8"),          # overlong '/', 2 bytes
    (_raw(b"\xe0\x80\xaf"), "producto_id", "valid UTF-8"),      # overlong '/', 3 bytes
    (_raw(b"\xf0\x80\x80\xaf"), "producto_id", "valid UTF-8"),  # overlong '/', 4 bytes
    (_raw(b"\xed\xa0\x80"), "producto_id", "valid UTF-8"),      # a surrogate, encoded
    (_raw(b"\xf4\x90\x80\x80"), "producto_id", "valid UTF-8"),  # past U+10FFFF
    (_raw(b"ni\xf1o"), "producto_id", "valid UTF-8"),           # Latin-1, not UTF-8
    (dict(SALE, producto_id=12), "producto_id", "must be a string"),
    ({"categoria": 1, "producto_id": "p", "cantidad_vendida": 1}, "precio", "is required"),
    (dict(SALE, precio=0), "precio", "greater than 0"),
    (dict(SALE, precio=-5), "precio", "greater than 0"),
    (dict(SALE, precio=1000000.01), "precio", "at most 1000000"),
    ('{"categoria":1,"producto_id":"p","precio":1e999,"cantidad_vendida":1}', "precio", "number"),
    (dict(SALE, precio="10"), "precio", "must be a number"),
    ({"categoria": 1, "producto_id": "p", "precio": 1}, "cantidad_vendida", "is required"),
    (dict(SALE, cantidad_vendida=0), "cantidad_vendida", "1 to 100000"),
    (dict(SALE, cantidad_vendida=100001), "cantidad_vendida", "1 to 100000"),
    (dict(SALE, cantidad_vendida=-1), "cantidad_vendida", "1 to 100000"),
    (dict(SALE, cantidad_vendida=1.5), "cantidad_vendida", "1 to 100000"),
    (dict(SALE, cantidad_vendida="2"), "cantidad_vendida", "1 to 100000"),
]


@pytest.fixture(scope="module")
def shared_chain(request, pb, tmp_path_factory):
    """One chain for the many bad-input cases (started once, checked clean at the end)."""
    from harness import Worker
    from ingest_util import StockServer
    server = StockServer(pb)
    log_dir = tmp_path_factory.mktemp("bad-input")
    bport, aport = free_port(), free_port()
    b = Worker("bridge", ["--port", str(bport), "--writer-target", f"ipv4:{server.address}"],
               http_port=bport, log_dir=log_dir)
    a = Worker("api", ["--port", str(aport), "--bridge-url", b.url("/ventas")], http_port=aport,
               log_dir=log_dir)
    try:
        b.wait_ready()
        a.wait_ready()
        yield a, b, server
    finally:
        codes = {w.name: w.terminate() for w in (a, b)}
        server.stop()
    assert codes == {"api": 0, "bridge": 0}, (a.logs()[-3000:], b.logs()[-3000:])


@pytest.mark.parametrize("entry", ["api", "bridge"])
@pytest.mark.parametrize("body,field,words", BAD_SALES,
                         ids=[f"{f or 'body'}-{i}" for i, (_, f, _) in enumerate(BAD_SALES)])
def test_bad_sale_is_400_and_never_reaches_the_writer(shared_chain, entry, body, field, words):
    a, b, server = shared_chain
    worker = a if entry == "api" else b
    before = len(server.received())
    data = json.dumps(body) if isinstance(body, dict) else body
    r = post(worker, data)
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == "application/json"
    got = r.json()
    assert got["field"] == field
    assert words in got["error"]
    assert len(server.received()) == before
    ok = post(worker, SALE)
    assert ok.status_code == 202, ok.text
    assert len(server.received()) == before + 1


def _chunks(total, size=8192):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("entry", ["api", "bridge"])
def test_unicode_product_ids_reach_the_writer_intact(shared_chain, entry):
    """Spanish product names: UTF-8 as sent raw or as JSON escapes, counted in characters."""
    a, b, server = shared_chain
    worker = a if entry == "api" else b
    before = len(server.received())
    ids = ["Ropa-ni\u00f1o-7", "caf\u00e9", "\u00f1" * 64, "\U0001f45f-zapatilla", "\u20ac" * 64]
    for pid in ids:
        raw = json.dumps(dict(SALE, producto_id=pid), ensure_ascii=False).encode()
        assert post(worker, raw).status_code == 202, pid
        assert post(worker, dict(SALE, producto_id=pid)).status_code == 202, pid  # \u escapes
    got = [c["producto_id"] for c in server.received()[before:]]
    assert got == [pid for pid in ids for _ in (0, 1)]


@pytest.mark.parametrize("entry", ["api", "bridge"])
def test_request_id_comes_back_on_the_answer(shared_chain, entry):
    """X-Request-Id is sent back as it came on any answer, a refusal too; one that could carry
    anything but [A-Za-z0-9._-] (1-64 of them) is left out, never echoed."""
    a, b, _ = shared_chain
    worker = a if entry == "api" else b
    for rid in ("w1-42", "a" * 64, "req.7_x"):
        assert post(worker, SALE, headers={"X-Request-Id": rid}).headers.get("X-Request-Id") == rid
        bad = post(worker, dict(SALE, precio=-1), headers={"X-Request-Id": rid})
        assert (bad.status_code, bad.headers.get("X-Request-Id")) == (400, rid)
    for rid in ("a" * 65, "a b", "x;y", "\u00f1"):
        r = post(worker, SALE, headers={"X-Request-Id": rid})
        assert r.status_code == 202 and "X-Request-Id" not in r.headers, rid
    assert "X-Request-Id" not in post(worker, SALE).headers


@pytest.mark.parametrize("entry", ["api", "bridge"])
def test_other_refusals(shared_chain, entry):
    a, b, server = shared_chain
    worker = a if entry == "api" else b
    before = len(server.received())
    small_ok = json.dumps(dict(SALE, pad=" " * 60000))          # under 64 KiB: fine
    big = json.dumps(dict(SALE, pad=" " * 70000))               # over 64 KiB
    cases = [
        (lambda: post(worker, big), 413),
        (lambda: requests.post(worker.url("/ventas"), data=_chunks(70000),
                               headers={"Content-Type": "application/json"}, timeout=30), 413),
        (lambda: requests.post(worker.url("/ventas"), data=_chunks(2_000_000),
                               headers={"Content-Type": "application/json"}, timeout=30), 413),
        (lambda: post(worker, json.dumps(SALE), content_type="text/plain"), 415),
        (lambda: post(worker, json.dumps(SALE), content_type=None), 415),
        (lambda: post(worker, json.dumps(SALE), content_type="application/jsonx"), 415),
        (lambda: post(worker, json.dumps(SALE), content_type="application/x-www-form-urlencoded"), 415),
        (lambda: post(worker, json.dumps(SALE), path="/venta"), 404),
        (lambda: post(worker, json.dumps(SALE), path="/ventas/1"), 404),
        (lambda: requests.get(worker.url("/ventas"), timeout=30), 405),
        (lambda: requests.put(worker.url("/ventas"), data="{}", timeout=30), 405),
        (lambda: requests.delete(worker.url("/ventas"), timeout=30), 405),
    ]
    for i, (call, status) in enumerate(cases):
        try:
            r = call()
        except requests.ConnectionError:
            # A body far over the limit may be cut off by closing the connection.
            assert i == 2, f"case {i} lost its connection"
        else:
            assert r.status_code == status, (i, r.status_code, r.text)
            assert "error" in r.json(), (i, r.text)
            if status == 405:
                assert r.headers["Allow"] == "POST"
        assert post(worker, SALE).status_code == 202, i
    for ct in ("application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"):
        assert post(worker, json.dumps(SALE), content_type=ct).status_code == 202, ct
    assert post(worker, small_ok).status_code == 202
    assert len(server.received()) == before + len(cases) + 4


def test_overload_is_503_with_retry_after_never_a_hang(chain):
    a, _, server = chain(delay=3, api_args=("--max-in-flight", "4"))
    sales = make_sales(24)
    started = time.monotonic()
    results = []
    lock = threading.Lock()

    def one(s):
        r, took = timed(post, a, s)
        with lock:
            results.append((r, took))

    threads = [threading.Thread(target=one, args=(s,)) for s in sales]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == len(sales)
    refused = [(r, t) for r, t in results if r.status_code == 503]
    accepted = [(r, t) for r, t in results if r.status_code == 202]
    assert len(accepted) + len(refused) == len(sales), [r.status_code for r, _ in results]
    assert 1 <= len(accepted) <= 4 + 4            # at most the bound, plus those after a slot freed
    assert refused
    for r, took in refused:
        assert r.headers["Retry-After"] == "1"
        assert took < 2.5, took                    # at once, not after the slow server
    assert time.monotonic() - started < 30
    assert len(server.received()) == len(accepted)


def test_bridge_overload_passes_through(chain):
    a, b, server = chain(delay=3, bridge_args=("--max-in-flight", "2"))
    results = post_many(a, make_sales(10), concurrency=10)
    codes = sorted(r.status_code for r in results)
    assert codes.count(202) >= 1 and codes.count(503) >= 1, codes
    for r in results:
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "1"
            assert "too many sales in flight" in r.json()["error"]
    assert a.metrics()['sp_downstream_errors_total{kind="overloaded"}'] == codes.count(503)


def test_bridge_down_is_503_at_once(api):
    a = api(f"http://127.0.0.1:{free_port()}/ventas", ready=False)
    wait_until(lambda: http_get(a.url("/healthz"))[0] == 200, what="api up")
    status, text = http_get(a.url("/readyz"))
    assert status == 503 and "bridge" in text
    for _ in range(5):
        r, took = timed(post, a, SALE)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert took < 1.0, took
    assert a.metrics()['sp_downstream_errors_total{kind="unavailable"}'] == 5


def test_api_deadline_is_504(chain):
    a, _, server = chain(delay=30, api_args=("--timeout-ms", "800"), bridge_args=("--timeout-ms", "3000"))
    r, took = timed(post, a, SALE)
    assert r.status_code == 504, r.text
    assert 0.7 <= took < 3.0, took
    assert len(server.received()) == 1


def test_bridge_deadline_comes_through_as_504(chain):
    a, _, _ = chain(delay=30, bridge_args=("--timeout-ms", "600"))
    r, took = timed(post, a, SALE)
    assert r.status_code == 504, r.text
    assert "did not answer in time" in r.json()["error"]
    assert took < 3.0, took


def test_api_readiness_follows_the_bridge(stock, bridge, api):
    server = stock()
    port = free_port()
    b = bridge(f"ipv4:{server.address}", port=port)
    a = api(b)
    assert b.terminate() == 0
    wait_until(lambda: http_get(a.url("/readyz"))[0] == 503, what="api not ready")
    assert post(a, SALE).status_code == 503
    bridge(f"ipv4:{server.address}", port=port)
    a.wait_ready()
    assert post(a, SALE).status_code == 202


def _load(worker, stop, ok_ids, lock, errors):
    session = requests.Session()
    i = 0
    while not stop.is_set():
        i += 1
        try:
            r = post(worker, dict(SALE, producto_id=f"load-{threading.get_ident()}-{i}"),
                     session=session, timeout=30)
        except requests.ConnectionError:
            with lock:
                errors.append("conn")
            time.sleep(0.01)
            continue
        if r.status_code == 202:
            with lock:
                ok_ids.append(r.json()["id"])
        elif r.status_code != 503:
            with lock:
                errors.append(r.status_code)


@pytest.mark.parametrize("victim", ["api", "bridge"])
def test_sigterm_under_load_loses_no_accepted_sale(chain, victim):
    a, b, server = chain(delay=0.02)
    stop, lock = threading.Event(), threading.Lock()
    ok_ids, errors = [], []
    target = a if victim == "api" else b
    threads = [threading.Thread(target=_load, args=(a, stop, ok_ids, lock, errors)) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(ok_ids) >= 200, 60, what="some sales accepted")
        target.proc.send_signal(15)
        code = target.proc.wait(30)
        assert code == 0, target.logs()[-3000:]
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not [e for e in errors if e != "conn"], errors
    seen = {c["sale_id"] for c in server.received()}
    missing = [i for i in ok_ids if i not in seen]
    assert not missing, f"{len(missing)} of {len(ok_ids)} accepted sales never reached the server"
    # Nothing was sent twice.
    ids = [c["sale_id"] for c in server.received()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("victim", ["api", "bridge"])
def test_after_intake_stops_new_sales_get_503_while_one_in_flight_finishes(chain, victim):
    """Once intake stops, a sale on a new connection is answered 503 "shutting down" at once
    (with Retry-After and Connection: close: the client retries elsewhere), while the sale
    already in flight still gets its 202, and the process exits 0 (libmicrohttpd's own quiesce
    could abort it: see sp_rest_quiesce)."""
    a, b, server = chain(delay=1.5)
    target = a if victim == "api" else b
    slow = {}
    first = threading.Thread(target=lambda: slow.update(r=post(target, SALE)))
    first.start()
    wait_until(lambda: target.metrics().get("sp_http_in_flight", 0) >= 1, 10,
               what="the first sale in flight")
    target.proc.send_signal(15)
    wait_until(lambda: "stopping_intake" in [e["event"] for e in target.log_events()], 10,
               what="intake stopped")
    late = post(target, SALE)
    assert late.status_code == 503 and late.json()["error"] == "shutting down", late.text
    assert late.headers["Retry-After"] == "1" and late.headers["Connection"].lower() == "close"
    first.join(30)
    assert slow["r"].status_code == 202, slow["r"].text
    assert target.proc.wait(30) == 0, target.logs()[-3000:]
    assert len(server.received()) == 1


@pytest.mark.parametrize("victim", ["api", "bridge"])
def test_sigterm_lame_duck_keeps_answering_before_intake_stops(chain, victim):
    """With --shutdown-delay-ms: at SIGTERM /readyz turns 503 at once, yet sales keep being
    answered (each answer closing its connection, so a kept-alive client reconnects: to
    another pod, once the Service's endpoints follow) and new connections are still taken,
    until the delay is over; then intake stops and the process exits 0."""
    delay = 2.0
    args = ("--shutdown-delay-ms", str(int(delay * 1000)))
    a, b, _ = chain(**{f"{victim}_args": args})
    target = a if victim == "api" else b
    kept = requests.Session()
    first = post(target, SALE, session=kept)
    assert first.status_code == 202 and first.headers.get("Connection", "").lower() != "close"
    t0 = time.monotonic()
    target.proc.send_signal(15)
    wait_until(lambda: http_get(target.url("/readyz"))[0] == 503, 5, what="not ready at once")
    on_kept = post(target, SALE, session=kept)
    assert on_kept.status_code == 202, on_kept.text
    assert on_kept.headers.get("Connection", "").lower() == "close"
    assert post(target, SALE).status_code == 202           # a new connection is still taken
    assert time.monotonic() - t0 < delay, "too slow to test the delay on this machine"
    assert target.proc.wait(30) == 0, target.logs()[-3000:]
    assert time.monotonic() - t0 >= delay - 0.1
    events = [e["event"] for e in target.log_events()]
    assert events.index("lame_duck") < events.index("stopping_intake") < events.index("stopped")


def test_second_sigterm_cuts_the_lame_duck_short(chain):
    a, _, _ = chain(api_args=("--shutdown-delay-ms", "60000"))
    a.proc.send_signal(15)
    wait_until(lambda: "lame_duck" in [e["event"] for e in a.log_events()], 10, what="lame duck")
    t0 = time.monotonic()
    a.proc.send_signal(15)
    assert a.proc.wait(30) == 0
    assert time.monotonic() - t0 < 10
    assert "lame_duck_cut" in [e["event"] for e in a.log_events()]


def test_sighup_does_not_cut_the_lame_duck_short(chain):
    """SIGHUP (a catalog refresh) during the lame duck is no stop signal: the delay runs out."""
    delay = 2.0
    a, _, _ = chain(api_args=("--shutdown-delay-ms", str(int(delay * 1000))))
    t0 = time.monotonic()
    a.proc.send_signal(15)
    wait_until(lambda: "lame_duck" in [e["event"] for e in a.log_events()], 10, what="lame duck")
    a.proc.send_signal(1)
    assert a.proc.wait(30) == 0, a.logs()[-3000:]
    assert time.monotonic() - t0 >= delay - 0.1
    assert "lame_duck_cut" not in [e["event"] for e in a.log_events()]


def test_keep_alive_not_a_connection_per_sale(chain):
    a, b, _ = chain(api_args=("--max-connections", "4"))
    before = tcp_sockets(b.http_port)
    for r in post_many(a, make_sales(400), concurrency=6):
        assert r.status_code == 202
    after = tcp_sockets(b.http_port)
    # Open towards the bridge: 4 for sales + 1 for the readiness probe, kept alive.
    towards = [s for s in after if s[0] == "ESTAB" and s[2].endswith(f":{b.http_port}")]
    assert len(towards) <= 5, towards
    # A connection per sale would leave hundreds of closed sockets behind in TIME-WAIT.
    closed = [s for s in after - before if s[0] == "TIME-WAIT"]
    assert len(closed) <= 3, closed


@pytest.mark.parametrize("wait_ms,last", [(60000, (2, 1)), (1000, (2, 3))],
                         ids=["waits-for-the-eager-one", "waits-1-s-at-most"])
def test_sales_gather_behind_the_eager_request_but_a_full_batch_leaves_at_once(
        batch_server, bridge, api, stubs, wait_ms, last):
    """--eager-requests 1: while one request to the bridge is under way, the sales that come wait
    for it and then go together, or go anyway once the oldest has waited --batch-wait-ms; but a
    full batch (--batch-max) leaves at once on a connection of its own. The writer takes 2 s per
    batch, so the calls under way at each arrival show who waited."""
    server = batch_server(all_stored(stubs), delay=2.0)
    b = bridge(f"ipv4:{server.address}")
    a = api(b, "--eager-requests", "1", "--batch-wait-ms", str(wait_ms), "--max-connections", "8",
            "--batch-max", "3", "--timeout-ms", "15000")
    first = []
    t = threading.Thread(target=lambda: first.append(post(a, dict(SALE, producto_id="first"))))
    t.start()
    try:
        wait_until(lambda: server.arrivals, what="the first sale at the writer")
        later = post_many(a, make_sales(5), concurrency=5)
    finally:
        t.join()
    assert [r.status_code for r in first + later] == [202] * 6, [r.text for r in first + later]
    # The first alone; three as a full batch while it was under way; the last two either once
    # nothing was (the full batch counts as under way too) or after their wait, beside both.
    assert server.arrivals == [(1, 1), (3, 2), last], server.arrivals
    assert sorted(s.producto_id for batch in server.batches for _, s in batch) == \
        sorted(["first"] + [f"p-{i}" for i in range(5)])


@pytest.mark.parametrize("name,flags", [
    ("api", ["--port", "PORT", "--bind", "BIND_ADDR", "--bridge-url", "BRIDGE_URL",
             "--timeout-ms", "DOWNSTREAM_TIMEOUT_MS", "--max-in-flight", "MAX_IN_FLIGHT",
             "--max-connections", "BRIDGE_CONNECTIONS", "--eager-requests", "BRIDGE_EAGER_REQUESTS",
             "--batch-wait-ms", "BRIDGE_BATCH_WAIT_MS", "--threads", "HTTP_THREADS",
             "--log-level", "LOG_LEVEL"]),
    ("bridge", ["--port", "PORT", "--bind", "BIND_ADDR", "--writer-target", "WRITER_TARGET",
                "--timeout-ms", "DOWNSTREAM_TIMEOUT_MS", "--max-in-flight", "MAX_IN_FLIGHT",
                "--threads", "HTTP_THREADS", "--log-level", "LOG_LEVEL"]),
])
def test_help_lists_every_option(name, flags):
    r = subprocess.run([str(BIN_DIR / name), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for f in flags:
        assert f in r.stdout, f
    defaults = {"api": ["8080", "http://127.0.0.1:8081/ventas", "5000", "2048", "64"],
                "bridge": ["8081", "ipv4:127.0.0.1:50051", "3500", "2048"]}[name]
    for d in defaults:
        assert d in r.stdout, d


@pytest.mark.parametrize("name,args", [
    ("api", ["--port", "0"]), ("api", ["--timeout-ms", "x"]), ("api", ["--nope"]),
    ("bridge", ["--max-in-flight", "0"]), ("bridge", ["--log-level", "loud"]),
    ("writer", ["--linger-ms", "-1"]), ("consumer", ["--batch-size", "100001"]),
    ("salesctl", ["dashboard", "--points", "-1"]), ("operator", ["--workers", "0"]),
])
def test_bad_options_exit_2(name, args):
    r = subprocess.run([str(BIN_DIR / name), *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    flag = next(a for a in args if a.startswith("--"))
    assert flag in r.stderr and name in r.stderr, r.stderr  # names the program and the option


@pytest.mark.parametrize("batches", [False, True], ids=["one-sale-json", "batch"])
def test_a_delivered_sale_is_never_sent_again(api, stubs, batches):
    """The bridge takes a sale on a kept-alive connection and dies before answering. libcurl would
    re-send it on a fresh connection; the api must not, and answers 503 instead. The same for a
    batch (POST /ventas/lote): every sale in it gets the failure, none is sent again."""
    import http.server
    import socket

    lock, received, paths = threading.Lock(), [], []

    class Bridge(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                paths.append(self.path)
            if batches:
                items = stubs.intake.SaleBatch.FromString(body).items
                names = [stubs.pb.ProductSaleRequest.FromString(i.sale).producto_id for i in items]
            else:
                names = [json.loads(body)["producto_id"]]
            with lock:
                received.extend((self.client_address[1], name) for name in names)
                n = len(received)
            if n == 2:   # delivered; now gone without a byte of answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if batches:
                out = stubs.intake.SaleBatchReply(results=[
                    stubs.intake.BatchResult(status=202, body=b'{"estado":"ok"}') for _ in names
                ]).SerializeToString()
            else:
                out = b'{"estado":"ok"}'
            self.send_response(200 if batches else 202)
            self.send_header("Content-Type",
                             "application/x-protobuf" if batches else "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bridge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        a = api(f"http://127.0.0.1:{server.server_port}/ventas", "--max-connections", "1",
                "--batch-max", "60" if batches else "1")
        assert post(a, dict(SALE, producto_id="first")).status_code == 202
        r = post(a, dict(SALE, producto_id="second"))
        assert r.status_code == 503, r.text
        assert post(a, dict(SALE, producto_id="third")).status_code == 202
        with lock:
            names = [s for _, s in received]
            ports = [p for p, _ in received]
            bridge_paths = list(paths)
        assert bridge_paths and set(bridge_paths) == {"/ventas/lote" if batches else "/ventas"}, bridge_paths
        assert names == ["first", "second", "third"]
        assert ports[0] == ports[1], "the second sale did not reuse the kept-alive connection"
    finally:
        server.shutdown()
        server.server_close()
