"""Measures the writer alone: N ProcesarVenta calls from grpcio (asyncio) with C concurrent, against
a running Kafka. Not a test (no assertions); prints latency percentiles, calls/s and the writer's RSS.

    .venv/bin/python tests/writer/bench_writer.py --bootstrap 127.0.0.1:9092 [--calls 2000] [--concurrency 64]

It creates a fresh topic, starts build/bin/writer (or --bin) on free ports, warms up, measures,
then stops the writer with SIGTERM and checks it exits 0."""
import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grpc  # noqa: E402
from writer_util import ROOT, Kafka, free_port, generate_stubs, http_get, wait_until  # noqa: E402


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def run_load(stubs, target, calls, concurrency):
    latencies = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = stubs.pb_grpc.ProductSaleServiceStub(channel)
        remaining = iter(range(calls))

        async def worker():
            for i in remaining:
                request = stubs.pb.ProductSaleRequest(categoria=1 + i % 4, producto_id=f"sku-{i % 500}",
                                                      precio=10.0 + i % 90, cantidad_vendida=1 + i % 5)
                started = time.perf_counter()
                await stub.ProcesarVenta(request, metadata=[("x-sale-id", uuid.uuid4().hex)], timeout=30)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--bin", default=str(ROOT / "build" / "bin" / "writer"))
    args = ap.parse_args()

    broker = Kafka(Path(tempfile.mkdtemp()))
    broker.bootstrap = args.bootstrap
    topic = broker.create_topic(f"bench-writer-{uuid.uuid4().hex[:8]}", partitions=6)
    stubs = generate_stubs(tempfile.mkdtemp())
    grpc_port, http_port = free_port(), free_port()
    log = open(Path(tempfile.mkdtemp()) / "writer.log", "wb")
    proc = subprocess.Popen([args.bin, "--grpc-port", str(grpc_port), "--http-port", str(http_port),
                             "--kafka-brokers", args.bootstrap, "--topic", topic, "--bind", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, LOG_LEVEL="warn"))
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{http_port}/readyz")[0] == 200, 60)
        target = f"127.0.0.1:{grpc_port}"
        asyncio.run(run_load(stubs, target, 200, args.concurrency))  # warm-up
        cpu_before = cpu_seconds(proc.pid)
        latencies, elapsed = asyncio.run(run_load(stubs, target, args.calls, args.concurrency))
        cpu = cpu_seconds(proc.pid) - cpu_before
        latencies.sort()
        rss, hwm = rss_kib(proc.pid)
        print(f"calls={args.calls} concurrency={args.concurrency} calls/s={args.calls / elapsed:.0f} "
              f"p50={percentile(latencies, 50) * 1000:.1f}ms p99={percentile(latencies, 99) * 1000:.1f}ms "
              f"max={latencies[-1] * 1000:.1f}ms writer_cpu={cpu / args.calls * 1e6:.0f}us/call "
              f"writer_rss={rss / 1024:.1f}MiB peak_rss={hwm / 1024:.1f}MiB")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
        print(f"writer exit code {code} (log: {log.name})")


if __name__ == "__main__":
    main()
