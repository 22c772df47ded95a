"""Shared fixtures: real servers started once per test run, worker processes per test.

The helpers themselves live in harness.py (import them from there: `from harness import ...`)."""
import os
import subprocess
import time

import pytest

from harness import *  # noqa: F401,F403  (fixtures below and older tests use these names)
from harness import ROOT, Kafka, Valkey, Worker
from nodekit import CLUSTER_SH, Node, cluster_env, host_snapshot


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



@pytest.fixture
def own_kafka(tmp_path):
    """A broker for this test alone, which it may stop and start; stopped even on failure."""
    broker = Kafka(tmp_path / "kafka")
    try:
        broker.start()
        yield broker
    finally:
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "stop", str(broker.dir)])


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


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    """The cluster with its real node, shared by every test that runs pods (nodekit.py)."""
    reuse = os.environ.get("SP_TEST_NODE_DIR")
    if reuse:
        yield Node(reuse)
        return
    state = tmp_path_factory.mktemp("node")
    env = cluster_env(state)
    before = host_snapshot(state)
    try:
        up = subprocess.run([str(CLUSTER_SH), "up", "--node"], env=env, capture_output=True,
                            text=True, timeout=3600)
        if up.returncode != 0:
            pytest.fail(f"scripts/cluster.sh up --node failed:\n{up.stderr[-6000:]}")
        yield Node(state)
    finally:
        down = subprocess.run([str(CLUSTER_SH), "down"], env=env, capture_output=True, text=True,
                              timeout=300)
    assert down.returncode == 0, f"scripts/cluster.sh down failed:\n{down.stderr[-4000:]}"
    after = host_snapshot(state)
    left = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not left, f"the node left things behind (before, after): {left}"
