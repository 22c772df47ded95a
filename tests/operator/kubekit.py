"""Helpers for the operator's tests: a small REST client for the test cluster and the sample."""
import json
import subprocess
import time
from pathlib import Path

import requests
import yaml

from harness import ROOT

CRD_FILE = ROOT / "crds" / "salespipelines.sales.blackfriday.dev.yaml"
SAMPLE_FILE = ROOT / "manifests" / "sample-salespipeline.yaml"
GROUP_PATH = "/apis/sales.blackfriday.dev/v1alpha1"
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
UPSTREAM_CRDS = Path(__file__).parent / "upstream-crds"   # Strimzi 1.2, KubeVirt 1.7 (SOURCES.md)


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body
        try:
            self.message = json.loads(body).get("message", body)
        except ValueError:
            self.message = body


class Kube:
    """A thin REST client with the admin client certificate (requests, not kubectl: a kubectl
    process per poll would cost a third of a second)."""

    def __init__(self, state_dir):
        self.state = Path(state_dir)
        self.kubeconfig = self.state / "kubeconfig"
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        self.server = cfg["clusters"][0]["cluster"]["server"]
        pki = self.state / "pki"
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        self.session.verify = str(pki / "ca.crt")
        self.session.cert = (str(pki / "admin.crt"), str(pki / "admin.key"))
        self.kubectl_bin = str(self.state / "kubectl")

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202),
                timeout=30):
        data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        r = self.session.request(method, self.server + path, data=data, timeout=timeout,
                                 headers={"Content-Type": content_type, "Accept": "application/json"})
        if r.status_code not in ok:
            raise ApiError(r.status_code, r.text)
        return r.json() if r.text else None

    def get(self, path):
        return self.request("GET", path)

    def get_or_none(self, path):
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def create(self, path, obj, dry_run=False):
        return self.request("POST", path + ("?dryRun=All" if dry_run else ""), obj)

    def merge_patch(self, path, patch):
        return self.request("PATCH", path, patch, "application/merge-patch+json")

    def apply(self, path, obj, manager="tests"):
        return self.request("PATCH", f"{path}?fieldManager={manager}&force=true", obj,
                            "application/apply-patch+yaml")

    def delete(self, path):
        return self.request("DELETE", path, ok=(200, 202, 404))

    def kubectl(self, *args, stdin=None, check=True):
        p = subprocess.run([self.kubectl_bin, *args], input=stdin, capture_output=True, text=True,
                           timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{p.stderr}")
        return p

    # --- paths
    @staticmethod
    def sp_path(ns, name=None):
        return f"{GROUP_PATH}/namespaces/{ns}/salespipelines" + (f"/{name}" if name else "")

    @staticmethod
    def path(kind, ns, name=None):
        base = {
            "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
            "Service": "/api/v1/namespaces/{ns}/services",
            "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
            "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
            "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
            "Pod": "/api/v1/namespaces/{ns}/pods",
            "Event": "/api/v1/namespaces/{ns}/events",
            "Lease": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            "Secret": "/api/v1/namespaces/{ns}/secrets",
            "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            "Kafka": "/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkas",
            "KafkaNodePool": "/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkanodepools",
            "KafkaTopic": "/apis/kafka.strimzi.io/v1/namespaces/{ns}/kafkatopics",
            "VirtualMachine": "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines",
        }[kind].format(ns=ns)
        return base + (f"/{name}" if name else "")

    def owned(self, kind, ns, instance):
        sel = f"app.kubernetes.io/managed-by=salespipeline-operator,app.kubernetes.io/instance={instance}"
        return self.get(self.path(kind, ns) + "?labelSelector=" + requests.utils.quote(sel))["items"]


def data_namespace(ns):
    """Where a pipeline of namespace `ns` keeps its Valkey VMs by default (spec.valkey.namespace)."""
    return f"{ns}-data"


def sample_pipeline(ns, name="black-friday"):
    """The issue's sample SalesPipeline (manifests/sample-salespipeline.yaml), moved to `ns`."""
    docs = [d for d in yaml.safe_load_all(SAMPLE_FILE.read_text()) if d]
    sp = next(d for d in docs if d["kind"] == "SalesPipeline")
    sp["metadata"] = {"name": name, "namespace": ns}
    return sp


def lease_holder(kube, lease_ns, name):
    lease = kube.get_or_none(kube.path("Lease", lease_ns, name))
    return lease and lease["spec"].get("holderIdentity")


def condition(sp, ctype):
    for c in (sp.get("status") or {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


# ---------------------------------------------------------------- Strimzi's and KubeVirt's part
# No Strimzi or KubeVirt operator runs in the tests: these write their objects' status as they
# would (conditions, observedGeneration, VM readiness).

def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def strimzi_status(kube, ns, kind, name, ready=True, message=""):
    """Strimzi's status for the generation it reconciled: Ready, or NotReady with a message."""
    obj = kube.get(kube.path(kind, ns, name))
    cond = ({"type": "Ready", "status": "True", "lastTransitionTime": _now()} if ready else
            {"type": "NotReady", "status": "True", "reason": "KafkaError", "message": message,
             "lastTransitionTime": _now()})
    st = {"observedGeneration": obj["metadata"]["generation"], "conditions": [cond]}
    if kind == "KafkaNodePool":
        n = obj["spec"]["replicas"]
        st.update(replicas=n, nodeIds=list(range(n)), roles=obj["spec"]["roles"])
    kube.merge_patch(kube.path(kind, ns, name) + "/status", {"status": st})


def vm_status(kube, ns, name, ready=True, restart_required=False):
    """KubeVirt's status of a VirtualMachine. The CRD here has no status subresource (virt-
    operator's has): a merge patch of the object itself."""
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": _now(),
              **({} if ready else {"reason": "GuestNotReady", "message": "guest not ready"})}]
    if restart_required:
        conds.append({"type": "RestartRequired", "status": "True", "lastTransitionTime": _now(),
                      "message": "a non-live-updatable field was changed in the template spec"})
    kube.merge_patch(kube.path("VirtualMachine", ns, name), {"status": {
        "ready": ready, "printableStatus": "Running" if ready else "Starting", "created": True,
        "conditions": conds}})


def infra_ready(kube, ns, name):
    """Strimzi and KubeVirt report every object of pipeline `name` ready (objects already
    reported ready for their generation are left alone)."""
    for kind in ("Kafka", "KafkaNodePool", "KafkaTopic"):
        for o in kube.owned(kind, ns, name):
            st = o.get("status") or {}
            if st.get("observedGeneration") != o["metadata"]["generation"] or \
                    (condition(o, "Ready") or {}).get("status") != "True":
                strimzi_status(kube, ns, kind, o["metadata"]["name"])
    for o in kube.owned("VirtualMachine", data_namespace(ns), name):
        if not (o.get("status") or {}).get("ready"):
            vm_status(kube, data_namespace(ns), o["metadata"]["name"])
