"""Pods on the real node (`scripts/cluster.sh up --node`): a Deployment behind a Service, cluster
DNS for Services and headless Services, the in-cluster API with a ServiceAccount token, the pod
network rule, `kubectl top` from metrics-server and an HPA acting on it.

Every pod runs under the `restricted` Pod Security level, from the FROM-scratch test image
(static busybox + kubectl, conftest.py). Pod commands use busybox's own `nc` and `nslookup`:
its `wget` needs glibc's NSS, which a FROM-scratch image lacks."""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from harness import free_port, wait_until
from nodekit import CLUSTER_SH

SECURITY = {
    "runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}


def container(image, name, command, **extra):
    return {"name": name, "image": image, "imagePullPolicy": "Never", "command": command,
            "securityContext": SECURITY, "env": [{"name": "HOME", "value": "/tmp"}],
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}], **extra}


def pod_spec(image, command, sa=None, **extra):
    # A shell as PID 1 ignores SIGTERM: a short grace period keeps deletions quick.
    spec = {"terminationGracePeriodSeconds": 1, "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [container(image, "main", command, **extra)]}
    if sa:
        spec["serviceAccountName"] = sa
    return spec


def deployment(ns, name, image, command, replicas=1, **extra):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": pod_spec(image, command, **extra)}}}


def service(ns, name, selector, port, target, headless=False):
    spec = {"selector": {"app": selector}, "ports": [{"port": port, "targetPort": target}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


# An HTTP server answering with its pod's name.
WEB = ["sh", "-c", "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
WEB_PROBE = {"readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
             "ports": [{"containerPort": 8080}]}


def ready_pods(node, ns, app):
    pods = node.get("pods", "-n", ns, "-l", f"app={app}")["items"]
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def client_pod(node, ns, image, name="client", sa=None):
    """A pod to run commands in; returns its name once it runs."""
    node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                "spec": pod_spec(image, ["sleep", "3600"], sa=sa)})
    node.kubectl("wait", "-n", ns, f"pod/{name}", "--for=condition=Ready", "--timeout=90s")
    return name


def http_get_via_nc(node, ns, pod, ip, port):
    r = node.exec(ns, pod, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}",
                  check=False)
    return r.stdout if r.returncode == 0 else None


def nslookup(node, ns, pod, name):
    """The A records of `name` from busybox's resolver (it asks the pod's nameserver itself)."""
    r = node.exec(ns, pod, "nslookup", "-type=a", name, check=False)
    if r.returncode != 0:
        return None
    answer = r.stdout.split("Name:", 1)
    return sorted(re.findall(r"^Address: ([0-9.]+)$", answer[1], re.M)) if len(answer) == 2 else None


@pytest.fixture
def web(node, ns, test_image):
    """Two replicas of the web server, Ready behind a Service and a headless Service."""
    node.apply(deployment(ns, "web", test_image, WEB, replicas=2, **WEB_PROBE),
               service(ns, "web", "web", 80, 8080),
               service(ns, "web-headless", "web", 50051, 8080, headless=True))
    node.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    pods = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(ready_pods(node, ns, "web")),
                      60, interval=0.5, what="two ready web pods")
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}


def test_deployment_ready_behind_a_service(node, ns, test_image, web):
    """Both replicas answer through the Service's ClusterIP (kube-proxy), from the host and
    from a pod; the node reports the pods' IPs from the pod range."""
    cluster_ip = node.get("service", "-n", ns, "web")["spec"]["clusterIP"]
    prefix = node.host_address.rsplit(".", 2)[0] + "."
    assert all(ip.startswith(prefix) for ip in web.values()), web
    client = client_pod(node, ns, test_image)

    seen = set()

    def both_answered():
        body = http_get_via_nc(node, ns, client, cluster_ip, 80)
        if body:
            seen.add(body.strip().splitlines()[-1])
        return seen == set(web)
    wait_until(both_answered, 60, interval=0.1, what=f"both web pods to answer on {cluster_ip}:80 (seen {seen})")

    # The host reaches the ClusterIP too (kube-proxy's OUTPUT rules).
    with socket.create_connection((cluster_ip, 80), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.makefile("rb").read().decode().strip().splitlines()[-1] in web


def test_dns_resolves_services_and_headless_services(node, ns, test_image, web):
    """CoreDNS: a Service name gives its ClusterIP, a headless Service every ready pod's IP (what
    the bridge's dns:///<name>-headless.<ns>.svc.cluster.local:50051 target resolves)."""
    client = client_pod(node, ns, test_image)
    cluster_ip = node.get("service", "-n", ns, "web")["spec"]["clusterIP"]
    assert wait_until(lambda: nslookup(node, ns, client, f"web.{ns}.svc.cluster.local"), 30,
                      interval=0.5, what="the Service's A record") == [cluster_ip]
    headless = f"web-headless.{ns}.svc.cluster.local"
    assert wait_until(lambda: nslookup(node, ns, client, headless), 30, interval=0.5,
                      what="the headless Service's A records") == sorted(web.values())
    assert wait_until(lambda: nslookup(node, ns, client, "kubernetes.default.svc.cluster.local"),
                      30, interval=0.5, what="kubernetes.default") == ["10.0.0.1"]
    # Nothing outside the cluster resolves: pods have no upstream.
    assert nslookup(node, ns, client, "deb.debian.org") is None

    # One pod less: the headless answer follows.
    node.kubectl("scale", "-n", ns, "deployment/web", "--replicas=1")
    wait_until(lambda: len(nslookup(node, ns, client, headless) or []) == 1, 60, interval=0.5,
               what="the headless Service to list one pod")


def test_pod_reads_the_api_with_its_service_account(node, ns, test_image):
    """In-cluster config (the `kubernetes` Service, the mounted token and CA): the pod's
    ServiceAccount may list pods, as its Role says, and nothing more."""
    node.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "pod-reader", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "reader", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    client = client_pod(node, ns, test_image, sa="reader")

    who = node.exec(ns, client, "kubectl", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert who.stdout == f"system:serviceaccount:{ns}:reader"
    pods = node.exec(ns, client, "kubectl", "get", "pods", "-o", "name")
    assert f"pod/{client}" in pods.stdout.split()
    denied = node.exec(ns, client, "kubectl", "get", "secrets", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr


class HostServer:
    """A TCP server on the node's host address (where pods reach the host) that greets."""

    def __init__(self, address):
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"hello from the host\n")

    def close(self):
        self.sock.close()
        self.thread.join(5)


def test_pod_network_stays_inside_the_machine(node, ns, test_image):
    """Pods reach the host's services on the host address, and have no route anywhere else;
    the kubelet's API refuses anonymous callers."""
    client = client_pod(node, ns, test_image)
    routes = node.exec(ns, client, "ip", "-4", "route").stdout
    assert "default" not in routes, routes
    assert f"10.0.0.0/24 via {node.host_address}" in routes, routes

    server = HostServer(node.host_address)
    try:
        r = node.exec(ns, client, "sh", "-c", f"nc -w 3 {node.host_address} {server.port} </dev/null")
        assert r.stdout == "hello from the host\n"
    finally:
        server.close()

    # No route out: the connect fails in the pod, nothing is sent.
    out = node.exec(ns, client, "sh", "-c", "nc -w 2 192.0.2.1 80 </dev/null", check=False)
    assert out.returncode != 0 and "unreachable" in (out.stderr + out.stdout).lower(), out

    # The kubelet's API (pods can reach it on the host address) wants a client certificate.
    ctx = ssl.create_default_context(cafile=str(node.state / "pki" / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"https://{node.host_address}:10250/pods", context=ctx, timeout=5)
    assert e.value.code == 401


def test_top_pods_and_the_hpa_act_on_metrics_server(node, ns, test_image):
    """metrics-server reads the kubelet's resource metrics: `kubectl top pods` lists the pods,
    and the HPA controller gets a current CPU utilisation and scales a busy Deployment up."""
    busy = ["sh", "-c", "while :; do :; done"]
    node.apply(
        deployment(ns, "busy", test_image, busy,
                   resources={"requests": {"cpu": "20m", "memory": "16Mi"},
                              "limits": {"cpu": "50m", "memory": "32Mi"}}),
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "busy", "namespace": ns},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
                  "minReplicas": 1, "maxReplicas": 2,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 20}}}]}})
    node.kubectl("rollout", "status", "-n", ns, "deployment/busy", "--timeout=120s")

    def top():
        r = node.kubectl("top", "pods", "-n", ns, "--no-headers", check=False)
        rows = [line.split() for line in r.stdout.splitlines()] if r.returncode == 0 else []
        return rows if any(row[0].startswith("busy-") for row in rows) else None
    rows = wait_until(top, 120, interval=2, what="kubectl top pods")
    cpu_millis = int(next(row for row in rows if row[0].startswith("busy-"))[1].rstrip("m"))
    # The loop burns up to its 50m limit; 20% of the 20m request is 4m, far above an idle pod's
    # 0-1m, and low enough to hold on a machine whose other work starves the pod.
    assert cpu_millis > 4, rows

    def current_utilisation():
        st = node.get("hpa", "-n", ns, "busy").get("status", {})
        for m in st.get("currentMetrics") or []:
            value = (m.get("resource") or {}).get("current", {}).get("averageUtilization")
            if value is not None:
                return value
        return None
    assert wait_until(current_utilisation, 120, interval=2, what="the HPA's current CPU") > 20
    wait_until(lambda: node.get("deployment", "-n", ns, "busy")["spec"]["replicas"] == 2, 120,
               interval=2, what="the HPA to scale busy to 2")


@pytest.fixture
def host_registry(node, tmp_path):
    """An OCI registry (distribution) on the host address with TLS from its own CA and htpasswd
    auth, as the e2e's local registry; the node trusts the CA through containerd's hosts.toml
    in SP_NODE_REGISTRY_CONFIG. Yields (host:port, user, password)."""
    d = tmp_path / "registry"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", *ec, "-days", "1", "-subj", "/CN=test-registry-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-new", *ec, "-subj", "/CN=registry", "-keyout", "tls.key", "-out", "tls.csr")
    (d / "san.ext").write_text(f"subjectAltName=IP:{node.host_address}\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "tls.crt")
    user, password = "puller", uuid.uuid4().hex
    run("htpasswd", "-Bbc", "htpasswd", user, password)
    port = free_port()
    host = f"{node.host_address}:{port}"
    (d / "config.yml").write_text(json.dumps({
        "version": 0.1, "storage": {"filesystem": {"rootdirectory": str(d / "data")}},
        "http": {"addr": host, "tls": {"certificate": str(d / "tls.crt"), "key": str(d / "tls.key")}},
        "auth": {"htpasswd": {"realm": "test", "path": str(d / "htpasswd")}}}))
    log = open(d / "registry.log", "w")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    hosts_dir = Path(node.env["SP_NODE_REGISTRY_CONFIG"]) / host
    try:
        wait_until(lambda: socket.create_connection((node.host_address, port), timeout=1).close() or True,
                   30, interval=0.1, what="the registry to listen")
        subprocess.run([str(CLUSTER_SH), "trust-registry", host, str(d / "ca.crt")], check=True,
                       env=dict(os.environ, SP_CLUSTER_DIR=str(node.state)))
        assert (hosts_dir / "hosts.toml").is_file()
        (d / "certs").mkdir()
        (d / "certs" / "ca.crt").write_bytes((d / "ca.crt").read_bytes())
        yield host, user, password, d
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(hosts_dir, ignore_errors=True)


def test_pod_pulls_from_a_tls_registry_on_the_host(node, ns, make_image, host_registry):
    """The path the e2e's images take: pushed to a registry on the host address (TLS with its
    own CA, htpasswd), pulled by containerd with the pod's imagePullSecret; refused without."""
    host, user, password, d = host_registry
    # A file of its own makes the digest new: containerd names an image it already holds by
    # the first reference it learnt for that digest.
    (d / "nonce").write_text(uuid.uuid4().hex)
    archive = make_image("localhost/pulled:1", {"/bin/busybox": "/bin/busybox", "/nonce": d / "nonce"},
                         ["sleep"])
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-creds", f"{user}:{password}",
                    "--dest-cert-dir", str(d / "certs"), f"oci-archive:{archive}",
                    f"docker://{host}/test/pulled:1"], check=True)
    node.kubectl("create", "secret", "docker-registry", "pull", "-n", ns, f"--docker-server={host}",
                 f"--docker-username={user}", f"--docker-password={password}")
    image = f"{host}/test/pulled:1"

    def pod(name, secret):
        spec = pod_spec(image, ["sleep", "3600"])
        spec["containers"][0]["imagePullPolicy"] = "Always"
        if secret:
            spec["imagePullSecrets"] = [{"name": secret}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec}

    node.apply(pod("with-secret", "pull"), pod("without-secret", None))
    node.kubectl("wait", "-n", ns, "pod/with-secret", "--for=condition=Ready", "--timeout=90s")
    assert node.get("pod", "-n", ns, "with-secret")["status"]["containerStatuses"][0]["imageID"] \
        .startswith(f"{host}/test/pulled@sha256:")

    def pull_refused():
        events = node.get("events", "-n", ns, "--field-selector", "involvedObject.name=without-secret")
        return any("401 Unauthorized" in e.get("message", "") for e in events["items"])
    wait_until(pull_refused, 60, interval=1, what="the pull without credentials to be refused (401)")
