"""Smoke test of scripts/kafka.sh: a real Kafka 4 broker (KRaft) that serves a stock client
(confluent-kafka), and that keeps its data across a clean stop and a SIGKILL."""
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from harness import free_port

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = str(ROOT / "scripts" / "kafka.sh")
N = 100


def kafka_sh(*args, check=True):
    return subprocess.run([KAFKA_SH, *map(str, args)], check=check, text=True,
                          stdout=subprocess.PIPE, timeout=300)


class Broker:
    def __init__(self, folder):
        self.dir = folder
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self):
        out = kafka_sh("start", self.dir, self.port, self.controller_port).stdout
        assert out.strip() == self.bootstrap
        return out

    def running(self):
        return kafka_sh("status", self.dir, check=False).returncode == 0


@pytest.fixture
def broker(tmp_path):
    """A broker in a fresh folder; always stopped at the end (killed if a stop fails)."""
    b = Broker(tmp_path / "kafka")
    try:
        b.start()
        yield b
    finally:
        if kafka_sh("stop", b.dir, check=False).returncode != 0:
            kafka_sh("kill", b.dir, check=False)


def produce(bootstrap, topic, n):
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(n):
        p.produce(topic, key=f"k{i}", value=f"sale-{i}",
                  on_delivery=lambda err, _msg: err and errors.append(err))
    assert p.flush(60) == 0, "messages still queued after 60 s"
    assert not errors, errors


def consume(bootstrap, topic, n, group, timeout=60):
    """Reads n messages from the start with a new group, commits, and returns the values."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    values = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(values) < n and time.monotonic() < deadline:
            msg = c.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value().decode())
        c.commit(asynchronous=False)
    finally:
        c.close()
    return values


def committed_total(bootstrap, topic, group, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return sum(tp.offset for tp in tps if tp.offset >= 0)
    finally:
        c.close()


def partition_count(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=30)
    return len(md.topics[topic].partitions)


def test_produce_consume_survives_restart(broker):
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    kafka_sh("create-topic", broker.bootstrap, topic, 6)
    assert partition_count(broker.bootstrap, topic) == 6

    produce(broker.bootstrap, topic, N)
    expected = sorted(f"sale-{i}" for i in range(N))
    assert sorted(consume(broker.bootstrap, topic, N, "g1")) == expected

    # Starting again while it runs is a no-op that still answers with the address.
    assert broker.start().strip() == broker.bootstrap

    kafka_sh("stop", broker.dir)
    assert not broker.running()
    broker.start()  # same folder, same ports: same data
    assert partition_count(broker.bootstrap, topic) == 6
    assert sorted(consume(broker.bootstrap, topic, N, "g2")) == expected
    assert committed_total(broker.bootstrap, topic, "g1", 6) == N


def test_acked_messages_survive_sigkill(broker):
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    kafka_sh("create-topic", broker.dir, topic, 6)  # a DIR works as well as a bootstrap address
    produce(broker.bootstrap, topic, N)

    kafka_sh("kill", broker.dir)
    assert not broker.running()
    broker.start()  # recovers the unclean logs
    expected = sorted(f"sale-{i}" for i in range(N))
    assert sorted(consume(broker.bootstrap, topic, N, "g1")) == expected
