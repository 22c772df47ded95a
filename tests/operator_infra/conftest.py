"""Fixtures of the infrastructure tests (no cluster): the consume area's protobuf stubs, for
filling a real Valkey through the real consumer."""
import pytest

from consume.consume_helpers import protobuf_stubs


@pytest.fixture(scope="session")
def pb_stubs(tmp_path_factory):
    """Python stubs of proto/blackfriday.proto."""
    return protobuf_stubs(tmp_path_factory.mktemp("pb-infra"))
