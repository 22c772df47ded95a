"""The sample SalesPipeline on the local test node, as `make e2e-k8s` and `make hpa-demo` run
it: one place for the setup both use.

What `start()` does, each step timed (`timings`):
- the images of `make images` that the pipeline runs (api, bridge, writer, consumer,
  operator), built with buildah (a second build with unchanged sources takes about a second);
- Kafka and Valkey (primary + replica, with a password) of the local stack, listening on the
  node's bridge address where the pods reach the host (`scripts/local.sh up --storage`):
  the pipeline's external Kafka and Valkey (spec.kafka.bootstrapServers, spec.valkey.url);
- a registry on that address too (`scripts/registry.sh`: TLS from its own CA, htpasswd),
  holding the images and the catalog artifact (`scripts/images.sh push`), trusted by the
  node's containerd (`scripts/cluster.sh trust-registry`);
- the operator installed from manifests/ through the overlay tests/e2e/overlay (its image
  from that registry, with the pull Secret), running as a Deployment;
- the sample SalesPipeline (manifests/sample-salespipeline.yaml) with the merge patch
  tests/e2e/overlay/pipeline-patch.yaml (and the caller's own patches) and the Secrets it
  names; then it waits until the pipeline is Ready and every pod of both namespaces is Ready.

`stop()` removes all of it again (the pipeline through its finalizer, the install, the
namespaces, the registry, Kafka and Valkey), so that the node is as it was: the next test
on the same node, or a second run, starts from nothing of this one."""
import base64
import json
import os
import secrets
import re
import shlex
import subprocess
import time
from pathlib import Path

import yaml

from harness import BIN_DIR, ROOT, free_port_base, wait_until

OVERLAY = Path(__file__).resolve().parent / "overlay"
SAMPLE = ROOT / "manifests" / "sample-salespipeline.yaml"
NS = "blackfriday"
NAME = "black-friday"
OPERATOR_NS = "salespipeline-system"
IMAGES = ["api", "bridge", "writer", "consumer", "operator"]
# scripts/local.sh's offsets from SP_PORT_BASE: Valkey primary and replica, Kafka and its controller.
STORAGE_OFFSETS = [379, 380, 1092, 1093]
PASSWORD_READ_ANNOTATION = "sales.blackfriday.dev/operator-may-read"


class SetupError(Exception):
    """A step of the setup failed; the message says which and why."""


def run(cmd, env=None, timeout=1800, what=None):
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SetupError(f"{what or ' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                         f"{p.stderr[-4000:]}{p.stdout[-2000:]}")
    return p.stdout


def read_env(path):
    """A shell file of `export K=V` lines, as a dict."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


def substitute(obj, values):
    """${NAME} in every string of a YAML/JSON tree; a name without a value is a KeyError (a
    lone $, as in the CRD's patterns, stays)."""
    if isinstance(obj, dict):
        return {k: substitute(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, values) for v in obj]
    if isinstance(obj, str):
        return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], obj)
    return obj


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (what `kubectl patch --type merge` does)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def ready(obj):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


class LocalPipeline:
    def __init__(self, node, work_dir, patches=()):
        self.node = node
        self.dir = Path(work_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.address = node.host_address
        self.patches = [OVERLAY / "pipeline-patch.yaml", *patches]
        self.timings = {}
        self.storage = self.registry = None
        self.install = []        # the operator's install, as applied
        self.storage_env = dict(os.environ, SP_LOCAL_DIR=str(self.dir / "local"),
                                SP_LOCAL_ADDRESS=self.address, SP_VALKEY_PASSWORD=secrets.token_hex(16),
                                SP_PORT_BASE=str(free_port_base(STORAGE_OFFSETS, self.address)))
        self.registry_env = dict(os.environ, SP_REGISTRY_DIR=str(self.dir / "registry"),
                                 SP_REGISTRY_ADDRESS=self.address,
                                 SP_REGISTRY_PORT=str(free_port_base([0], self.address)))
        self.cluster_env = dict(os.environ, SP_CLUSTER_DIR=str(node.state))

    def _step(self, name, fn):
        t0 = time.monotonic()
        fn()
        self.timings[name] = round(time.monotonic() - t0, 1)

    # ------------------------------------------------------------ start

    def start(self, timeout=600):
        for name, fn in (("images", self.build_images), ("kafka+valkey", self.start_storage),
                         ("registry+push", self.start_registry), ("operator", self.install_operator),
                         ("pipeline", self.apply_pipeline)):
            self._step(name, fn)
        self._step("ready", lambda: self.wait_ready(timeout))
        return self

    def build_images(self):
        run([ROOT / "scripts" / "images.sh", "build", *IMAGES], what="scripts/images.sh build")

    def start_storage(self):
        run([ROOT / "scripts" / "local.sh", "up", "--storage"], env=self.storage_env,
            what="scripts/local.sh up --storage")
        self.storage = read_env(self.dir / "local" / "env")

    def start_registry(self):
        run([ROOT / "scripts" / "registry.sh", "up"], env=self.registry_env, what="scripts/registry.sh up")
        self.registry = read_env(self.dir / "registry" / "env")
        run([ROOT / "scripts" / "images.sh", "push", *IMAGES, "catalog"], env=dict(os.environ, **self.registry),
            what="scripts/images.sh push")
        self.registry_host = self.registry["REGISTRY"].split("/", 1)[0]
        run([ROOT / "scripts" / "cluster.sh", "trust-registry", self.registry_host, self.registry["REGISTRY_CA"]],
            env=self.cluster_env, what="scripts/cluster.sh trust-registry")

    def values(self):
        """What the overlay's ${...} stand for."""
        return {"SP_REGISTRY": self.registry["REGISTRY"], "SP_KAFKA": self.storage["KAFKA_BROKERS"],
                "SP_VALKEY_URL": self.storage["VALKEY_URL"]}

    def pull_secret(self, ns):
        auth = Path(self.registry["REGISTRY_AUTH_FILE"]).read_bytes()
        return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                "metadata": {"name": "local-registry", "namespace": ns},
                "data": {".dockerconfigjson": base64.b64encode(auth).decode()}}

    def _apply_namespaces_first(self, docs, extra):
        """Namespaces, then `extra` (Secrets the pods need before they start), then the rest."""
        self.node.apply(*[d for d in docs if d["kind"] == "Namespace"])
        if extra:
            self.node.apply(*extra)
        self.node.apply(*[d for d in docs if d["kind"] != "Namespace"])

    def install_operator(self):
        rendered = self.node.kubectl("kustomize", str(OVERLAY)).stdout
        self.install = [substitute(d, self.values()) for d in yaml.safe_load_all(rendered) if d]
        self._apply_namespaces_first(self.install, [self.pull_secret(OPERATOR_NS)])
        self.node.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                          "crd/salespipelines.sales.blackfriday.dev")
        self.node.kubectl("rollout", "status", "-n", OPERATOR_NS, "deployment/salespipeline-operator",
                          "--timeout=300s", timeout=320)

    def pipeline_docs(self):
        docs = [d for d in yaml.safe_load_all(SAMPLE.read_text()) if d]
        for i, d in enumerate(docs):
            if d["kind"] == "SalesPipeline":
                for patch in self.patches:
                    d = merge_patch(d, substitute(yaml.safe_load(Path(patch).read_text()), self.values()))
                docs[i] = d
        return docs

    def apply_pipeline(self):
        ca = Path(self.registry["REGISTRY_CA"]).read_text()
        extra = [self.pull_secret(NS),
                 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "local-registry-ca", "namespace": NS},
                  "data": {"ca.crt": ca}},
                 {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": "local-valkey", "namespace": NS,
                               "annotations": {PASSWORD_READ_ANNOTATION: "true"}},
                  "data": {"password": base64.b64encode(self.storage["VALKEY_PASSWORD"].encode()).decode()}}]
        self._apply_namespaces_first(self.pipeline_docs(), extra)

    def pipeline(self):
        return self.node.get("salespipeline", "-n", NS, NAME)

    def pods(self, ns, selector=None):
        args = ["pods", "-n", ns] + (["-l", selector] if selector else [])
        return [p for p in self.node.get(*args)["items"] if not p["metadata"].get("deletionTimestamp")]

    def not_ready(self):
        """What is not Ready yet ("" when the pipeline and every pod of both namespaces are)."""
        sp = self.pipeline()
        if not ready(sp):
            cond = next((c for c in (sp.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), {})
            return f"SalesPipeline: {cond.get('reason')}: {cond.get('message')}"
        for ns in (NS, OPERATOR_NS):
            pods = self.pods(ns)
            bad = [p["metadata"]["name"] for p in pods if not ready(p)]
            if not pods or bad:
                return f"pods of {ns} not ready: {bad or 'none'}"
        return ""

    def wait_ready(self, timeout=600):
        last = {"why": ""}

        def check():
            last["why"] = self.not_ready()
            return not last["why"]
        try:
            wait_until(check, timeout, interval=2, what="the pipeline and its pods to be Ready")
        except TimeoutError:
            raise SetupError(f"not Ready after {timeout} s: {last['why']}\n{self.diagnostics()}") from None

    def diagnostics(self):
        """Pods, events and the last log lines of what is not ready: for a failure message."""
        out = [self.node.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout,
               self.node.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout[-4000:]]
        for ns in (NS, OPERATOR_NS):
            for p in self.node.get("pods", "-n", ns)["items"]:
                if not ready(p):
                    out.append(f"--- {ns}/{p['metadata']['name']}\n" + self.node.kubectl(
                        "logs", "-n", ns, p["metadata"]["name"], "--tail=20", check=False).stdout)
        return "\n".join(out)

    # ------------------------------------------------------------ what the tests read

    def service_url(self, component, port_name="http"):
        svc = self.node.get("service", "-n", NS, f"{NAME}-{component}")
        port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == port_name)
        return f"http://{svc['spec']['clusterIP']}:{port}"

    def dashboard(self):
        env = dict(os.environ, VALKEY_URL=self.storage["VALKEY_URL"],
                   VALKEY_PASSWORD=self.storage["VALKEY_PASSWORD"])
        return json.loads(run([BIN_DIR / "salesctl", "dashboard", "--json"], env=env))

    def scale_writers(self, group, replicas):
        sp = self.pipeline()
        writers = [dict(w, replicas=replicas) if w["name"] == group else w for w in sp["spec"]["writers"]]
        self.node.kubectl("patch", "salespipeline", "-n", NS, NAME, "--type=merge",
                          "-p", json.dumps({"spec": {"writers": writers}}))

    def save_logs(self):
        """Every pod's log (and its previous container's) and the events, under work_dir/logs."""
        out = self.dir / "logs"
        out.mkdir(exist_ok=True)
        for ns in (NS, OPERATOR_NS):
            for p in self.node.get("pods", "-n", ns)["items"]:
                name = p["metadata"]["name"]
                for prev in (False, True):
                    r = self.node.kubectl("logs", "-n", ns, name, *(["--previous"] if prev else []), check=False)
                    if r.returncode == 0 and r.stdout:
                        (out / f"{name}{'.previous' if prev else ''}.log").write_text(r.stdout)
        (out / "events.txt").write_text(self.node.kubectl("get", "events", "-A", "-o", "wide",
                                                          "--sort-by=.lastTimestamp", check=False).stdout)
        return out

    # ------------------------------------------------------------ stop

    def stop(self):
        """Everything start() made, in reverse; every step is tried, the first error raised."""
        errors = []

        def attempt(what, fn):
            try:
                fn()
            except Exception as e:  # keep tearing down
                errors.append(f"{what}: {e}")
        t0 = time.monotonic()
        attempt("delete the pipeline", self._delete_pipeline)
        attempt("uninstall the operator", self._uninstall)
        attempt("registry down", lambda: run([ROOT / "scripts" / "registry.sh", "down"], env=self.registry_env))
        attempt("storage down", lambda: run([ROOT / "scripts" / "local.sh", "down"], env=self.storage_env))
        if self.registry:
            hosts = Path(self.node.env["SP_NODE_REGISTRY_CONFIG"]) / self.registry["REGISTRY"].split("/", 1)[0]
            attempt("untrust the registry", lambda: subprocess.run(["rm", "-rf", str(hosts)], check=True))
        self.timings["teardown"] = round(time.monotonic() - t0, 1)
        if errors:
            raise SetupError("; ".join(errors))

    def _delete_pipeline(self):
        k = self.node.kubectl
        if k("get", "crd", "salespipelines.sales.blackfriday.dev", check=False).returncode != 0:
            return
        r = k("delete", "salespipeline", "-n", NS, NAME, "--ignore-not-found", "--timeout=120s", check=False,
              timeout=150)
        if r.returncode != 0:   # no operator to honour the finalizer: say so, then let it go
            k("patch", "salespipeline", "-n", NS, NAME, "--type=merge", "-p",
              '{"metadata":{"finalizers":null}}', check=False)
            raise SetupError(f"the SalesPipeline was not deleted through its finalizer: {r.stderr}")

    def _uninstall(self):
        k = self.node.kubectl
        k("delete", "namespace", NS, "--ignore-not-found", "--timeout=180s", timeout=200)
        if self.install:
            k("delete", "--ignore-not-found", "--timeout=180s", "-f", "-", timeout=200,
              stdin="\n---\n".join(json.dumps(d) for d in self.install))
