"""Test harness shared by every area: real servers on loopback, our workers as processes.

Every server binds to 127.0.0.1 on a free port and is stopped when the run ends, even on
failure. Workers come from SP_BIN_DIR (default build/asan/bin: the sanitizer build)."""
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("SP_BIN_DIR", ROOT / "build" / "asan" / "bin"))

# ASan: leaks are reported at exit and fail the process; UBSan: stop on the first finding.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def _port_range(span=1):
    """(low, high): a port, or the first of `span` ports in a row, is picked in [low, high), so
    that all of them lie below the kernel's ephemeral range: a port in it may be taken by any
    outgoing connection between the check and the server's bind (a writer of local.sh once lost
    its port that way)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    return 10000, max(ephemeral_low - span, 10100)


def _bindable(address, ports):
    try:
        for port in ports:
            with socket.socket() as s:
                s.bind((address, port))
        return True
    except OSError:
        return False


def free_port(address="127.0.0.1"):
    """A port free on `address`, below the ephemeral range."""
    low, high = _port_range()
    for _ in range(200):
        port = random.randrange(low, high)
        if _bindable(address, [port]):
            return port
    raise RuntimeError(f"no free port on {address}")


def free_port_base(offsets, address="127.0.0.1"):
    """A base port whose base + offset is free on `address` for every offset (scripts/local.sh
    puts each part at SP_PORT_BASE + a fixed offset), below the ephemeral range."""
    low, high = _port_range(max(offsets) + 1)
    for _ in range(50):
        base = random.randrange(low, high, 100)
        if _bindable(address, [base + off for off in offsets]):
            return base
    raise RuntimeError(f"no free port range on {address}")


def wait_until(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a server still starting refuses connections
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def process_gone(pid):
    """True once `pid` has exited: no such process, or a zombie its parent has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def stop_process(proc, timeout=30.0):
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds; None is ignored."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tcp_sockets(port):
    """{(state, local, peer)} of the TCP sockets to or from `port` (`ss`), listeners left out;
    closed ones stay listed a while (TIME-WAIT) on the side that closed first."""
    out = subprocess.run(["ss", "-tanH", "state", "all", f"( dport = :{port} or sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    rows = (line.split() for line in out.splitlines() if line.strip())
    return {(r[0], r[3], r[4]) for r in rows if r[0] != "LISTEN"}


# The ports scripts/local.sh opens, as offsets from its SP_PORT_BASE.
LOCAL_SH_PORT_OFFSETS = (51, 52, 53, 80, 81, 91, 92, 93, 95, 379, 380, 1092, 1093)


def local_sh_port_base(address="127.0.0.1"):
    """An SP_PORT_BASE for scripts/local.sh whose every port is free on `address`."""
    return free_port_base(LOCAL_SH_PORT_OFFSETS, address)


def parse_metrics(text):
    """Prometheus text as {series: value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def http_get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Worker:
    """One of our C binaries as a real process, its stdout (JSON logs) kept in a file."""

    def __init__(self, name, args=(), env=None, http_port=None, log_dir=None, binary=None):
        self.name = name
        self.http_port = http_port
        self.log_path = Path(log_dir or tempfile.mkdtemp()) / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        full_env = dict(os.environ, **SANITIZER_ENV, LOG_LEVEL="info", BIND_ADDR="127.0.0.1")
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(BIN_DIR / (binary or name)), *args], env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def url(self, path):
        return f"http://127.0.0.1:{self.http_port}{path}"

    def wait_ready(self, timeout=30.0):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()}")
            return http_get(self.url("/readyz"))[0] == 200
        wait_until(ready, timeout, what=f"{self.name} /readyz")
        return self

    def metrics(self):
        """Prometheus text as {series: value}."""
        status, text = http_get(self.url("/metrics"))
        assert status == 200, text
        return parse_metrics(text)

    def logs(self):
        if not self._log.closed:  # still open until terminate() or kill()
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_events(self):
        return [json.loads(l) for l in self.logs().splitlines() if l.startswith("{")]

    def terminate(self, timeout=30.0):
        """SIGTERM and wait; returns the exit code (66 means a sanitizer found a leak)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop on SIGTERM in {timeout}s:\n{self.logs()}")
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _consumer(bootstrap):
    from confluent_kafka import Consumer
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-reader-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def end_offsets(bootstrap, topic):
    """{partition: high watermark} of the topic."""
    from confluent_kafka import TopicPartition
    c = _consumer(bootstrap)
    try:
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
    finally:
        c.close()


def record_count(bootstrap, topic):
    """Records in the topic: the sum of the partitions' high watermarks (no transactions)."""
    return sum(end_offsets(bootstrap, topic).values())


def stored_offsets(client, topic):
    """{partition: next offset} the consumer has applied in Valkey (hash sp:offsets, fields
    topic:partition), read with a Valkey client made with decode_responses=True."""
    offsets = client.hgetall("sp:offsets")
    return {int(k.rsplit(":", 1)[1]): int(v) for k, v in offsets.items()
            if k.rsplit(":", 1)[0] == topic}


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


def topic_sale_ids(bootstrap, topic, timeout=120.0):
    """Every record's sale-id header in the topic (as many records as its high watermarks
    count), read with a real Kafka consumer; a short read fails."""
    records = read_records(bootstrap, topic, record_count(bootstrap, topic), timeout)
    return [headers(r)["sale-id"] for r in records]


class Kafka:
    def __init__(self, data_dir):
        self.dir = data_dir
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self):
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "start", str(self.dir), str(self.port),
                        str(self.controller_port)], check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "stop", str(self.dir)], check=True)

    def kill(self):
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "kill", str(self.dir)], check=True)

    def create_topic(self, name, partitions=6):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=60)
        return name


class Valkey:
    """A real Valkey primary (AOF, appendfsync everysec) and a replica of it, on loopback.

    `url` / `replica_url` are redis:// URLs; `client()` / `replica_client()` give valkey-py
    clients. `kill_primary()` is kill -9; `restart_primary()` starts it again on the same port
    and data folder, so it reloads its AOF."""

    def __init__(self, base_dir):
        self.base = Path(base_dir)
        self.port, self.replica_port = free_port(), free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.replica_url = f"redis://127.0.0.1:{self.replica_port}"
        self.primary = self.replica = None

    def _spawn(self, name, port, *extra):
        folder = self.base / name
        folder.mkdir(parents=True, exist_ok=True)
        args = ["valkey-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                "--save", "", "--daemonize", "no", "--logfile", str(folder / "valkey.log"), *extra]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def client(self):
        import valkey
        return valkey.Valkey(port=self.port, socket_timeout=10, decode_responses=True)

    def replica_client(self):
        import valkey
        return valkey.Valkey(port=self.replica_port, socket_timeout=10, decode_responses=True)

    def _wait_serving(self, proc, client, what):
        def serving():
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            return client.ping()  # raises while loading the AOF
        wait_until(serving, 60, what=f"{what} to serve")

    def start_primary(self):
        self.primary = self._spawn("primary", self.port, "--appendonly", "yes",
                                   "--appendfsync", "everysec")
        self._wait_serving(self.primary, self.client(), "valkey primary")

    def start(self):
        self.start_primary()
        self.replica = self._spawn("replica", self.replica_port,
                                   "--replicaof", "127.0.0.1", str(self.port))
        self._wait_serving(self.replica, self.replica_client(), "valkey replica")
        self.wait_replica_synced()
        return self

    def wait_replica_synced(self, timeout=60):
        """Waits until the replica's link is up and it has everything the primary has."""
        def synced():
            info = self.replica_client().info("replication")
            if info.get("master_link_status") != "up":
                return False
            return self.client().execute_command("WAIT", 1, 1000) >= 1
        wait_until(synced, timeout, interval=0.1, what="the valkey replica to sync")

    def kill_primary(self):
        if self.primary and self.primary.poll() is None:
            self.primary.kill()
            self.primary.wait()

    def restart_primary(self):
        self.kill_primary()
        self.start_primary()

    def flushall(self):
        """Empties both servers (FLUSHALL replicates) and waits until the replica sees it."""
        if self.primary.poll() is not None:
            self.start_primary()
        self.client().flushall()
        self.wait_replica_synced()
        wait_until(lambda: self.replica_client().dbsize() == 0, 30, what="the replica to empty")

    def stop(self):
        for proc in (self.replica, self.primary):
            stop_process(proc)
