"""The writer against a stock gRPC client (grpcio) and a real Kafka broker.

Each test starts its own writer (the sanitizer build) on a fresh topic and reads what reached
Kafka back with a real consumer."""
import collections
import math
import os
import signal
import subprocess
import threading
import time

import grpc
import pytest

from writer_util import (BIN_DIR, SANITIZER_ENV, SERVICE, free_port, headers, http_get,
                         metric, new_sale_id, read_records, record_count, sale, sale_batch,
                         start_writer, wait_until)
from harness import tcp_sockets

DEADLINE = 30.0  # generous: a loaded 2-core machine runs the broker and ASan builds
OK = grpc.StatusCode.OK
OUTAGE_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest.fixture
def channel_for():
    channels = []

    def make(target):
        ch = grpc.insecure_channel(target)
        channels.append(ch)
        return ch

    yield make
    for ch in channels:
        ch.close()


def sale_stub(stubs, channel):
    return stubs.pb_grpc.ProductSaleServiceStub(channel)


def batch_stub(stubs, channel):
    return stubs.intake_grpc.SaleBatchServiceStub(channel)


def health_status(stubs, channel, service=""):
    stub = stubs.health_grpc.HealthStub(channel)
    return stub.Check(stubs.health.HealthCheckRequest(service=service), timeout=DEADLINE).status


def call_code(fn, *args, **kw):
    try:
        fn(*args, **kw)
        return OK
    except grpc.RpcError as e:
        return e.code()


def test_help_lists_every_option():
    out = subprocess.run([str(BIN_DIR / "writer"), "--help"], capture_output=True, text=True,
                         env=dict(os.environ, **SANITIZER_ENV), timeout=60)
    assert out.returncode == 0, out.stderr
    for flag, env in [("grpc-port", "GRPC_PORT"), ("http-port", "HTTP_PORT"),
                      ("kafka-brokers", "KAFKA_BROKERS"), ("topic", "KAFKA_TOPIC"),
                      ("max-in-flight", "MAX_IN_FLIGHT"), ("delivery-timeout-ms", "DELIVERY_TIMEOUT_MS"),
                      ("linger-ms", "KAFKA_LINGER_MS"), ("sticky-ms", "KAFKA_STICKY_MS"),
                      ("bind", "BIND_ADDR"),
                      ("log-level", "LOG_LEVEL"), ("instance", "INSTANCE"),
                      ("max-connection-age-ms", "MAX_CONNECTION_AGE_MS")]:
        assert f"--{flag}=" in out.stdout, flag
        assert f"env {env}," in out.stdout, env


def test_sale_is_stored_with_key_value_and_headers(workers, kafka, topic, stubs, channel_for):
    w = start_writer(workers, kafka.bootstrap, topic)
    stub = sale_stub(stubs, channel_for(w.target))
    request = sale(stubs, categoria=3, producto_id="sku-42", precio=1234.5, cantidad_vendida=7)
    sale_id = new_sale_id()
    before_ms = int(time.time() * 1000)
    reply, call = stub.ProcesarVenta.with_call(request, metadata=[("x-sale-id", sale_id)],
                                               timeout=DEADLINE)
    after_ms = int(time.time() * 1000)
    assert call.code() == OK
    assert reply.estado == "almacenada"

    [record] = read_records(kafka.bootstrap, topic, 1)
    assert record.key() == b"sku-42"
    stored = stubs.pb.ProductSaleRequest.FromString(record.value())
    assert (stored.categoria, stored.producto_id, stored.precio, stored.cantidad_vendida) == \
        (stubs.pb.Hogar, "sku-42", 1234.5, 7)
    assert record.value() == request.SerializeToString()
    h = headers(record)
    assert h["sale-id"] == sale_id
    assert before_ms - 1000 <= int(h["received-ms"]) <= after_ms + 1000
    assert record_count(kafka.bootstrap, topic) == 1
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="OK"}') == 1, what="OK counted")
    assert metric(w, "sp_writer_request_duration_seconds_count") == 1


def test_sticky_partitioning_fills_one_partition_per_window_and_keeps_the_key(
        workers, kafka, topic, stubs, channel_for):
    # One window longer than the test: every sale of this writer lands in one partition, whatever
    # its product; the record keeps producto_id as its key.
    w = start_writer(workers, kafka.bootstrap, topic, "--sticky-ms", "60000")
    stub = sale_stub(stubs, channel_for(w.target))
    products = [f"sku-{i}" for i in range(24)]
    for p in products:
        assert stub.ProcesarVenta(sale(stubs, producto_id=p), timeout=DEADLINE).estado == "almacenada"
    records = read_records(kafka.bootstrap, topic, len(products))
    assert sorted(r.key().decode() for r in records) == sorted(products)
    assert len({r.partition() for r in records}) == 1


def test_sticky_zero_partitions_by_key(workers, kafka, topic, stubs, channel_for):
    # --sticky-ms 0: librdkafka's partitioner by key: one product, one partition; 24 products
    # over 6 partitions use more than one.
    w = start_writer(workers, kafka.bootstrap, topic, "--sticky-ms", "0")
    stub = sale_stub(stubs, channel_for(w.target))
    products = [f"sku-{i % 24}" for i in range(48)]
    for p in products:
        assert stub.ProcesarVenta(sale(stubs, producto_id=p), timeout=DEADLINE).estado == "almacenada"
    by_key = collections.defaultdict(set)
    for r in read_records(kafka.bootstrap, topic, len(products)):
        by_key[r.key().decode()].add(r.partition())
    assert all(len(parts) == 1 for parts in by_key.values()), by_key
    assert len(set().union(*by_key.values())) > 1


def _client_ports(grpc_port):
    """Client ports of the TCP connections to `grpc_port` that are open or were closed lately.
    A closed connection stays listed (TIME_WAIT) only on the side that closed it first: the
    client's socket after a GOAWAY it acted on, the writer's when it closed first; so both sides
    are read, each giving the client's port."""
    return {peer if local.rsplit(":", 1)[1] == str(grpc_port) else local
            for _, local, peer in tcp_sockets(grpc_port)}


def test_aged_connections_are_replaced_without_failing_a_call(workers, kafka, topic, stubs, channel_for):
    """--max-connection-age-ms: the writer sends GOAWAY to a client connection older than that
    (calls in flight still answered), so a stock gRPC client connects again, which is when the
    bridge resolves its writers' headless Service again and finds new pods. Every call of a
    steady stream across those reconnections succeeds."""
    w = start_writer(workers, kafka.bootstrap, topic, "--max-connection-age-ms", "700")
    port = int(w.target.rsplit(":", 1)[1])
    stub = sale_stub(stubs, channel_for(w.target))
    codes = collections.Counter()
    end = time.monotonic() + 4
    while time.monotonic() < end:
        codes[call_code(stub.ProcesarVenta, sale(stubs), timeout=DEADLINE)] += 1
        time.sleep(0.02)
    assert set(codes) == {OK}, codes
    assert len(_client_ports(port)) >= 3, "the client kept one connection: no GOAWAY came"


def test_sale_without_sale_id_gets_a_fresh_one(workers, kafka, topic, stubs, channel_for):
    w = start_writer(workers, kafka.bootstrap, topic)
    stub = sale_stub(stubs, channel_for(w.target))
    for _ in range(2):
        assert stub.ProcesarVenta(sale(stubs), timeout=DEADLINE).estado == "almacenada"
    ids = [headers(r)["sale-id"] for r in read_records(kafka.bootstrap, topic, 2)]
    assert len(set(ids)) == 2
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


BAD_SALES = [
    ("categoria", dict(categoria=0)),
    ("categoria", dict(categoria=9)),
    ("producto_id", dict(producto_id="")),
    ("producto_id", dict(producto_id="x" * 65)),
    ("producto_id", dict(producto_id="tab\there")),
    ("precio", dict(precio=0.0)),
    ("precio", dict(precio=-3.0)),
    ("precio", dict(precio=math.nan)),
    ("precio", dict(precio=math.inf)),
    ("precio", dict(precio=1_000_000.01)),
    ("cantidad_vendida", dict(cantidad_vendida=0)),
    ("cantidad_vendida", dict(cantidad_vendida=-4)),
    ("cantidad_vendida", dict(cantidad_vendida=100_001)),
]


def test_invalid_sales_are_refused_and_never_stored(workers, kafka, topic, stubs, channel_for):
    w = start_writer(workers, kafka.bootstrap, topic)
    channel = channel_for(w.target)
    stub = sale_stub(stubs, channel)
    refused = 0
    for field, fields in BAD_SALES:
        with pytest.raises(grpc.RpcError) as e:
            stub.ProcesarVenta(sale(stubs, **fields), timeout=DEADLINE)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, e.value)
        assert e.value.details().startswith(field), (fields, e.value.details())
        refused += 1
    # A sale id that cannot be a Kafka header value of ours.
    with pytest.raises(grpc.RpcError) as e:
        stub.ProcesarVenta(sale(stubs), metadata=[("x-sale-id", "y" * 65)], timeout=DEADLINE)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "x-sale-id" in e.value.details()
    # Bytes that are no ProductSaleRequest at all.
    raw = channel.unary_unary(f"/{SERVICE}/ProcesarVenta")
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\xff\xff\xff\xff", timeout=DEADLINE)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    refused += 2

    # One valid sale after them: when it is stored, it must be the only record.
    assert stub.ProcesarVenta(sale(stubs, producto_id="after"), timeout=DEADLINE).estado == "almacenada"
    assert record_count(kafka.bootstrap, topic) == 1
    assert read_records(kafka.bootstrap, topic, 1)[0].key() == b"after"
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="INVALID_ARGUMENT"}') == refused
               and metric(w, 'sp_writer_requests_total{code="OK"}') == 1, what="codes counted")


def test_health_check(workers, kafka, topic, stubs, channel_for):
    w = start_writer(workers, kafka.bootstrap, topic)
    channel = channel_for(w.target)
    serving = stubs.health.HealthCheckResponse.SERVING
    assert health_status(stubs, channel) == serving
    assert health_status(stubs, channel, SERVICE) == serving
    with pytest.raises(grpc.RpcError) as e:
        health_status(stubs, channel, "no.such.Service")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert call_code(channel.unary_unary("/no.such.Service/Method"), b"", timeout=DEADLINE) == \
        grpc.StatusCode.UNIMPLEMENTED


def test_starts_without_kafka_and_is_not_ready(workers, stubs, channel_for):
    w = start_writer(workers, f"127.0.0.1:{free_port()}", "sales", ready=False)
    wait_until(lambda: http_get(w.url("/healthz"))[0] == 200, 60, what="/healthz")
    status, body = http_get(w.url("/readyz"))
    assert status == 503 and "kafka" in body
    assert health_status(stubs, channel_for(w.target)) == stubs.health.HealthCheckResponse.NOT_SERVING
    assert metric(w, "sp_writer_kafka_up") == 0


def test_kafka_stopped_then_back(workers, own_kafka, stubs, channel_for):
    topic = own_kafka.create_topic("writer-outage", partitions=3)
    w = start_writer(workers, own_kafka.bootstrap, topic, "--delivery-timeout-ms", "3000")
    channel = channel_for(w.target)
    stub = sale_stub(stubs, channel)
    assert stub.ProcesarVenta(sale(stubs), timeout=DEADLINE).estado == "almacenada"

    own_kafka.stop()
    # Longer deadline than the delivery timeout: the writer says UNAVAILABLE itself. Shorter:
    # gRPC ends the call at the deadline. Never OK, never later than the deadline.
    for deadline in (12.0, 1.5):
        started = time.monotonic()
        code = call_code(stub.ProcesarVenta, sale(stubs), metadata=[("x-sale-id", new_sale_id())],
                         timeout=deadline)
        elapsed = time.monotonic() - started
        assert code in OUTAGE_CODES, code
        assert elapsed < deadline + 2.0, elapsed
        if deadline == 12.0:
            assert code == grpc.StatusCode.UNAVAILABLE
    not_serving = stubs.health.HealthCheckResponse.NOT_SERVING
    wait_until(lambda: health_status(stubs, channel) == not_serving, 60, what="NOT_SERVING")
    assert http_get(w.url("/readyz"))[0] == 503
    assert metric(w, 'sp_writer_requests_total{code="UNAVAILABLE"}') >= 1
    assert metric(w, "sp_writer_kafka_delivery_errors_total") >= 1

    own_kafka.start()
    wait_until(lambda: health_status(stubs, channel) == stubs.health.HealthCheckResponse.SERVING,
               120, interval=0.5, what="SERVING again")
    codes = []

    def stored_once():
        codes.append(call_code(stub.ProcesarVenta, sale(stubs), timeout=10))
        return codes[-1] == OK

    wait_until(stored_once, 120, interval=0.5, what="a sale stored after the outage")
    assert set(codes) <= OUTAGE_CODES | {OK}, codes
    w.wait_ready(60)


def test_200_concurrent_calls(workers, kafka, topic, stubs, channel_for):
    w = start_writer(workers, kafka.bootstrap, topic)
    stub = sale_stub(stubs, channel_for(w.target))
    ids = [new_sale_id() for _ in range(200)]
    futures = [stub.ProcesarVenta.future(sale(stubs, producto_id=f"sku-{i % 17}", precio=1.0 + i),
                                         metadata=[("x-sale-id", sid)], timeout=60)
               for i, sid in enumerate(ids)]
    codes = collections.Counter(f.code() for f in futures)
    assert codes == {OK: 200}, codes
    assert all(f.result().estado == "almacenada" for f in futures)
    assert record_count(kafka.bootstrap, topic) == 200
    records = read_records(kafka.bootstrap, topic, 200)
    assert sorted(headers(r)["sale-id"] for r in records) == sorted(ids)
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="OK"}') == 200, what="200 OK counted")
    assert metric(w, "sp_writer_request_duration_seconds_count") == 200
    assert metric(w, "sp_writer_in_flight") == 0


def test_in_flight_bound_answers_resource_exhausted(workers, kafka, topic, stubs, channel_for):
    # One sale in flight at most, held for a second by the producer's linger.
    w = start_writer(workers, kafka.bootstrap, topic, "--max-in-flight", "1", "--linger-ms", "1000")
    stub = sale_stub(stubs, channel_for(w.target))
    futures = [stub.ProcesarVenta.future(sale(stubs), timeout=DEADLINE) for _ in range(30)]
    codes = collections.Counter(f.code() for f in futures)
    assert set(codes) <= {OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert codes[OK] >= 1 and codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= 1, codes
    assert record_count(kafka.bootstrap, topic) == codes[OK]
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="RESOURCE_EXHAUSTED"}') ==
               codes[grpc.StatusCode.RESOURCE_EXHAUSTED], what="refusals counted")


def test_sigterm_under_load_loses_no_acknowledged_sale(workers, kafka, topic, stubs):
    w = start_writer(workers, kafka.bootstrap, topic)
    channel = grpc.insecure_channel(w.target)
    stub = sale_stub(stubs, channel)
    acked, failed = [], []
    window = threading.BoundedSemaphore(64)
    stop = threading.Event()

    def finished(future, sale_id):
        code = future.code()
        (acked if code == OK else failed).append(sale_id if code == OK else code)
        window.release()

    def load():
        i = 0
        while not stop.is_set():
            if not window.acquire(timeout=0.2):
                continue
            sid = new_sale_id()
            f = stub.ProcesarVenta.future(sale(stubs, producto_id=f"sku-{i % 23}"),
                                          metadata=[("x-sale-id", sid)], timeout=DEADLINE)
            f.add_done_callback(lambda f, sid=sid: finished(f, sid))
            i += 1

    loader = threading.Thread(target=load)
    loader.start()
    try:
        wait_until(lambda: len(acked) >= 300, 120, what="300 sales stored under load")
        w.proc.send_signal(signal.SIGTERM)
        exit_code = w.proc.wait(120)
    finally:
        stop.set()
        loader.join()
    for _ in range(64):  # every call answered, one way or another
        assert window.acquire(timeout=DEADLINE + 10)
    channel.close()
    assert exit_code == 0, w.logs()[-3000:]
    # Refused after the signal: UNAVAILABLE from the closed port or GOAWAY; CANCELLED when gRPC
    # core drops a call that arrived at the moment of shutdown, before the writer saw it.
    assert set(failed) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, \
        collections.Counter(failed)
    stored = {headers(r)["sale-id"] for r in
              read_records(kafka.bootstrap, topic, record_count(kafka.bootstrap, topic))}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged sales are not in Kafka"
    assert any(e["event"] == "stopped" for e in w.log_events())


# --- ProcesarLote: the bridge's batches, each sale its own record and its own answer ---

def test_batch_stores_each_sale_and_answers_each_on_its_own(workers, kafka, topic, stubs,
                                                            channel_for):
    w = start_writer(workers, kafka.bootstrap, topic)
    stub = batch_stub(stubs, channel_for(w.target))
    good = {f"b-{i}": sale(stubs, categoria=1 + i % 4, producto_id=f"sku-{i}", precio=1.5 + i)
            for i in range(8)}
    items = list(good.items())
    items.insert(1, ("bad-price", sale(stubs, precio=-1.0)))
    items.insert(3, ("y" * 65, sale(stubs)))
    items.insert(5, ("junk", b"\xff\xff\xff\xff"))
    items.append(("", sale(stubs, producto_id="no-id")))
    reply = stub.ProcesarLote(sale_batch(stubs, items), timeout=DEADLINE)
    codes = [r.code for r in reply.results]
    inv = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert codes == [0, inv, 0, inv, 0, inv, 0, 0, 0, 0, 0, 0], reply
    assert reply.results[1].details.startswith("precio")
    assert "sale_id" in reply.results[3].details
    assert reply.results[5].details == "malformed ProductSaleRequest"
    for r in reply.results:
        if r.code == 0:
            assert stubs.pb.ProductSaleResponse.FromString(r.reply).estado == "almacenada"
        else:
            assert r.reply == b""

    # Answered only after Kafka's ack: every OK sale is already in the topic, once, with its id.
    assert record_count(kafka.bootstrap, topic) == 9
    by_id = {headers(r)["sale-id"]: r for r in read_records(kafka.bootstrap, topic, 9)}
    assert len(by_id) == 9
    for sale_id, request in good.items():
        assert by_id[sale_id].value() == request.SerializeToString()
        assert by_id[sale_id].key() == request.producto_id.encode()
    [fresh] = [i for i in by_id if i not in good]
    assert len(fresh) == 32 and by_id[fresh].key() == b"no-id"
    # Counted per sale; the batch itself once.
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="OK"}') == 9
               and metric(w, 'sp_writer_requests_total{code="INVALID_ARGUMENT"}') == 3,
               what="each sale counted")
    assert metric(w, "sp_writer_batches_total") == 1
    assert metric(w, "sp_writer_batch_sales_total") == 12
    assert metric(w, "sp_writer_request_duration_seconds_count") == 1
    assert metric(w, "sp_writer_in_flight") == 0


def test_batch_refused_whole(workers, kafka, topic, stubs, channel_for):
    w = start_writer(workers, kafka.bootstrap, topic, "--max-in-flight", "5")
    channel = channel_for(w.target)
    stub = batch_stub(stubs, channel)
    for n in (0, 61):
        with pytest.raises(grpc.RpcError) as e:
            stub.ProcesarLote(sale_batch(stubs, [(f"s{i}", sale(stubs)) for i in range(n)]),
                              timeout=DEADLINE)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    raw = channel.unary_unary("/salespipeline.SaleBatchService/ProcesarLote")
    assert call_code(raw, b"\xff\x00junk", timeout=DEADLINE) == grpc.StatusCode.INVALID_ARGUMENT
    # More sales than the in-flight bound: none taken, each counted as refused.
    with pytest.raises(grpc.RpcError) as e:
        stub.ProcesarLote(sale_batch(stubs, [(f"s{i}", sale(stubs)) for i in range(6)]),
                          timeout=DEADLINE)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reply = stub.ProcesarLote(sale_batch(stubs, [(f"ok{i}", sale(stubs)) for i in range(5)]),
                              timeout=DEADLINE)
    assert [r.code for r in reply.results] == [0] * 5
    assert record_count(kafka.bootstrap, topic) == 5
    assert sorted(headers(r)["sale-id"] for r in read_records(kafka.bootstrap, topic, 5)) == \
        [f"ok{i}" for i in range(5)]
    # Sales counted: 6 busy; 61 + 1 for the empty batch + 1 for the junk refused.
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="RESOURCE_EXHAUSTED"}') == 6
               and metric(w, 'sp_writer_requests_total{code="INVALID_ARGUMENT"}') == 63
               and metric(w, 'sp_writer_requests_total{code="OK"}') == 5, what="refusals counted")
    assert metric(w, "sp_writer_batches_total") == 1


def test_batch_with_kafka_stopped_answers_each_sale_unavailable(workers, own_kafka, stubs,
                                                                channel_for):
    topic = own_kafka.create_topic("writer-batch-outage", partitions=3)
    w = start_writer(workers, own_kafka.bootstrap, topic, "--delivery-timeout-ms", "3000")
    stub = batch_stub(stubs, channel_for(w.target))
    assert [r.code for r in stub.ProcesarLote(sale_batch(stubs, [("first", sale(stubs))]),
                                              timeout=DEADLINE).results] == [0]
    own_kafka.stop()
    started = time.monotonic()
    reply = stub.ProcesarLote(sale_batch(stubs, [(new_sale_id(), sale(stubs)) for _ in range(4)]),
                              timeout=DEADLINE)
    assert time.monotonic() - started < 12.0
    assert [r.code for r in reply.results] == [grpc.StatusCode.UNAVAILABLE.value[0]] * 4, reply
    assert all("kafka did not store the sale" in r.details and r.reply == b""
               for r in reply.results)
    wait_until(lambda: metric(w, 'sp_writer_requests_total{code="UNAVAILABLE"}') == 4,
               what="each sale counted UNAVAILABLE")
    own_kafka.start()
