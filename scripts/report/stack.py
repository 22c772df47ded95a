"""The local stack under measurement: scripts/local.sh with knobs, its processes, their CPU
(per process and per thread), their /metrics, packet captures of a hop, and wrk runs.

Every number the report prints comes from one of these readings:
- CPU: utime + stime of /proc/PID/stat, the way scripts/bench.sh reads it (10 ms ticks), and
  per thread the time on a CPU of /proc/PID/task/TID/schedstat (ns), as differences over a run;
- the whole machine: the busy share of /proc/stat's `cpu` line over the run (user, nice,
  system, irq, softirq, as scripts/bench/lib.sh counts it: steal is not our work);
- latency seen by the client: wrk's own percentiles (scripts/bench/wrk-sales.lua prints them);
- latency inside each worker: its Prometheus histogram, as a difference over the run;
- bytes on a hop: a packet capture (tcpdump on loopback, headers only, the hop's port) of a
  run of its own, read back with tcpdump: frame and TCP payload lengths per direction.
"""
import os
import re
import sys
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from harness import local_sh_port_base, parse_metrics, process_gone, wait_until  # noqa: E402,F401
WRK_SCRIPT = ROOT / "scripts" / "bench" / "wrk-sales.lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# gRPC C core's own threads (its executors, event engine, timers, resolver); names are cut
# to 15 characters by the kernel.
GRPC_THREADS = ("default-executo", "event_engine", "grpc_global_tim", "resolver-execut",
                "timer_manager")


def log(msg):
    print(f"[report] {msg}", flush=True)


def http_text(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def metrics(url):
    try:
        return parse_metrics(http_text(url + "/metrics"))
    except OSError:
        return {}


def histogram_delta(before, after, name):
    """The histogram `name` over a run: ([(le, count)], sum, count), cumulative buckets."""
    buckets = []
    for series, value in after.items():
        m = re.fullmatch(name + r'_bucket\{le="([^"]+)"\}', series)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, value - before.get(series, 0.0)))
    buckets.sort()
    total = after.get(name + "_sum", 0.0) - before.get(name + "_sum", 0.0)
    count = after.get(name + "_count", 0.0) - before.get(name + "_count", 0.0)
    return buckets, total, count


def histogram_quantile(buckets, count, q):
    """Prometheus' histogram_quantile: linear within the bucket that holds the q-quantile."""
    if count <= 0 or not buckets:
        return None
    rank, lower, below = q * count, 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * ((rank - below) / (cum - below) if cum > below else 0)
        lower, below = le, cum
    return lower


def cpu_us(pid):
    """user + system CPU time of a process in microseconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000 / CLK_TCK


def thread_cpu_us(pid):
    """{thread name: CPU us} summed over the live threads of `pid`, from each thread's
    schedstat (nanoseconds on a CPU; /proc/PID/stat counts in 10 ms ticks)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            ns = int((task / "schedstat").read_text().split()[0])
            out[name] = out.get(name, 0.0) + ns / 1000
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between the listing and the read
    return out


def machine_cpu():
    """(busy, total) jiffies of every core, from /proc/stat; steal counts in neither."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy, busy + v[3] + v[4]


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def capture_start(path, ports):
    """tcpdump on loopback for TCP on `ports`, headers only, into `path`; returns once it is
    listening."""
    filt = " or ".join(f"tcp port {p}" for p in ports)
    proc = subprocess.Popen(["tcpdump", "-i", "lo", "-nn", "-s", "128", "-B", "32768", "-w", str(path), filt],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "listening on lo, ..." once the capture runs
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"tcpdump did not start: {line}{proc.stderr.read()}")
    return proc


def capture_stop(proc):
    """Stops tcpdump; returns the packets the kernel dropped (0 when the capture is whole)."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    m = re.search(r"(\d+) packets? dropped by kernel", err)
    return int(m.group(1)) if m else 0


def capture_bytes(path, port):
    """From a capture: TCP payload and frame bytes and packets to `port` (requests) and from
    it (responses), as tcpdump reads them back (`-e`: the frame length; `length N` at the end:
    the TCP payload)."""
    out = subprocess.run(["tcpdump", "-nn", "-e", "-r", str(path), f"tcp port {port}"],
                         capture_output=True, text=True, check=True).stdout
    total = {k: 0 for k in ("req_payload", "resp_payload", "req_frames", "resp_frames",
                            "req_packets", "resp_packets")}
    for line in out.splitlines():
        m = re.search(r"length (\d+): [\d.]+\.(\d+) > [\d.]+\.(\d+): .*length (\d+)$", line)
        if not m:
            continue
        frame, dst, payload = int(m.group(1)), int(m.group(3)), int(m.group(4))
        side = "req" if dst == port else "resp"
        total[f"{side}_payload"] += payload
        total[f"{side}_frames"] += frame
        total[f"{side}_packets"] += 1
    return total


def loadavg():
    """The 1, 5 and 15 minute load averages, as the report prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_info():
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    # Changes to the code, not to what the report itself writes (an earlier scenario's files).
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":!docs/report", ":!docs/informe.md"],
                           capture_output=True, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit + ("+cambios" if dirty else ""),
            "nproc": os.cpu_count(), "cpu_model": model,
            "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "loadavg": loadavg()}


def wrk_cmd(url, connections, seconds):
    """wrk's command line for a closed-loop run with scripts/bench/wrk-sales.lua."""
    return ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s",
            "--timeout", "10s", "-s", str(WRK_SCRIPT), url]


def parse_wrk(out):
    """wrk-sales.lua's RESULT line: requests, accepted (2xx), seconds, p50/p99/max ms, the
    socket errors wrk counted and the answers that were not 2xx."""
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out}")
    words = dict(w.split("=", 1) for w in line.split()[1:])
    r = {k: int(words[k]) for k in ("requests", "accepted")}
    r.update({k: float(words[k]) for k in ("seconds", "p50_ms", "p99_ms", "max_ms")})
    r["socket_errors"] = int(words["errors"])
    r["non2xx"] = r["requests"] - r["accepted"]
    return r


def run_wrk(url, connections, seconds):
    """One wrk run with scripts/bench/wrk-sales.lua; what parse_wrk reads of it."""
    out = subprocess.run(wrk_cmd(url, connections, seconds), capture_output=True, text=True,
                         check=True).stdout
    return parse_wrk(out)


class Stack:
    """scripts/local.sh on its own state folder and ports, with the shape knobs of local.sh."""

    def __init__(self, state_dir, port_base, bin_dir, knobs=None):
        self.dir = Path(state_dir)
        self.knobs = dict(knobs or {})
        self.base_env = dict(os.environ, SP_LOCAL_DIR=str(self.dir), SP_PORT_BASE=str(port_base),
                             SP_BIN_DIR=str(bin_dir), LOG_LEVEL="warn")

    def local(self, *args):
        env = dict(self.base_env, **{k: str(v) for k, v in self.knobs.items()})
        subprocess.run([str(ROOT / "scripts" / "local.sh"), *args], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    def up(self, **knobs):
        self.knobs.update(knobs)
        self.local("up")
        self.vars = self._read_env()

    def down(self):
        self.local("down")

    def _read_env(self):
        out = {}
        for line in (self.dir / "env").read_text().splitlines():
            m = re.match(r'export (\w+)="?(.*?)"?$', line)
            if m:
                out[m.group(1)] = m.group(2)
        return out

    def pid(self, part):
        f = self.dir / ("kafka/kafka.pid" if part == "kafka" else f"{part}.pid")
        return int(f.read_text())

    def alive(self, part):
        try:
            pid = self.pid(part)
        except (FileNotFoundError, ValueError):
            return False
        return not process_gone(pid)

    def parts(self):
        """Every running part: the workers, Valkey, Kafka."""
        names = [p.stem for p in self.dir.glob("*.pid")]
        order = ["api", "bridge", "writer-a", "writer-b-1", "writer-b-2", "consumer",
                 "valkey-primary", "valkey-replica"]
        return [n for n in order if n in names and self.alive(n)] + ["kafka"]

    def writers(self):
        return [p for p in self.parts() if p.startswith("writer")]

    def stop(self, *parts):
        """SIGTERM, and wait until gone, so that the next up() starts them with new knobs."""
        for part in parts:
            if not self.alive(part):
                continue
            pid = self.pid(part)
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not self.alive(part), 60, what=f"{part} ({pid}) to stop")

    def kill(self, part):
        pid = self.pid(part)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.alive(part), 30, what=f"{part} ({pid}) to die")

    def writer_url(self, part):
        http = {"writer-a": 91, "writer-b-1": 92, "writer-b-2": 93}[part]
        return f"http://127.0.0.1:{int(self.base_env['SP_PORT_BASE']) + http}"

    def port(self, name):
        offsets = {"api": 80, "bridge": 81, "writer-a": 51, "writer-b-1": 52, "writer-b-2": 53,
                   "valkey-primary": 379, "valkey-replica": 380}
        return int(self.base_env["SP_PORT_BASE"]) + offsets[name]

    def valkey(self, part="valkey-primary"):
        import valkey
        return valkey.Valkey(port=self.port(part), socket_timeout=10, decode_responses=True)

    def kafka_end_offsets(self, topic):
        """{partition: end offset} of `topic`."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.vars["KAFKA_BROKERS"],
                      "group.id": "report-offsets", "enable.auto.commit": False})
        try:
            meta = c.list_topics(topic, timeout=30).topics[topic]
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    for p in meta.partitions}
        finally:
            c.close()

    def valkey_offsets(self, topic, part="valkey-primary"):
        """Sum of the next offsets the consumer stored in Valkey for `topic`."""
        stored = self.valkey(part).hgetall("sp:offsets")
        return sum(int(v) for k, v in stored.items() if k.rsplit(":", 1)[0] == topic)

    def wait_consumed(self, topic, timeout=120):
        """Until Valkey holds every record of `topic` (what Kafka holds now)."""
        want = sum(self.kafka_end_offsets(topic).values())
        wait_until(lambda: self.valkey_offsets(topic) >= want, timeout, interval=0.1,
                   what=f"the consumer to apply {want} records of {topic}")
        return want


class Sampler:
    """Readings of every part before and after a run: CPU per process (and per thread for the
    parts asked), the machine's CPU, the workers' metrics."""

    def __init__(self, stack, threads_of=()):
        self.stack, self.threads_of = stack, threads_of

    def snapshot(self):
        s = {"t": time.monotonic(), "machine": machine_cpu(), "cpu": {}, "threads": {},
             "metrics": {}}
        for part in self.stack.parts():
            pid = self.stack.pid(part)
            s["cpu"][part] = cpu_us(pid)
            if part in self.threads_of:
                s["threads"][part] = thread_cpu_us(pid)
        v = self.stack.vars
        urls = {"api": v["API_URL"], "bridge": v["BRIDGE_URL"], "consumer": v["CONSUMER_URL"]}
        urls.update({w: self.stack.writer_url(w) for w in self.stack.writers()})
        for part, url in urls.items():
            s["metrics"][part] = metrics(url)
        return s


def cpu_per_sale(before, after, accepted):
    """CPU us per accepted sale for every part, `writers` and `valkey` summed, and the machine."""
    n = max(accepted, 1)
    out = {}
    for part, t in after["cpu"].items():
        if part in before["cpu"]:
            out[part] = (t - before["cpu"][part]) / n
    out["writers"] = sum(v for k, v in out.items() if k.startswith("writer"))
    out["valkey"] = out.get("valkey-primary", 0.0) + out.get("valkey-replica", 0.0)
    busy = after["machine"][0] - before["machine"][0]
    out["machine"] = busy * 1_000_000 / CLK_TCK / n
    return out


def machine_busy_pct(before, after):
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    return 100.0 * busy / total if total else 0.0


def counter_delta(before, after, part, series):
    return after["metrics"].get(part, {}).get(series, 0.0) - before["metrics"].get(part, {}).get(series, 0.0)


class Poller(threading.Thread):
    """Calls `fn` every `interval` seconds until stopped; keeps (t, value) pairs."""

    def __init__(self, fn, interval=0.2):
        super().__init__(daemon=True)
        self.fn, self.interval, self.samples = fn, interval, []
        self._stop_event = threading.Event()

    def run(self):
        t0 = time.monotonic()
        while not self._stop_event.is_set():
            try:
                self.samples.append((time.monotonic() - t0, self.fn()))
            except Exception:
                pass
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        return self.samples
