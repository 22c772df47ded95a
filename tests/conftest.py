"""Shared fixtures: real servers started once per test run, worker processes per test.

The helpers themselves live in harness.py (import them from there: `from harness import ...`)."""
import subprocess
import time

import pytest

from harness import *  # noqa: F401,F403  (fixtures below and older tests use these names)
from harness import ROOT, Kafka, Worker


@pytest.fixture
def workers(tmp_path):
    """Starts workers for one test; stops them all afterwards and fails on a bad exit."""
    started = []

    def start(name, *args, **kw):
        w = Worker(name, *args, log_dir=tmp_path, **kw)
        started.append(w)
        return w

    yield start
    problems = []
    for w in reversed(started):
        was_killed = w.proc.poll() is not None and w.proc.returncode < 0
        code = w.terminate()
        if not was_killed and code != 0:
            problems.append(f"{w.name} exited {code}:\n{w.logs()[-4000:]}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    """One real Kafka broker (KRaft) for the whole run."""
    broker = Kafka(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "stop", str(broker.dir)])


@pytest.fixture
def topic(kafka, request):
    """A fresh topic per test, so tests never see each other's records."""
    name = "t-" + request.node.name.replace("[", "-").replace("]", "")[:80] + f"-{time.monotonic_ns()}"
    return kafka.create_topic(name, partitions=6)


# --- Valkey: a primary with AOF and a replica, for the whole run (appended by the consume area) ---
from pathlib import Path  # noqa: E402

from harness import free_port, wait_until  # noqa: E402

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
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="session")
def valkey(tmp_path_factory):
    """One real Valkey primary (AOF) + replica for the whole run; stopped even on failure."""
    server = Valkey(tmp_path_factory.mktemp("valkey"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def valkey_clean(valkey):
    """The session's Valkey, emptied (primary and replica) before the test."""
    valkey.flushall()
    return valkey
