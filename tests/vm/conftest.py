"""Fixtures of the VM tests: the disk image (built once, cached), the rendered user data, VMs
that are always stopped at the end, and the consume area's protobuf stubs."""
import os
import subprocess

import pytest

from consume.consume_helpers import protobuf_stubs
from harness import BIN_DIR, SANITIZER_ENV
from vm_helpers import build_disk

PASSWORD = "5f0c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"


@pytest.fixture(scope="session")
def valkey_disk():
    return build_disk()


@pytest.fixture(scope="session")
def pb_stubs(tmp_path_factory):
    return protobuf_stubs(tmp_path_factory.mktemp("pb-vm"))


@pytest.fixture
def render_userdata():
    """`operator --render valkey-cloudinit` of a SalesPipeline manifest: what the operator puts in
    the VMs' cloud-init Secrets."""
    def render(manifest, role):
        r = subprocess.run([str(BIN_DIR / "operator"), "--render", "valkey-cloudinit", "--file",
                            str(manifest), "--role", role, "--password", PASSWORD],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, **SANITIZER_ENV})
        assert r.returncode == 0, r.stderr
        return r.stdout
    return render


@pytest.fixture
def vms():
    """VMs of one test: killed at the end whatever happened (their files go with tmp_path)."""
    started = []
    yield started
    for vm in started:
        vm.kill()
