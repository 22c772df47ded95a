"""Fixtures for the tests on a real node: a test image imported into the node's containerd and
a fresh namespace per test. The session's node itself is tests/conftest.py's `node` fixture
(tests/nodekit.py)."""
import os
import subprocess
import uuid

import pytest

from harness import ROOT, wait_until
from nodekit import CLUSTER_SH

OCI_IMAGE = ROOT / "scripts" / "oci-image.py"
TEST_IMAGE = "localhost/salespipeline/node-test:1"
BUSYBOX_APPLETS = ["sh", "cat", "echo", "mkdir", "sleep", "nc", "nslookup", "httpd", "ip",
                   "hostname", "env", "ls", "grep"]


@pytest.fixture(scope="session")
def make_image(tmp_path_factory):
    """Writes a FROM-scratch image archive (scripts/oci-image.py) of host files: make(name,
    {dest: source}, links=[busybox applets]) -> path."""
    folder = tmp_path_factory.mktemp("images")

    def make(name, files, applets=()):
        archive = folder / (name.replace("/", "_").replace(":", "_") + ".tar")
        subprocess.run(["python3", str(OCI_IMAGE), "--name", name, "--out", str(archive),
                        "--user", "65534:65534", *(f"{src}:{dest}" for dest, src in files.items()),
                        *sum((["--link", f"/bin/{a}=busybox"] for a in applets), [])], check=True)
        return archive
    return make


@pytest.fixture(scope="session")
def test_image(node, make_image):
    """A FROM-scratch image with a static busybox and kubectl, imported into the node."""
    archive = make_image(TEST_IMAGE, {"/bin/busybox": "/bin/busybox", "/bin/kubectl": node.env["SP_KUBECTL"]},
                         BUSYBOX_APPLETS)
    subprocess.run([str(CLUSTER_SH), "import", str(archive)], check=True,
                   env=dict(os.environ, SP_CLUSTER_DIR=str(node.state)))
    return TEST_IMAGE


@pytest.fixture
def ns(node):
    """A fresh namespace per test under the `restricted` Pod Security level."""
    name = f"node-{uuid.uuid4().hex[:8]}"
    node.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    wait_until(lambda: node.kubectl("get", "-n", name, "serviceaccount/default", check=False).returncode == 0,
               60, interval=0.3, what="the namespace's default ServiceAccount")
    yield name
    node.kubectl("delete", "namespace", name, "--wait=false", check=False)
