"""Fixtures of the consume tests; the helpers are in consume_helpers.py."""
import pytest

from consume_helpers import protobuf_stubs


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Python stubs of proto/blackfriday.proto, generated into a temporary folder."""
    return protobuf_stubs(tmp_path_factory.mktemp("pb"))


@pytest.fixture
def valkey_with_password(tmp_path):
    """A lone Valkey that requires a password (AUTH), on a free loopback port."""
    import subprocess

    import valkey as valkey_py

    from harness import free_port, wait_until
    port = free_port()
    proc = subprocess.Popen(["valkey-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(tmp_path), "--save", "", "--daemonize", "no",
                             "--requirepass", "s3cr@t/pw"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = valkey_py.Valkey(port=port, password="s3cr@t/pw", decode_responses=True)
        wait_until(client.ping, 30, what="valkey with a password")
        yield port, client
    finally:
        proc.terminate()
        proc.wait(30)
