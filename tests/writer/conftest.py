"""Fixtures only the writer tests need: gRPC stubs generated at test time, and a Kafka broker of
the test's own that it may stop and start (the session broker is shared by everyone)."""
import subprocess

import pytest

from writer_util import ROOT, Kafka, generate_stubs


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return generate_stubs(tmp_path_factory.mktemp("writer-stubs"))


@pytest.fixture
def own_kafka(tmp_path):
    """A second broker for this test alone, stopped afterwards even on failure."""
    broker = Kafka(tmp_path / "kafka")
    try:
        broker.start()
        yield broker
    finally:
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "stop", str(broker.dir)])
