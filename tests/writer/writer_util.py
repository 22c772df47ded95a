"""Helpers for the writer tests: gRPC stubs generated at test time and starting a writer; the
topic readers (record_count, read_records, headers) live in harness."""
import importlib
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # tests/, for scripts run directly
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import (BIN_DIR, ROOT, SANITIZER_ENV, Kafka, free_port, headers, http_get,  # noqa: E402,F401
                     read_records, record_count, wait_until)

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


def metric(worker, series):
    return worker.metrics().get(series, 0.0)
