"""Slow and greedy clients against the REST intake (common/rest.c + conn_guard.c), the real
processes: 10,000 slow connections must not starve normal sales, are cut off by the header and
body timeouts, a sale waiting for its downstream is never cut off, and the connection limits
answer 503."""
import http.client
import json
import socket
import sys
import time

from harness import ROOT, wait_until
from ingest_util import SALE, post
from slow_clients import Prober, SlowClients, percentile, raise_fd_limit

sys.path.insert(0, str(ROOT / "tests" / "writer"))
from writer_util import record_count  # noqa: E402

SLOW = {"half-body": 4000, "trickle-headers": 3000, "trickle-body": 3000}
SLOW_SOURCES = [f"127.0.0.{i}" for i in range(2, 12)]   # 10 addresses, 1,000 connections each
TIMEOUT_S = 10.0    # the default --header-timeout-ms and --body-timeout-ms


def post_from(port, source, body=SALE, timeout=10):
    """One sale on a new connection from `source`; returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("POST", "/ventas", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def open_idle(port, source, n):
    """`n` connections from `source` that send nothing."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def closed_by_server(sock, timeout=5.0):
    """True when the server ends the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_10000_slow_connections_do_not_starve_normal_sales(kafka, topic, pipeline):
    raise_fd_limit(sum(SLOW.values()) + 500)
    api, _, _ = pipeline(kafka.bootstrap, topic,
                         api_args=("--client-connections", "12000",
                                   "--client-connections-per-ip", "1000"))
    port = api.http_port
    # Normal sales from 127.0.0.1: one thread on a kept-alive session, one on a new connection
    # per sale (so admission is exercised during the attack too).
    import requests
    session = requests.Session()
    prober = Prober(lambda: post(api, SALE, timeout=10, session=session).status_code, threads=1)
    fresh = Prober(lambda: post_from(port, "127.0.0.1")[0], threads=1)
    slow = SlowClients(port, SLOW, sources=SLOW_SOURCES, trickle_s=1.0)
    try:
        prober.start(), fresh.start()
        took = slow.open()
        slow.start()
        print(f"opened {sum(SLOW.values())} slow connections in {took:.1f} s")
        wait_until(lambda: api.metrics().get("sp_http_connections", 0) >= 10000, 30,
                   what="10,000 connections held by the api")
        wait_until(lambda: slow.open_count() == 0, TIMEOUT_S + 20, interval=0.5,
                   what="the slow connections to be closed by the server")
        results = prober.stop() + fresh.stop()
    finally:
        prober.stop(), fresh.stop()
        slow.close()

    latencies = [t for t, _ in results]
    statuses = {}
    for _, s in results:
        statuses[s] = statuses.get(s, 0) + 1
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"normal sales during the attack: {len(results)}, statuses {statuses}, "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    assert statuses == {202: len(results)} and len(results) >= 50, statuses
    assert p99 < 1.0, p99

    # Each slow connection was cut off by its deadline, not earlier, not much later, unanswered.
    lifetimes = [c.closed - c.opened for c in slow.conns]
    print(f"slow connections closed after {min(lifetimes):.1f}-{max(lifetimes):.1f} s")
    assert slow.statuses() == {None: sum(SLOW.values())}
    assert min(lifetimes) >= TIMEOUT_S * 0.9 and max(lifetimes) <= TIMEOUT_S + 5, \
        (min(lifetimes), max(lifetimes))
    m = api.metrics()
    assert m['sp_http_connections_timed_out_total{phase="headers"}'] == SLOW["trickle-headers"]
    assert m['sp_http_connections_timed_out_total{phase="body"}'] == \
        SLOW["half-body"] + SLOW["trickle-body"]
    # Every 202 is in Kafka.
    assert record_count(kafka.bootstrap, topic) == len(results)


def test_a_sale_waiting_downstream_is_never_cut_off(chain):
    """Header/body timeouts of 300 ms and an idle timeout of 1 s on both api and bridge; the
    writer takes 3 s. The sale is suspended in both for 3 s and still gets its 202."""
    short = ("--header-timeout-ms", "300", "--body-timeout-ms", "300", "--idle-timeout-seconds", "1")
    api, bridge, server = chain(delay=3.0, api_args=short, bridge_args=short)
    import requests
    with requests.Session() as s:
        t = time.monotonic()
        r = post(api, SALE, session=s)
        took = time.monotonic() - t
        assert r.status_code == 202, r.text
        assert took >= 3.0, took
        assert len(server.received()) == 1
        # The kept-alive connection serves another sale (within the idle timeout) ...
        assert post(api, SALE, session=s).status_code == 202
    for w in (api, bridge):
        m = w.metrics()
        assert m['sp_http_connections_timed_out_total{phase="headers"}'] == 0
        assert m['sp_http_connections_timed_out_total{phase="body"}'] == 0
    # ... and one left idle after its answer is closed after the idle timeout (1 s), while a
    # new connection that sends nothing is cut off by the header timeout (300 ms).
    conn = http.client.HTTPConnection("127.0.0.1", api.http_port, timeout=10)
    conn.request("POST", "/ventas", json.dumps(SALE), {"Content-Type": "application/json"})
    assert conn.getresponse().read() and conn.sock is not None
    t = time.monotonic()
    assert closed_by_server(conn.sock, 5.0)
    idle = time.monotonic() - t
    conn.close()
    silent = socket.create_connection(("127.0.0.1", api.http_port))
    t = time.monotonic()
    assert closed_by_server(silent, 5.0)
    silent.close()
    mute = time.monotonic() - t
    assert 0.9 <= idle <= 2.5 and 0.25 <= mute <= 0.9, (idle, mute)


def test_idle_timeout_0_keeps_an_idle_connection(chain):
    """--idle-timeout-seconds 0 means no idle limit: a kept-alive connection left idle after its
    answer outlives the header timeout (300 ms) by far, serves another sale and is not counted
    as timed out; a new connection that sends nothing is still cut off."""
    api, _, _ = chain(api_args=("--header-timeout-ms", "300", "--idle-timeout-seconds", "0"))
    conn = http.client.HTTPConnection("127.0.0.1", api.http_port, timeout=10)
    try:
        conn.request("POST", "/ventas", json.dumps(SALE), {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 202 and r.read() and conn.sock is not None
        assert not closed_by_server(conn.sock, 2.0)
        conn.sock.settimeout(10)
        conn.request("POST", "/ventas", json.dumps(SALE), {"Content-Type": "application/json"})
        assert conn.getresponse().status == 202
    finally:
        conn.close()
    assert api.metrics()['sp_http_connections_timed_out_total{phase="headers"}'] == 0
    silent = socket.create_connection(("127.0.0.1", api.http_port))
    try:
        assert closed_by_server(silent, 5.0)
    finally:
        silent.close()
    wait_until(lambda: api.metrics()['sp_http_connections_timed_out_total{phase="headers"}'] == 1,
               10, what="the silent connection counted as timed out")


def test_connection_limits_answer_503(chain):
    api, _, _ = chain(api_args=("--client-connections", "30", "--client-connections-per-ip", "10"))
    port = api.http_port
    held = open_idle(port, "127.0.0.2", 10)
    try:
        # Past 10 from one address: 503, Retry-After, and the connection closes.
        status, headers, body = post_from(port, "127.0.0.2")
        assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
        assert json.loads(body) == {"error": "too many connections from this address"}
        # Another address is not affected.
        assert post_from(port, "127.0.0.1")[0] == 202
        # From twice the per-address limit on, a new connection is closed at accept.
        held += open_idle(port, "127.0.0.2", 10)
        # (the scrape's own connection counts too)
        wait_until(lambda: api.metrics()["sp_http_connections"] == 20 + 1, 10, what="20 connections")
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        assert closed_by_server(s)
        s.close()
        # Past 30 admitted in all: 503 for any address.
        held += open_idle(port, "127.0.0.3", 10) + open_idle(port, "127.0.0.4", 10)
        wait_until(lambda: api.metrics()["sp_http_connections"] == 40 + 1, 10, what="40 connections")
        status, headers, body = post_from(port, "127.0.0.5")
        assert status == 503 and headers["connection"] == "close"
        assert json.loads(body) == {"error": "too many connections"}
        # Room again once connections close.
        for s in held[20:]:
            s.close()
        wait_until(lambda: post_from(port, "127.0.0.5")[0] == 202, 10, what="a slot to free up")
        m = api.metrics()
        assert m['sp_http_connections_refused_total{limit="address"}'] == 1
        assert m['sp_http_connections_refused_total{limit="address_hard"}'] == 1
        assert m['sp_http_connections_refused_total{limit="total"}'] >= 1
        assert m['sp_http_requests_total{code="503"}'] >= 2
    finally:
        for s in held:
            s.close()


def test_limits_and_timeouts_are_in_help(workers):
    for name in ("api", "bridge"):
        w = workers(name, ["--help"])
        w.proc.wait(10)
        text = w.logs()
        for flag, default in (("--client-connections=", "4096"), ("--client-connections-per-ip=", "1024"),
                              ("--header-timeout-ms=", "10000"), ("--body-timeout-ms=", "10000"),
                              ("--idle-timeout-seconds=", "60")):
            assert flag in text, (name, flag)
            assert f"default: {default}," in text.split(flag, 1)[1].split("\n  --", 1)[0], (name, flag)


def test_large_bodies_are_bounded(chain):
    """Bodies over 1 KiB take a 64 KiB buffer each; 256 at most at once, then 503, so memory stays
    bounded whatever the number of connections."""
    api, _, _ = chain()
    port = api.http_port
    big = json.dumps(dict(SALE, padding=" " * 2000))          # a valid sale of ~2 KiB
    head = (f"POST /ventas HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(big)}\r\n\r\n").encode()
    held = open_idle(port, "127.0.0.2", 256)
    try:
        for s in held:
            s.sendall(head + big.encode()[:1500])                # past 1 KiB, not complete
        def refused():
            status, _, body = post_from(port, "127.0.0.1", body=json.loads(big))
            return status == 503 and json.loads(body) == {"error": "too many large bodies at once"}
        wait_until(refused, 10, what="the 257th large body to be refused")
        assert post_from(port, "127.0.0.1")[0] == 202              # small bodies are not affected
    finally:
        for s in held:
            s.close()
    wait_until(lambda: post_from(port, "127.0.0.1", body=json.loads(big))[0] == 202, 10,
               what="large bodies to be taken again")
