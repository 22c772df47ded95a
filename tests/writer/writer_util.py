"""Helpers for the writer tests: gRPC stubs generated at test time, starting a writer, and
reading a topic back with a real Kafka consumer."""
import importlib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # tests/, for scripts run directly
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import BIN_DIR, ROOT, SANITIZER_ENV, Kafka, free_port, http_get, wait_until  # noqa: E402,F401

SERVICE = "blackfriday.ProductSaleService"


def generate_stubs(out_dir):
    """Python modules for proto/blackfriday.proto, proto/health.proto and proto/intake.proto (the
    api -> bridge and bridge -> writer batches), made by grpc_tools."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
                    str(ROOT / "proto" / "blackfriday.proto"), str(ROOT / "proto" / "health.proto"),
                    str(ROOT / "proto" / "intake.proto")],
                   check=True)
    sys.path.insert(0, str(out_dir))
    names = ["blackfriday_pb2", "blackfriday_pb2_grpc", "health_pb2", "health_pb2_grpc", "intake_pb2",
             "intake_pb2_grpc"]
    pb, pb_grpc, health, health_grpc, intake, intake_grpc = (importlib.import_module(n) for n in names)
    return SimpleNamespace(pb=pb, pb_grpc=pb_grpc, health=health, health_grpc=health_grpc,
                           intake=intake, intake_grpc=intake_grpc)


def start_writer(workers, bootstrap, topic, *args, ready=True, env=None):
    """A writer on free ports; `w.target` is its gRPC address."""
    grpc_port, http_port = free_port(), free_port()
    w = workers("writer", ["--grpc-port", str(grpc_port), "--http-port", str(http_port),
                           "--kafka-brokers", bootstrap, "--topic", topic, *args],
                http_port=http_port, env=env)
    w.target = f"127.0.0.1:{grpc_port}"
    if ready:
        w.wait_ready(60)
    return w


def sale(stubs, categoria=1, producto_id="sku-1", precio=19.99, cantidad_vendida=2):
    return stubs.pb.ProductSaleRequest(categoria=categoria, producto_id=producto_id,
                                       precio=precio, cantidad_vendida=cantidad_vendida)


def sale_batch(stubs, items):
    """A salespipeline.SaleBatch of (sale_id, ProductSaleRequest or raw bytes) items."""
    batch = stubs.intake.SaleBatch()
    for sale_id, item in items:
        batch.items.add(sale_id=sale_id,
                        sale=item if isinstance(item, bytes) else item.SerializeToString())
    return batch


def new_sale_id():
    return uuid.uuid4().hex


def _consumer(bootstrap):
    from confluent_kafka import Consumer
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"writer-test-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def record_count(bootstrap, topic):
    """Records in the topic: the sum of the partitions' high watermarks (no transactions)."""
    from confluent_kafka import TopicPartition
    c = _consumer(bootstrap)
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts)
    finally:
        c.close()


def read_records(bootstrap, topic, count, timeout=60.0):
    """The topic's first `count` records, read from every partition's beginning."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    c = _consumer(bootstrap)
    records = []
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert not m.error(), m.error()
            records.append(m)
    finally:
        c.close()
    assert len(records) >= count, f"read {len(records)} of {count} records from {topic}"
    return records


def headers(record):
    return {k: v.decode() for k, v in (record.headers() or [])}


def metric(worker, series):
    return worker.metrics().get(series, 0.0)
