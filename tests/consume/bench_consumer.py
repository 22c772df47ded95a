#!/usr/bin/env python3
"""Consumer throughput: records/s from a pre-filled topic into Valkey, per batch size, with and
without WAIT for the replica; CPU and RSS of the consumer and CPU of the Valkey primary.

Not a test (no timed assertions in `make test`): run by hand or from `make bench`, e.g.

    .venv/bin/python tests/consume/bench_consumer.py --bootstrap 127.0.0.1:9092 \
        --valkey-port 6379 --replica-port 6380 --records 200000 --batches 100,500,2000

It pre-fills a fresh topic (6 partitions) with random protobuf sales once, then for each
(batch size, WAIT) empties Valkey, starts build/bin/consumer on a fresh group and times the
window from the first applied record to the last. Prints one JSON line per run and a table."""
import argparse
import json
import shlex
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from harness import free_port  # noqa: E402


import consume_helpers as helpers  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def valkey_pid(client):
    return int(client.info("server")["process_id"])


def run_once(args, topic, batch, wait, client):
    import valkey  # noqa: F401
    client.flushall()
    port = free_port()
    cmd = [str(Path(args.bin_dir) / "consumer"), "--kafka-brokers", args.bootstrap, "--topic", topic,
           "--group", f"bench-{batch}-{wait}-{time.monotonic_ns()}", "--valkey-url",
           f"redis://127.0.0.1:{args.valkey_port}", "--batch-size", str(batch),
           "--http-port", str(port), "--bind", "127.0.0.1", "--log-level", "warn"]
    if wait:
        cmd += ["--wait-replicas", "1", "--wait-timeout-ms", "1000"]
    cmd += shlex.split(args.consumer_args)
    log = open(Path(tempfile.gettempdir()) / f"bench-consumer-{batch}-{wait}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    vpid = valkey_pid(client)
    try:
        def applied():
            return sum(int(v) for k, v in client.hgetall("sp:offsets").items()
                       if k.rsplit(":", 1)[0] == topic)
        deadline = time.monotonic() + 600
        while applied() == 0:
            assert proc.poll() is None, f"consumer exited {proc.returncode}"
            assert time.monotonic() < deadline, "no record applied"
            time.sleep(0.005)
        t0, c0, v0, n0 = time.monotonic(), cpu_seconds(proc.pid), cpu_seconds(vpid), applied()
        while (n := applied()) < args.records:
            assert proc.poll() is None, f"consumer exited {proc.returncode}"
            assert time.monotonic() < deadline, f"only {n} of {args.records} applied"
            time.sleep(0.01)
        t1, c1, v1 = time.monotonic(), cpu_seconds(proc.pid), cpu_seconds(vpid)
        rss, hwm = status_kb(proc.pid, "VmRSS"), status_kb(proc.pid, "VmHWM")
        total = int(client.get("sp:total_sales") or 0)
    finally:
        proc.terminate()
        code = proc.wait(60)
        log.close()
    secs = t1 - t0
    return {"batch": batch, "wait_replicas": 1 if wait else 0, "records": n - n0,
            "seconds": round(secs, 3), "records_per_s": round((n - n0) / secs),
            "consumer_cpu_pct": round(100 * (c1 - c0) / secs, 1),
            "valkey_cpu_pct": round(100 * (v1 - v0) / secs, 1),
            "consumer_cpu_us_per_record": round(1e6 * (c1 - c0) / (n - n0), 2),
            "valkey_cpu_us_per_record": round(1e6 * (v1 - v0) / (n - n0), 2),
            "consumer_rss_mb": round(rss / 1024, 1), "consumer_peak_rss_mb": round(hwm / 1024, 1),
            "total_sales": total, "exit": code}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--valkey-port", type=int, required=True)
    ap.add_argument("--replica-port", type=int, help="only to check the replica is attached")
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--batches", default="100,500,2000")
    ap.add_argument("--waits", default="0,1", help="WAIT modes to run: 0 (off), 1 (WAIT 1)")
    ap.add_argument("--topic", help="reuse a topic already holding --records sales")
    ap.add_argument("--bin-dir", default=str(ROOT / "build" / "bin"))
    ap.add_argument("--consumer-args", default="", help="extra consumer flags, e.g. "
                    "'--series-interval-ms 1000' for one price point per product and second")
    args = ap.parse_args()

    import valkey
    client = valkey.Valkey(port=args.valkey_port, decode_responses=True, socket_timeout=30)
    topic = args.topic
    if not topic:
        from confluent_kafka.admin import AdminClient, NewTopic
        topic = f"bench-consumer-{time.monotonic_ns()}"
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result(60)

        class K:
            bootstrap = args.bootstrap
        t = time.monotonic()
        pb = helpers.protobuf_stubs(tempfile.mkdtemp(prefix="pb-"))
        sales = helpers.make_sales(args.records, seed=42, products_per_category=75)
        helpers.produce_sales(K, topic, pb, sales)
        print(f"# pre-filled {topic} with {args.records} sales in {time.monotonic() - t:.1f}s",
              file=sys.stderr)
    print(f"# load average before: {os.getloadavg()}", file=sys.stderr)
    results = []
    for wait in [int(w) for w in args.waits.split(",")]:
        for batch in [int(b) for b in args.batches.split(",")]:
            r = run_once(args, topic, batch, wait, client)
            print(json.dumps(r), flush=True)
            results.append(r)
    print(f"\n{'batch':>6} {'WAIT':>4} {'records/s':>10} {'consumer CPU%':>14} "
          f"{'valkey CPU%':>12} {'cons us/rec':>11} {'valkey us/rec':>13} {'RSS MB':>7} "
          f"{'peak RSS MB':>11}")
    for r in results:
        print(f"{r['batch']:>6} {r['wait_replicas']:>4} {r['records_per_s']:>10} "
              f"{r['consumer_cpu_pct']:>14} {r['valkey_cpu_pct']:>12} "
              f"{r['consumer_cpu_us_per_record']:>11} {r['valkey_cpu_us_per_record']:>13} "
              f"{r['consumer_rss_mb']:>7} {r['consumer_peak_rss_mb']:>11}")


if __name__ == "__main__":
    main()
