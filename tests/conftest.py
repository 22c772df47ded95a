"""Shared fixtures: real servers started once per test run, worker processes per test.

The helpers themselves live in harness.py (import them from there: `from harness import ...`)."""
import os
import subprocess
import time

import pytest

from harness import *  # noqa: F401,F403  (fixtures below and older tests use these names)
from harness import ROOT, Kafka, Valkey, Worker
from nodekit import Node, NodeError, running_node


def pytest_collection_modifyitems(items):
    """The tests that need the machine's one node (tests/node, tests/e2e) run last, together:
    the session's node is then up only while they run."""
    items.sort(key=lambda item: "node" in getattr(item, "fixturenames", ()))


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
    """The cluster with its real node, shared by every test that runs pods (nodekit.py):
    SP_TEST_NODE_DIR's if set (left running), else one started here and stopped at the end."""
    reuse = os.environ.get("SP_TEST_NODE_DIR")
    if reuse:
        yield Node(reuse)
        return
    try:
        with running_node(tmp_path_factory.mktemp("node")) as n:
            yield n
    except NodeError as e:
        pytest.fail(str(e))
