"""Helpers for the ingest tests: a STOCK grpcio ProductSaleService server, HTTP posting, and what a
sale should look like once it reached the server."""
import importlib
import json
import sys
import threading
import time
import types
from concurrent import futures

import grpc
import requests

from harness import ROOT

SALE = {"categoria": "Electronica", "producto_id": "tv-55", "precio": 499.99, "cantidad_vendida": 2}
CATEGORIES = {"electronica": 1, "ropa": 2, "hogar": 3, "belleza": 4}


def generate_pb(out):
    """blackfriday_pb2 and blackfriday_pb2_grpc, generated from proto/blackfriday.proto into `out`."""
    from grpc_tools import protoc
    rc = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}",
                      f"--grpc_python_out={out}", str(ROOT / "proto" / "blackfriday.proto")])
    assert rc == 0, "grpc_tools.protoc failed"
    sys.path.insert(0, str(out))
    return types.SimpleNamespace(pb2=importlib.import_module("blackfriday_pb2"),
                                 grpc=importlib.import_module("blackfriday_pb2_grpc"))


class StockServer:
    """A stock grpcio server for blackfriday.ProductSaleService. It records every call it receives
    (fields + x-sale-id) and answers by `mode`: "ok", or a gRPC status name such as
    "INVALID_ARGUMENT"; `delay` seconds first (cut short when the server stops)."""

    def __init__(self, pb, mode="ok", delay=0.0, workers=64, port=0):
        self.pb = pb
        self.mode = mode
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                  maximum_concurrent_rpcs=None)
        servicer = type("Servicer", (pb.grpc.ProductSaleServiceServicer,),
                        {"ProcesarVenta": lambda _self, req, ctx: self._handle(req, ctx)})
        pb.grpc.add_ProductSaleServiceServicer_to_server(servicer(), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _handle(self, req, ctx):
        md = dict(ctx.invocation_metadata())
        call = {"categoria": req.categoria, "producto_id": req.producto_id, "precio": req.precio,
                "cantidad_vendida": req.cantidad_vendida, "sale_id": md.get("x-sale-id")}
        with self.lock:
            self.calls.append(call)
        if self.delay:
            self.released.wait(self.delay)
        if self.mode == "ok":
            return self.pb.pb2.ProductSaleResponse(estado=f"guardada {req.producto_id}")
        code = getattr(grpc.StatusCode, self.mode)
        ctx.abort(code, f"{self.mode.lower()}: precio must be a number greater than 0")

    def received(self):
        with self.lock:
            return list(self.calls)

    def stop(self):
        self.released.set()
        self.server.stop(0).wait()


class BatchServer:
    """A grpcio server for our salespipeline.SaleBatchService (code from proto/intake.proto) that
    also serves ProductSaleService. It records every call and answers a ProcesarLote call with
    `answer(batch, context)`: a SaleResults, or it aborts the call itself. `arrivals` has a
    (sales, calls under way) pair per ProcesarLote call as it came, itself included."""

    def __init__(self, stubs, answer, delay=0.0):
        self.stubs = stubs
        self.answer = answer
        self.delay = delay
        self.batches, self.sales, self.arrivals = [], [], []
        self.under_way = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        batch_servicer = type("BatchServicer", (stubs.intake_grpc.SaleBatchServiceServicer,),
                              {"ProcesarLote": lambda _self, req, ctx: self._batch(req, ctx)})
        sale_servicer = type("SaleServicer", (stubs.pb_grpc.ProductSaleServiceServicer,),
                             {"ProcesarVenta": lambda _self, req, ctx: self._sale(req, ctx)})
        stubs.intake_grpc.add_SaleBatchServiceServicer_to_server(batch_servicer(), self.server)
        stubs.pb_grpc.add_ProductSaleServiceServicer_to_server(sale_servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _batch(self, req, ctx):
        items = [(i.sale_id, self.stubs.pb.ProductSaleRequest.FromString(i.sale)) for i in req.items]
        with self.lock:
            self.batches.append(items)
            self.under_way += 1
            self.arrivals.append((len(items), self.under_way))
        try:
            if self.delay:
                self.released.wait(self.delay)
            return self.answer(items, ctx)
        finally:
            with self.lock:
                self.under_way -= 1

    def _sale(self, req, ctx):
        with self.lock:
            self.sales.append((dict(ctx.invocation_metadata()).get("x-sale-id"), req))
        return self.stubs.pb.ProductSaleResponse(estado="one by one")

    def stop(self):
        self.released.set()
        self.server.stop(0).wait()


def all_stored(stubs):
    """A BatchServer answer: every sale stored."""
    def answer(items, ctx):
        out = stubs.intake.SaleResults()
        for _ in items:
            out.results.add(code=0, reply=stubs.pb.ProductSaleResponse(estado="x").SerializeToString())
        return out
    return answer


def post(worker, body, content_type="application/json", headers=None, path="/ventas",
         timeout=30, session=None):
    """POSTs `body` (a dict is sent as JSON); returns the requests.Response."""
    data = json.dumps(body) if isinstance(body, dict) else body
    hdrs = dict(headers or {})
    if content_type is not None:
        hdrs["Content-Type"] = content_type
    return (session or requests).post(worker.url(path), data=data, headers=hdrs, timeout=timeout)


def expected_fields(sale):
    """The fields a stock server should receive for a valid JSON sale."""
    cat = sale["categoria"]
    cat = int(cat) if isinstance(cat, int) or str(cat).isdigit() else CATEGORIES[cat.lower()]
    return {"categoria": cat, "producto_id": sale["producto_id"], "precio": float(sale["precio"]),
            "cantidad_vendida": int(sale["cantidad_vendida"])}


def received_fields(call):
    return {k: call[k] for k in ("categoria", "producto_id", "precio", "cantidad_vendida")}


def make_sales(n, prefix="p"):
    """`n` valid sales, varied in every field and in how categoria is written."""
    names = ["Electronica", "ropa", "HOGAR", "Belleza", 1, 2, 3, 4, "4"]
    return [{"categoria": names[i % len(names)], "producto_id": f"{prefix}-{i}",
             "precio": round(0.01 + (i * 7919 % 100000) / 7.0, 2),
             "cantidad_vendida": 1 + (i * 31) % 100000, "ignored": i}
            for i in range(n)]


_local = threading.local()


def _session():
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def post_many(worker, sales, concurrency=8, headers=None):
    """POSTs every sale, `concurrency` at a time, each thread on its own keep-alive session.
    Returns the responses in the order of `sales`."""
    with futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda s: post(worker, s, headers=headers, session=_session()), sales))


def timed(fn, *args, **kw):
    """(fn's result, seconds it took)."""
    t = time.monotonic()
    out = fn(*args, **kw)
    return out, time.monotonic() - t
