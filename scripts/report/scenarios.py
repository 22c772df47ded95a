"""The comparisons of docs/informe.md, each a function that takes a running Stack and returns
(tables, notes): the rows (dicts) of each of its CSV files, in the order render.SCENARIO_FILES
names them, and a dict of remarks for its JSON file. They change the stack's shape only through local.sh's knobs
(SP_PARTITIONS, SP_TOPIC, SP_WRITER_GROUPS, SP_VALKEY_REPLICA, SP_VALKEY_AOF) and the workers'
own environment variables (KAFKA_LINGER_MS, KAFKA_ACKS, KAFKA_IDEMPOTENCE, KAFKA_STICKY_MS,
VALKEY_WAIT_REPLICAS, BRIDGE_BATCH_MAX, BRIDGE_CONNECTIONS), restarting only the parts a
change concerns."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from stack import (GRPC_THREADS, ROOT, Poller, Sampler, counter_delta, cpu_per_sale,
                   histogram_delta, histogram_quantile, log, machine_busy_pct, metrics, parse_wrk,
                   peak_rss_mb, run_wrk, wrk_cmd, capture_bytes, capture_start, capture_stop,
                   wait_until)

WORKERS = ("writer-a", "writer-b-1", "writer-b-2", "consumer")


def measure(stack, url, connections, seconds, sampler=None):
    """One wrk run against `url`; what every part spent, and what wrk saw."""
    sampler = sampler or Sampler(stack)
    before = sampler.snapshot()
    lag = Poller(lambda: metrics(stack.vars["CONSUMER_URL"]).get("sp_consumer_lag", 0.0))
    lag.start()
    result = run_wrk(url, connections, seconds)
    lag_samples = lag.stop()
    after = sampler.snapshot()
    row = {"connections": connections, **result,
           "sales_per_s": round(result["accepted"] / result["seconds"], 1),
           "machine_busy_pct": round(machine_busy_pct(before, after), 1),
           "consumer_lag_max": int(max((v for _, v in lag_samples), default=0))}
    for part, us in cpu_per_sale(before, after, result["accepted"]).items():
        row[f"cpu_us_{part}"] = round(us, 1)
    for part in after["cpu"]:
        if stack.alive(part):
            row[f"peak_rss_mb_{part}"] = round(peak_rss_mb(stack.pid(part)), 1)
    # Which part spent most, and the errors seen: "what broke first" at this load.
    parts = {k[7:]: v for k, v in row.items() if k.startswith("cpu_us_")
             and k[7:] not in ("machine", "writers", "valkey")}
    row["top_part"] = max(parts, key=parts.get) if parts else ""
    row["_before"], row["_after"] = before, after
    return row


def warm_up(stack, seconds):
    """What `make bench` does before measuring: the broker's JIT and every hop's first
    connections, at full load for 5 s (as long as a run, if shorter), not recorded."""
    run_wrk(stack.vars["API_URL"], 64, min(5, seconds))


def strip(row):
    return {k: v for k, v in row.items() if not k.startswith("_")}


def layer_latency(row, part, name):
    """Mean and bucket-estimated p50/p99 (ms) of a worker's own duration histogram over a run."""
    b = row["_before"]["metrics"].get(part, {})
    a = row["_after"]["metrics"].get(part, {})
    buckets, total, count = histogram_delta(b, a, name)
    if count <= 0:
        return None, None, None
    q = lambda x: round(1000 * histogram_quantile(buckets, count, x), 2)  # noqa: E731
    return round(1000 * total / count, 2), q(0.5), q(0.99)


# ----------------------------------------------------------------------------------- Kafka

KAFKA_CONFIGS = [
    # name, partitions, linger.ms, acks, idempotence, the writers' sticky window (ms; 0: the
    # partition by key, librdkafka's partitioner); the first is what the pipeline runs
    ("base: 6 part., sticky 10 ms, linger 1, acks=all+idemp.", 6, 1, -1, 1, 10),
    ("partición por clave (sticky 0)", 6, 1, -1, 1, 0),
    ("1 partición", 1, 1, -1, 1, 10),
    ("3 particiones", 3, 1, -1, 1, 10),
    ("linger.ms=0", 6, 0, -1, 1, 10),
    ("linger.ms=5", 6, 5, -1, 1, 10),
    ("linger.ms=20", 6, 20, -1, 1, 10),
    ("acks=all sin idempotencia", 6, 1, -1, 0, 10),
    ("acks=1 sin idempotencia", 6, 1, 1, 0, 10),
]


def dump_batches(stack, topic):
    """Every record batch of `topic` as the broker stored it: {partition: [(base, last, count,
    size)]}, read with Kafka's own DumpLogSegments over the topic's segment files."""
    data = stack.dir / "kafka" / "data"
    files = sorted(str(f) for f in data.glob(f"{topic}-*/*.log"))
    out = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "run-class",
                          "org.apache.kafka.tools.DumpLogSegments", "--files", ",".join(files)],
                         capture_output=True, text=True, check=True).stdout
    batches, part = {}, None
    for line in out.splitlines():
        m = re.match(rf"Dumping .*/{re.escape(topic)}-(\d+)/", line)
        if m:
            part = int(m.group(1))
            batches.setdefault(part, [])
            continue
        m = re.match(r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+) .* size: (\d+)", line)
        if m and part is not None:
            batches[part].append(tuple(int(x) for x in m.groups()))
    return batches


def batch_stats(batches, start, end):
    """Record batches whose first offset lies in [start[p], end[p]) of each partition."""
    n = records = size = singles = 0
    for p, items in batches.items():
        for base, _last, count, sz in items:
            if start.get(p, 0) <= base < end.get(p, 0):
                n += 1
                records += count
                size += sz
                singles += count == 1
    return {"batches": n, "records_in_batches": records,
            "records_per_batch": round(records / n, 2) if n else None,
            "bytes_per_batch": round(size / n) if n else None,
            "single_record_batches_pct": round(100 * singles / n, 1) if n else None}


def acks1_with_idempotence(stack):
    """What librdkafka says of acks=1 with enable.idempotence=true: the writer's start error."""
    env = dict(os.environ, KAFKA_ACKS="1", KAFKA_IDEMPOTENCE="true", GRPC_PORT="0", HTTP_PORT="0",
               BIND_ADDR="127.0.0.1", KAFKA_BROKERS=stack.vars["KAFKA_BROKERS"])
    p = subprocess.run([str(Path(stack.base_env["SP_BIN_DIR"]) / "writer")], env=env,
                       capture_output=True, text=True, timeout=30)
    last = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
    try:
        return p.returncode, json.loads(last[0])["msg"]
    except (ValueError, KeyError):
        return p.returncode, last[0]


def kafka(stack, loads, seconds):
    rows = []
    for i, (name, partitions, linger, acks, idem, sticky) in enumerate(KAFKA_CONFIGS):
        topic = f"sales-k{i}"
        log(f"kafka: {name} (topic {topic})")
        stack.stop(*WORKERS)
        stack.up(SP_TOPIC=topic, SP_PARTITIONS=partitions, KAFKA_LINGER_MS=linger,
                 KAFKA_ACKS=acks, KAFKA_IDEMPOTENCE=idem, KAFKA_STICKY_MS=sticky)
        if i == 0:
            warm_up(stack, seconds)
        run_wrk(stack.vars["API_URL"], 16, 1)  # new producers: metadata, connections
        marks = []
        for c in loads:
            start = stack.kafka_end_offsets(topic)
            row = measure(stack, stack.vars["API_URL"], c, seconds)
            marks.append((row, start, stack.kafka_end_offsets(topic)))
        batches = dump_batches(stack, topic)
        for row, start, end in marks:
            rows.append({"config": name, "partitions": partitions, "linger_ms": linger,
                         "acks": "all" if acks == -1 else acks, "idempotence": idem,
                         "sticky_ms": sticky,
                         **strip(row), **batch_stats(batches, start, end)})
    code, msg = acks1_with_idempotence(stack)
    note = {"acks1_idempotence_exit": code, "acks1_idempotence_message": msg}
    return (rows,), note


# ----------------------------------------------------------------------------------- Valkey

VALKEY_SETTINGS = [
    # name, replica, appendfsync ("no": no AOF), WAIT replicas
    ("primario solo, AOF everysec", 0, "everysec", 0),
    ("primario + réplica, WAIT 0", 1, "everysec", 0),
    ("primario + réplica, WAIT 1", 1, "everysec", 1),
    ("primario solo, AOF always", 0, "always", 0),
    ("primario solo, sin AOF", 0, "no", 0),
]


def fresh_valkey(stack, topic, replica, aof, wait):
    """Valkey started anew, empty, with the setting's knobs; writers and consumer on `topic`."""
    stack.stop(*WORKERS, "valkey-replica", "valkey-primary")
    for folder in ("valkey-primary", "valkey-replica"):
        for f in sorted((stack.dir / folder).glob("**/*"), reverse=True):
            f.rmdir() if f.is_dir() else f.unlink()
    stack.up(SP_TOPIC=topic, SP_VALKEY_REPLICA=replica, SP_VALKEY_AOF=aof,
             VALKEY_WAIT_REPLICAS=wait)


def drain(stack, wait, records, topic=None):
    """The consumer's top rate into this Valkey: tests/consume/bench_consumer.py (what
    `make bench` runs) drains a topic pre-filled with `records` sales, batch 500, with the
    setting's WAIT. The first call fills the topic; the next ones reuse it."""
    stack.stop("consumer")  # one writer into Valkey at a time (the bench empties it)
    cmd = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "tests" / "consume" / "bench_consumer.py"),
           "--bootstrap", stack.vars["KAFKA_BROKERS"], "--valkey-port", str(stack.port("valkey-primary")),
           "--records", str(records), "--batches", "500", "--waits", str(wait),
           "--bin-dir", stack.base_env["SP_BIN_DIR"]]
    if topic:
        cmd += ["--topic", topic]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    topic = topic or re.search(r"pre-filled (\S+)", p.stderr).group(1)
    r = json.loads(next(line for line in p.stdout.splitlines() if line.startswith("{")))
    return topic, {"drain_records": r["records"], "drain_seconds": r["seconds"],
                   "drain_records_per_s": r["records_per_s"],
                   "drain_cpu_us_consumer": r["consumer_cpu_us_per_record"],
                   "drain_cpu_us_valkey_primary": r["valkey_cpu_us_per_record"],
                   "drain_consumer_peak_rss_mb": r["consumer_peak_rss_mb"]}


def restart_same(stack, part, argv):
    """Starts `part` again with the command line it had (as its Deployment or VM would)."""
    logf = open(stack.dir / f"{part}.log", "ab")
    proc = subprocess.Popen(argv, cwd=stack.dir, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True)
    (stack.dir / f"{part}.pid").write_text(f"{proc.pid}\n")
    return proc


def crash(stack, topic, replica, seconds):
    """kill -9 of the Valkey primary under load: what the consumer had been told was applied,
    what the replica and the restarted primary hold, and what the dashboard ends with."""
    applied = lambda: metrics(stack.vars["CONSUMER_URL"]).get("sp_consumer_sales_applied_total", 0)  # noqa: E731
    valkey_errors = lambda: metrics(stack.vars["CONSUMER_URL"]).get("sp_consumer_valkey_errors_total", 0)  # noqa: E731
    rewinds0 = metrics(stack.vars["CONSUMER_URL"]).get("sp_consumer_rewinds_total", 0)
    # Valkey rewrites its process title, so its command line is taken from its own settings.
    argv = ["valkey-server"]
    for name in ("bind", "port", "dir", "appendonly", "appendfsync", "save"):
        argv += [f"--{name}", stack.valkey().config_get(name)[name]]
    base_applied = applied()
    wrk = subprocess.Popen(wrk_cmd(stack.vars["API_URL"], 16, seconds), stdout=subprocess.PIPE, text=True)
    out = {}
    try:
        # Under way: the consumer has applied a good number of this run's sales.
        wait_until(lambda: applied() >= base_applied + 2000, seconds, what="sales applied")
        errors0 = valkey_errors()
        stack.kill("valkey-primary")
        t_kill = time.monotonic()
        # The batch in hand fails; from then on the consumer's count stands still.
        wait_until(lambda: valkey_errors() > errors0, 10, what="the consumer to see Valkey gone")
        out["acknowledged_at_kill"] = int(applied())
        if replica:
            out["replica_at_kill"] = stack.valkey_offsets(topic, "valkey-replica")
        os.kill(stack.pid("consumer"), signal.SIGSTOP)
        try:
            restart_same(stack, "valkey-primary", argv)
            wait_until(lambda: stack.valkey().ping(), 60, what="the primary to load its data")
            out["restarted_primary"] = stack.valkey_offsets(topic)
            out["primary_down_seconds"] = round(time.monotonic() - t_kill, 2)
        finally:
            os.kill(stack.pid("consumer"), signal.SIGCONT)
        t_cont = time.monotonic()
        # Caught up: Valkey holds again what Kafka held when the consumer went on.
        stack.wait_consumed(topic)
        out["caught_up_seconds"] = round(time.monotonic() - t_cont, 2)
        stdout, _ = wrk.communicate(timeout=seconds + 60)
    finally:
        if wrk.poll() is None:
            wrk.kill()
    out["accepted_2xx"] = parse_wrk(stdout)["accepted"]
    out["kafka_records"] = stack.wait_consumed(topic)
    out["dashboard_total"] = int(stack.valkey().get("sp:total_sales") or 0)
    # The consumer's count and the stored offsets start together (fresh Valkey, fresh topic).
    out["lost_by_primary"] = max(0, out["acknowledged_at_kill"] - out["restarted_primary"])
    if replica:
        out["missing_on_replica"] = max(0, out["acknowledged_at_kill"] - out["replica_at_kill"])
    out["rewinds"] = int(metrics(stack.vars["CONSUMER_URL"]).get("sp_consumer_rewinds_total", 0) - rewinds0)
    return out


def valkey(stack, loads, seconds, drain_records=None):
    rows, drains, crashes = [], [], []
    drain_topic, drain_records = None, drain_records or 20000 * seconds
    for i, (name, replica, aof, wait) in enumerate(VALKEY_SETTINGS):
        topic = f"sales-v{i}"
        log(f"valkey: {name} (topic {topic})")
        fresh_valkey(stack, topic, replica, aof, wait)
        if i == 0:
            warm_up(stack, seconds)
        run_wrk(stack.vars["API_URL"], 16, 1)
        stack.wait_consumed(topic)
        setting = {"setting": name, "replica": replica, "appendfsync": aof, "wait": wait}
        for c in loads:
            before_consumer = metrics(stack.vars["CONSUMER_URL"])
            row = measure(stack, stack.vars["API_URL"], c, seconds)
            stack.wait_consumed(topic)
            after_consumer = metrics(stack.vars["CONSUMER_URL"])
            buckets, total, count = histogram_delta(before_consumer, after_consumer,
                                                    "sp_consumer_batch_seconds")
            applied = (after_consumer.get("sp_consumer_sales_applied_total", 0)
                       - before_consumer.get("sp_consumer_sales_applied_total", 0))
            p99 = histogram_quantile(buckets, count, 0.99)
            rows.append({**setting, **strip(row), "batches": int(count),
                         "sales_per_batch": round(applied / count, 1) if count else None,
                         "batch_ms_mean": round(1000 * total / count, 3) if count else None,
                         "batch_ms_p99": round(1000 * p99, 2) if p99 is not None else None})
        drain_topic, result = drain(stack, wait, drain_records, drain_topic)
        drains.append({**setting, **result})
        # The crash run starts from a consumer whose count equals what Valkey holds.
        stack.stop(*WORKERS)
        stack.valkey().flushall()
        topic = f"sales-v{i}-crash"
        stack.up(SP_TOPIC=topic)
        crashes.append({**setting, **crash(stack, topic, replica, max(2 * seconds, 8))})
    return (rows, drains, crashes), {}


# ------------------------------------------------------------------------------ REST vs gRPC

# The api's two ways to the bridge: one sale per POST /ventas (JSON), as many connections as
# wrk's largest load so that no sale waits for one (the REST hop at the same concurrency as
# the gRPC hop behind it); and the pipeline's default, up to 60 sales per POST /ventas/lote
# (protobuf) over 8 connections (common/contract.h).
PER_SALE = {"BRIDGE_BATCH_MAX": 1, "BRIDGE_CONNECTIONS": 64}
BATCHED = {"BRIDGE_BATCH_MAX": 60, "BRIDGE_CONNECTIONS": 8}

HOP_LAYOUTS = [
    # name, URL variable wrk calls (through the api: two REST hops; or straight to the
    # bridge), the api's settings (None: the api is not on the way)
    ("wrk → api → bridge → writer", "API_URL", PER_SALE),
    ("wrk → api → bridge → writer, lotes de hasta 60", "API_URL", BATCHED),
    ("wrk → bridge → writer (sin api)", "BRIDGE_URL", None),
]

# hop -> (the part that serves it, its counter of calls, its counter of sales answered 2xx).
# A batch is one call of the api -> bridge hop: the bridge's request histogram counts it once,
# while sp_http_requests_total counts each of its sales by its own status (the batch's 200 is
# not counted), so both counters are the same series for one sale per call.
HOP_COUNTERS = {
    "wrk→api": ("api", "sp_http_request_duration_seconds_count", 'sp_http_requests_total{code="202"}'),
    "api→bridge": ("bridge", "sp_http_request_duration_seconds_count", 'sp_http_requests_total{code="202"}'),
    "wrk→bridge": ("bridge", "sp_http_request_duration_seconds_count", 'sp_http_requests_total{code="202"}'),
    "bridge→writer": ("writer-a", "sp_writer_request_duration_seconds_count", 'sp_writer_requests_total{code="OK"}'),
}


def thread_groups(part, names):
    """A worker's threads by role (see docs/informe.md, "REST frente a gRPC")."""
    groups = {}
    for name, us in names.items():
        if name.startswith("MHD-worker"):
            g = "intake REST (libmicrohttpd)"
        elif name.startswith("MHD"):
            g = "admin HTTP"
        elif name in GRPC_THREADS:
            g = "hilos de gRPC"
        elif name.startswith("rdk:"):
            g = "librdkafka"
        else:
            g = {"api": "cliente libcurl + main", "bridge": "hilo CQ gRPC + main",
                 "writer-a": "hilo CQ gRPC + poll Kafka + main"}.get(part, "otros")
        groups[g] = groups.get(g, 0.0) + us
    return groups


def hop_protocol(hop, batched):
    if hop == "bridge→writer":
        return "gRPC (HTTP/2, lotes ProcesarLote)" if batched else "gRPC (HTTP/2, protobuf)"
    if hop == "api→bridge" and batched:
        return "REST (HTTP/1.1, lotes protobuf)"
    return "REST (HTTP/1.1, JSON)"


def hop_bytes(stack, layout, var, connections, seconds, hops_on_way, batched):
    """Bytes per call and per sale on each hop of a run of its own, from a capture of the hops'
    ports; calls and sales = what each hop's server counted over the capture."""
    pcap = stack.dir / "hops.pcap"
    urls = {"api": stack.vars["API_URL"], "bridge": stack.vars["BRIDGE_URL"],
            "writer-a": stack.writer_url("writer-a")}

    def counts():
        out = {}
        for hop in hops_on_way:
            part, calls, sales = HOP_COUNTERS[hop]
            m = metrics(urls[part])
            out[hop] = (m.get(calls, 0), m.get(sales, 0))
        return out
    before = counts()
    cap = capture_start(pcap, [stack.port(HOP_COUNTERS[hop][0]) for hop in hops_on_way])
    try:
        run_wrk(stack.vars[var], connections, seconds)
    finally:
        dropped = capture_stop(cap)
    after = counts()
    rows = []
    for hop in hops_on_way:
        part = HOP_COUNTERS[hop][0]
        calls = max(1, after[hop][0] - before[hop][0])
        sales = max(1, after[hop][1] - before[hop][1])
        b = capture_bytes(pcap, stack.port(part))
        wire = b["req_frames"] + b["resp_frames"]
        rows.append({"layout": layout, "connections": connections, "hop": hop,
                     "protocol": hop_protocol(hop, batched),
                     "calls": int(calls), "sales": int(sales),
                     "sales_per_call": round(sales / calls, 2),
                     "request_bytes_per_call": round(b["req_payload"] / calls, 1),
                     "response_bytes_per_call": round(b["resp_payload"] / calls, 1),
                     "wire_bytes_per_call": round(wire / calls, 1),
                     "payload_bytes_per_sale": round((b["req_payload"] + b["resp_payload"]) / sales, 1),
                     "wire_bytes_per_sale": round(wire / sales, 1),
                     "packets_in_per_call": round(b["req_packets"] / calls, 2),
                     "packets_out_per_call": round(b["resp_packets"] / calls, 2),
                     "packets_per_sale": round((b["req_packets"] + b["resp_packets"]) / sales, 3),
                     "packets_dropped": dropped})
    pcap.unlink()
    return rows


def hops(stack, loads, seconds):
    stack.up(SP_WRITER_GROUPS="writer-a", SP_TOPIC="sales-hops", **HOP_LAYOUTS[0][2])
    sampler = Sampler(stack, threads_of=("api", "bridge", "writer-a"))
    warm_up(stack, seconds)
    runs, byte_rows, cpu_rows = [], [], []
    for layout, var, api_env in HOP_LAYOUTS:
        log(f"hops: {layout}")
        if api_env and any(str(stack.knobs.get(k)) != str(v) for k, v in api_env.items()):
            stack.stop("api")
            stack.up(**api_env)
            run_wrk(stack.vars["API_URL"], 16, 1)  # the new api's connections to the bridge
        for c in loads:
            row = measure(stack, stack.vars[var], c, seconds, sampler)
            n = max(row["accepted"], 1)
            r = {"layout": layout, "bridge_batch_max": api_env["BRIDGE_BATCH_MAX"] if api_env else None,
                 "bridge_connections": api_env["BRIDGE_CONNECTIONS"] if api_env else None, **strip(row)}
            for part, hist in (("api", "sp_http_request_duration_seconds"),
                               ("bridge", "sp_http_request_duration_seconds"),
                               ("writer-a", "sp_writer_request_duration_seconds")):
                mean, p50, p99 = layer_latency(row, part, hist)
                key = part.split("-")[0]
                r[f"{key}_ms_mean"], r[f"{key}_ms_p50"], r[f"{key}_ms_p99"] = mean, p50, p99
            # Requests the bridge took over the run (sales, or batches of them) and the sales it
            # answered 2xx, both from its own counters (wrk misses the answers still in flight
            # when it stops).
            _, calls, sales = HOP_COUNTERS["api→bridge"]
            bridge_calls = counter_delta(row["_before"], row["_after"], "bridge", calls)
            bridge_sales = counter_delta(row["_before"], row["_after"], "bridge", sales)
            r["bridge_requests"] = int(bridge_calls)
            r["sales_per_bridge_request"] = round(bridge_sales / bridge_calls, 2) if bridge_calls else None
            runs.append(r)
            on_way = ["wrk→api", "api→bridge", "bridge→writer"] if api_env else ["wrk→bridge", "bridge→writer"]
            byte_rows += hop_bytes(stack, layout, var, c, min(seconds, 3), on_way,
                                   bool(api_env) and api_env["BRIDGE_BATCH_MAX"] > 1)
            for part in ("api", "bridge", "writer-a"):
                before = row["_before"]["threads"].get(part)
                after = row["_after"]["threads"].get(part)
                if not before or not after or row[f"cpu_us_{part}"] <= 0.5:
                    continue
                delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
                groups = thread_groups(part, delta)
                named = 0.0
                for g, us in sorted(groups.items()):
                    cpu_rows.append({"layout": layout, "connections": c, "part": part,
                                     "threads": g, "cpu_us_per_sale": round(us / n, 1)})
                    named += us / n
                rest = row[f"cpu_us_{part}"] - named
                if abs(rest) >= 0.5:
                    cpu_rows.append({"layout": layout, "connections": c, "part": part,
                                     "threads": "hilos terminados durante la corrida",
                                     "cpu_us_per_sale": round(rest, 1)})
    return (runs, byte_rows, cpu_rows), {}


# ----------------------------------------------------------------------------------- writers

WRITER_CONFIGS = [
    # name, SP_WRITER_GROUPS, the instance killed in the crash run
    ("1 réplica (writer-a)", "writer-a", "writer-a"),
    ("2 réplicas (writer-b)", "writer-b", "writer-b-1"),
]


def process_start(pid):
    """When `pid` started, in seconds of CLOCK_BOOTTIME (/proc/PID/stat field 22, in ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def writer_ok(stack, part):
    return metrics(stack.writer_url(part)).get('sp_writer_requests_total{code="OK"}')


def writers_crash(stack, victim, seconds):
    """kill -9 of one writer under load, restarted at once as its Deployment would: the answers
    clients got every 0.2 s, and how long until the restarted writer takes calls again."""
    api = stack.vars["API_URL"]

    def sample():
        m = metrics(api)
        return {"ok": m.get('sp_http_requests_total{code="202"}', 0),
                "err": sum(v for k, v in m.items() if k.startswith("sp_http_requests_total")
                           and re.search(r'code="(5\d\d|other)"', k)),
                **{w: writer_ok(stack, w) for w in stack.writers()}}
    poll = Poller(sample, 0.2)
    wrk = subprocess.Popen(wrk_cmd(api, 16, seconds), stdout=subprocess.PIPE, text=True)
    poll.start()
    t0 = time.monotonic()
    try:
        time.sleep(seconds / 3)  # a third of the run at full load before the crash
        t_kill = time.monotonic() - t0
        stack.kill(victim)
        stack.up()  # local.sh starts what is gone and waits for its /readyz
        t_ready = time.monotonic() - t0
        t_started = process_start(stack.pid(victim)) - (time.clock_gettime(time.CLOCK_BOOTTIME)
                                                        - (time.monotonic() - t0))
        stdout, _ = wrk.communicate(timeout=seconds + 60)
    finally:
        if wrk.poll() is None:
            wrk.kill()
        samples = poll.stop()
    timeline, prev = [], None
    for t, s in samples:
        if prev is not None:
            dt = t - prev[0]
            timeline.append({"t_s": round(t, 2), "ok_per_s": round((s["ok"] - prev[1]["ok"]) / dt, 1),
                             "errors_per_s": round((s["err"] - prev[1]["err"]) / dt, 1),
                             **{f"ok_per_s_{w}": round(((s.get(w) or 0) - (prev[1].get(w) or 0)) / dt, 1)
                                if s.get(w) is not None and prev[1].get(w) is not None else None
                                for w in stack.writers()}})
        prev = (t, s)
    err_times = [r["t_s"] for r in timeline if r["errors_per_s"] > 0]
    back = [r["t_s"] for r in timeline if r["t_s"] > t_ready and (r.get(f"ok_per_s_{victim}") or 0) > 0]
    result = parse_wrk(stdout)
    summary = {"killed": victim, "kill_at_s": round(t_kill, 2), "restarted_at_s": round(t_started, 2),
               "restarted_ready_at_s": round(t_ready, 2),
               "requests": result["requests"], "accepted": result["accepted"],
               "client_errors": result["non2xx"],
               "api_5xx": int(samples[-1][1]["err"] - samples[0][1]["err"]) if samples else None,
               "errors_from_s": err_times[0] if err_times else None,
               "errors_until_s": err_times[-1] if err_times else None,
               "victim_serving_again_at_s": back[0] if back else None}
    return timeline, summary


def writers(stack, loads, seconds):
    rows, timelines, crashes = [], [], []
    for i, (name, groups, victim) in enumerate(WRITER_CONFIGS):
        log(f"writers: {name}")
        stack.stop("writer-a", "writer-b-1", "writer-b-2", "bridge")
        stack.up(SP_WRITER_GROUPS=groups, SP_TOPIC="sales-writers")
        if i == 0:
            warm_up(stack, seconds)
        run_wrk(stack.vars["API_URL"], 16, 1)
        for c in loads:
            row = measure(stack, stack.vars["API_URL"], c, seconds)
            shares = {w: counter_delta(row["_before"], row["_after"], w,
                                       'sp_writer_requests_total{code="OK"}') for w in stack.writers()}
            total = sum(shares.values()) or 1
            rows.append({"config": name, **strip(row),
                         "spread": " ".join(f"{w}:{100 * v / total:.1f}%" for w, v in shares.items()),
                         "max_share_pct": round(100 * max(shares.values()) / total, 1)})
        timeline, summary = writers_crash(stack, victim, max(3 * seconds, 9))
        timelines += [{"config": name, **r} for r in timeline]
        crashes.append({"config": name, **summary})
    return (rows, crashes, timelines), {}
