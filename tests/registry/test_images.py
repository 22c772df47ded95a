"""Issue 10: the images really run, and `make push` publishes them with the catalog.

Every container runs with podman on runc (scripts/images.sh's store and settings), host
network, read-only root file system, as the image's non-root user: the workers answer
--version, the api /healthz, the writer a stock grpcio call against a real Kafka, the consumer
counts a sale into a real Valkey, salesctl pulls the catalog from the registry."""
import json
import subprocess
import sys
import uuid

import grpc
import pytest

from harness import ROOT, free_port, http_get, wait_until
from registry_util import ARTIFACT_TYPE, CATALOG, MEDIA_TYPE, sha256

sys.path.insert(0, str(ROOT / "tests" / "writer"))
from writer_util import generate_stubs, read_records, record_count  # noqa: E402

IMAGES_SH = str(ROOT / "scripts" / "images.sh")
NON_ROOT = "65532:65532"
CONTAINER_DISK = "valkey-vm"   # the Valkey VMs' disk for KubeVirt: an image, not a program


def podman(*args, check=True, timeout=120):
    return subprocess.run([IMAGES_SH, "podman", *args], capture_output=True, text=True,
                          check=check, timeout=timeout)


class Container:
    """`podman run -d` of an image; stop() (SIGTERM, then removal) even when the test fails."""

    def __init__(self, image, *args, env=None, entrypoint=None, volumes=()):
        self.name = f"sp-test-{uuid.uuid4().hex[:12]}"
        cmd = ["run", "-d", "--name", self.name, "--network", "host", "--read-only"]
        for k, v in (env or {}).items():
            cmd += ["-e", f"{k}={v}"]
        for host, inside in volumes:
            cmd += ["-v", f"{host}:{inside}:ro"]
        if entrypoint:
            cmd += ["--entrypoint", entrypoint]
        podman(*cmd, image, *args)

    def logs(self):
        return podman("logs", self.name, check=False).stdout

    def running(self):
        return podman("inspect", "--format", "{{.State.Running}}", self.name).stdout.strip() == "true"

    def uid(self):
        """The real uid of the container's main process, read from the host's /proc."""
        pid = podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout.strip()
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("Uid:"):
                return int(line.split()[1])
        raise AssertionError("no Uid line")

    def stop(self):
        """SIGTERM and wait; returns the exit code."""
        podman("stop", "-t", "30", self.name, check=False)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", self.name, check=False).stdout.strip()
        podman("rm", "-f", self.name, check=False)
        return int(code) if code.lstrip("-").isdigit() else None


@pytest.fixture
def containers():
    started = []

    def start(image, *args, **kw):
        c = Container(image, *args, **kw)
        started.append(c)
        return c

    yield start
    problems = []
    for c in started:
        logs = c.logs()
        code = c.stop()
        if code != 0:
            problems.append(f"{c.name} exited {code}:\n{logs[-3000:]}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    return generate_stubs(tmp_path_factory.mktemp("image-stubs"))


def wait_http(url, what, container, timeout=60):
    def up():
        assert container.running(), f"{what} exited:\n{container.logs()}"
        return http_get(url)[0] == 200
    wait_until(up, timeout, what=what)


# ---------------------------------------------------------------- they run

def test_every_image_prints_its_version(images):
    version = podman("image", "inspect", "--format",
                     '{{index .Config.Labels "org.opencontainers.image.version"}}',
                     images["api"]).stdout.strip()
    for name, ref in images.items():
        if name == CONTAINER_DISK:
            continue
        out = podman("run", "--rm", "--network", "host", "--read-only", ref, "--version")
        assert out.stdout.strip() == f"{name} {version}", (name, out.stdout, out.stderr)
    out = podman("run", "--rm", "--read-only", "--entrypoint", "/usr/local/bin/salesctl",
                 images["consumer"], "--version")
    assert out.stdout.strip() == f"salesctl {version}"


def test_api_image_serves_healthz_as_non_root(images, containers):
    port = free_port()
    api = containers(images["api"], "--port", str(port), "--bind", "127.0.0.1",
                     "--bridge-url", f"http://127.0.0.1:{free_port()}/ventas")
    wait_http(f"http://127.0.0.1:{port}/healthz", "the api's /healthz", api)
    assert api.uid() == 65532
    assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 503   # no bridge behind it
    assert "sp_http_in_flight 0" in http_get(f"http://127.0.0.1:{port}/metrics")[1]


def test_writer_image_answers_a_stock_grpc_call(images, containers, kafka, topic, stubs):
    grpc_port, http_port = free_port(), free_port()
    writer = containers(images["writer"], "--grpc-port", str(grpc_port), "--http-port",
                        str(http_port), "--kafka-brokers", kafka.bootstrap, "--topic", topic,
                        env={"BIND_ADDR": "127.0.0.1"})
    wait_http(f"http://127.0.0.1:{http_port}/readyz", "the writer's /readyz", writer)
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = stubs.pb_grpc.ProductSaleServiceStub(channel)
        answer = stub.ProcesarVenta(stubs.pb.ProductSaleRequest(
            categoria=1, producto_id="ELE-001", precio=199.99, cantidad_vendida=2), timeout=30)
        health = stubs.health_grpc.HealthStub(channel).Check(stubs.health.HealthCheckRequest(), timeout=10)
    assert answer.estado
    assert health.status == stubs.health.HealthCheckResponse.SERVING
    assert record_count(kafka.bootstrap, topic) == 1
    [record] = read_records(kafka.bootstrap, topic, 1)
    sale = stubs.pb.ProductSaleRequest.FromString(record.value())
    assert (sale.producto_id, sale.cantidad_vendida) == ("ELE-001", 2)
    assert writer.uid() == 65532


def test_consumer_image_counts_a_sale(images, containers, kafka, topic, valkey_clean, stubs):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    p.produce(topic, key=b"ROP-003", value=stubs.pb.ProductSaleRequest(
        categoria=2, producto_id="ROP-003", precio=25.5, cantidad_vendida=3).SerializeToString())
    assert p.flush(30) == 0
    http_port = free_port()
    consumer = containers(images["consumer"], "--kafka-brokers", kafka.bootstrap, "--topic", topic,
                          "--group", f"g-{topic}", "--valkey-url", valkey_clean.url,
                          "--http-port", str(http_port), env={"BIND_ADDR": "127.0.0.1"})
    wait_http(f"http://127.0.0.1:{http_port}/readyz", "the consumer's /readyz", consumer)
    client = valkey_clean.client()
    wait_until(lambda: client.get("sp:total_sales") == "1", 60, what="the sale counted in Valkey")
    assert client.zscore("sp:units", "ROP-003") == 3
    # salesctl from the same image reads the dashboard back.
    out = podman("run", "--rm", "--network", "host", "--read-only", "--entrypoint",
                 "/usr/local/bin/salesctl", images["consumer"], "dashboard", "--json",
                 "--valkey-url", valkey_clean.url)
    assert json.loads(out.stdout)["total_sales"] == 1


def test_salesctl_image_pulls_the_catalog(images, registry, tmp_path):
    """The C OCI client inside the shipped image: TLS against the registry's CA, basic auth."""
    env = registry.client_env()
    # Readable by the image's user, as a Kubernetes Secret volume is (mode 0644).
    auth = tmp_path / "config.json"
    auth.write_bytes(open(env["REGISTRY_AUTH_FILE"], "rb").read())
    auth.chmod(0o644)
    out = podman("run", "--rm", "--network", "host", "--read-only",
                 "-v", f"{auth}:/auth/config.json:ro",
                 "-v", f"{env['REGISTRY_CA']}:/auth/ca.crt:ro",
                 "-e", "REGISTRY_AUTH_FILE=/auth/config.json", "-e", "REGISTRY_CA=/auth/ca.crt",
                 "--entrypoint", "/usr/local/bin/salesctl", images["consumer"], "catalog",
                 "--catalog-artifact", registry.catalog_ref)
    assert out.stdout.count("\n") == 300
    assert f"300 products, {sha256(CATALOG.read_bytes())}" in out.stderr


# ---------------------------------------------------------------- make push

def test_push_publishes_every_image_and_the_catalog(images, own_registry, tmp_path):
    """make images && make registry-up && make push: the registry lists every image and the
    catalog; each image's config has a non-root user and an entrypoint; the catalog and an
    image come back intact."""
    r = own_registry.start()
    env = dict(r.client_env(), REGISTRY=r.prefix)
    subprocess.run([IMAGES_SH, "push"], env=dict(__import__("os").environ, **env), check=True,
                   capture_output=True, timeout=600)
    repos = r.get("/v2/_catalog").json()["repositories"]
    assert sorted(repos) == sorted(f"blackfriday/{n}" for n in [*images, "catalog"])

    version = podman("image", "inspect", "--format",
                     '{{index .Config.Labels "org.opencontainers.image.version"}}',
                     images["api"]).stdout.strip()
    for name in images:
        m = r.get(f"/v2/blackfriday/{name}/manifests/{version}",
                  accept="application/vnd.oci.image.manifest.v1+json")
        assert m.status_code == 200, (name, m.text)
        cfg_desc = m.json()["config"]
        cfg = r.get(f"/v2/blackfriday/{name}/blobs/{cfg_desc['digest']}")
        assert sha256(cfg.content) == cfg_desc["digest"]
        config = cfg.json()["config"]
        labels = config["Labels"]
        for key in ("source", "version", "revision", "created"):
            assert labels.get(f"org.opencontainers.image.{key}"), (name, key, labels)
        assert labels["org.opencontainers.image.version"] == version
        if name == CONTAINER_DISK:   # KubeVirt copies the disk out; nothing of it runs
            assert not config.get("Entrypoint") and len(m.json()["layers"]) >= 1, (name, config)
            continue
        user = config["User"]
        assert user == NON_ROOT and not user.startswith("0"), (name, user)
        binary = "consumer" if name == "consumer" else name
        assert config["Entrypoint"] == [f"/usr/local/bin/{binary}"], (name, config)

    # The catalog, byte for byte, its digests checked.
    m = r.get(f"/v2/blackfriday/catalog/manifests/{version}",
              accept="application/vnd.oci.image.manifest.v1+json")
    assert m.json()["artifactType"] == ARTIFACT_TYPE
    [layer] = m.json()["layers"]
    data = CATALOG.read_bytes()
    assert (layer["mediaType"], layer["digest"], layer["size"]) == (MEDIA_TYPE, sha256(data), len(data))
    r.oras("pull", "--no-tty", "-o", str(tmp_path / "pulled"), f"{r.prefix}/catalog:{version}")
    assert (tmp_path / "pulled" / "catalog.json").read_bytes() == data

    # An image pulled back whole (skopeo checks every blob's digest), then run from the registry.
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(open(env["REGISTRY_CA"], "rb").read())
    subprocess.run([IMAGES_SH, "skopeo", "copy", "--authfile", env["REGISTRY_AUTH_FILE"],
                    "--src-cert-dir", str(certs), f"docker://{r.prefix}/api:{version}",
                    f"oci:{tmp_path / 'api-oci'}:pulled"], check=True, capture_output=True)
    index = json.loads((tmp_path / "api-oci" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "pulled"
    ref = f"{r.prefix}/api:{version}"
    podman("pull", "--authfile", env["REGISTRY_AUTH_FILE"], "--cert-dir", str(certs), ref)
    out = podman("run", "--rm", "--read-only", ref, "--version")
    assert out.stdout.strip() == f"api {version}"
    podman("rmi", ref, check=False)
