"""Fixtures only the writer tests need: gRPC stubs generated at test time, and (own_kafka, a broker
the test may stop, is in the root conftest)."""
import pytest

from writer_util import generate_stubs


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return generate_stubs(tmp_path_factory.mktemp("writer-stubs"))
