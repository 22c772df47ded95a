"""Smoke test of the local control plane that `scripts/cluster.sh up` starts.

Runs against the session's cluster (the `cluster` fixture in conftest.py) with the `kubectl`
wrapper that `cluster.sh up` writes beside the kubeconfig.
"""

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from harness import wait_until

REPO = Path(__file__).resolve().parents[2]


def pinned_version():
    """The Kubernetes release that tools/k8s/go.mod pins."""
    text = (REPO / "tools/k8s/go.mod").read_text()
    return re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)", text, re.M).group(1)


class Kubectl:
    def __init__(self, binary, kubeconfig, namespace):
        self.binary = binary
        self.namespace = namespace
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig))

    def run(self, *args, stdin=None, check=True, namespaced=True):
        cmd = [self.binary, *(["-n", self.namespace] if namespaced else []), *args]
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=self.env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
        return p

    def json(self, *args, **kw):
        return json.loads(self.run(*args, "-o", "json", **kw).stdout)


@pytest.fixture(scope="module")
def kubectl(cluster):
    ns = f"sp-smoke-{uuid.uuid4().hex[:8]}"
    k = Kubectl(str(cluster.kubeconfig.parent / "kubectl"), cluster.kubeconfig, ns)
    k.run("create", "namespace", ns, namespaced=False)
    yield k
    # Namespace deletion is asynchronous (kube-controller-manager empties it); no need to wait.
    k.run("delete", "namespace", ns, "--wait=false", namespaced=False, check=False)


def test_server_reports_pinned_version(kubectl):
    v = kubectl.json("version", namespaced=False)
    want = pinned_version()
    assert v["serverVersion"]["gitVersion"] == want
    assert v["clientVersion"]["gitVersion"] == want
    assert v["serverVersion"]["minor"] == want.split(".")[1]


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [replicas]
            properties:
              replicas: {{type: integer, minimum: 0}}
              minReplicas: {{type: integer, minimum: 0}}
            x-kubernetes-validations:
            - rule: "!has(self.minReplicas) || self.minReplicas <= self.replicas"
              message: minReplicas must not exceed replicas
              fieldPath: .minReplicas
"""

WIDGET = """
apiVersion: {group}/v1
kind: Widget
metadata: {{name: {name}}}
spec: {{replicas: 2, minReplicas: {min}}}
"""


def test_crd_cel_rule_rejects_invalid_object(kubectl):
    group = f"s{uuid.uuid4().hex[:8]}.smoke.salespipeline.test"
    kubectl.run("apply", "-f", "-", stdin=CRD.format(group=group), namespaced=False)
    try:
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/widgets.{group}",
                    namespaced=False)
        # Discovery of a new group can lag behind Established; retry the valid object briefly.
        ok = WIDGET.format(group=group, name="ok", min=1)
        wait_until(lambda: kubectl.run("apply", "-f", "-", stdin=ok, check=False).returncode == 0,
                   timeout=30, interval=0.5, what="the new Widget kind to be served")
        bad = kubectl.run("apply", "-f", "-", stdin=WIDGET.format(group=group, name="bad", min=3),
                          check=False)
        assert bad.returncode != 0, "an object breaking the CEL rule was accepted"
        assert "spec.minReplicas" in bad.stderr, bad.stderr
        assert "minReplicas must not exceed replicas" in bad.stderr, bad.stderr
        assert kubectl.run("get", "widget", "bad", check=False).returncode != 0
    finally:
        kubectl.run("delete", "crd", f"widgets.{group}", "--wait=false", namespaced=False, check=False)


CM = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: ssa}}
data: {{color: {color}}}
"""


def test_server_side_apply(kubectl):
    kubectl.run("apply", "--server-side", "--field-manager=smoke-a", "-f", "-", stdin=CM.format(color="red"))
    cm = kubectl.json("get", "configmap", "ssa", "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]}
    assert ("smoke-a", "Apply") in managers

    # Another manager setting the same field conflicts, unless it forces.
    clash = kubectl.run("apply", "--server-side", "--field-manager=smoke-b", "-f", "-",
                        stdin=CM.format(color="blue"), check=False)
    assert clash.returncode != 0 and "conflict" in clash.stderr.lower(), clash.stderr
    kubectl.run("apply", "--server-side", "--field-manager=smoke-b", "--force-conflicts", "-f", "-",
                stdin=CM.format(color="blue"))
    cm = kubectl.json("get", "configmap", "ssa", "--show-managed-fields")
    assert cm["data"]["color"] == "blue"
    assert "smoke-b" in {m["manager"] for m in cm["metadata"]["managedFields"]}


def test_garbage_collector_deletes_owned_object(kubectl):
    kubectl.run("create", "configmap", "owner", "--from-literal=k=v")
    uid = kubectl.json("get", "configmap", "owner")["metadata"]["uid"]
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
        "data": {"k": "v"},
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(owned))
    kubectl.run("delete", "configmap", "owner")
    wait_until(lambda: kubectl.run("get", "configmap", "owned", check=False).returncode != 0,
               timeout=60, interval=0.5, what="the garbage collector to delete the owned ConfigMap")
