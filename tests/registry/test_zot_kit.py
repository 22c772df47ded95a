"""Issue 10: the Zot VM kit (zot-vm/). What can be checked without GCP: cloud-init's own schema
check of the rendered user data, Zot's configuration rendered and checked as JSON, the gcloud
commands create.sh would run, the Kubernetes objects gke.sh makes, and the kit's own TLS
certificate, CA and users serving a real registry through the same push and pull flow (make
push, the api's catalog pull with the pull Secret exactly as a pod mounts it)."""
import base64
import json
import os
import subprocess

import pytest
import yaml

from harness import BIN_DIR, ROOT, SANITIZER_ENV, free_port, wait_until
from registry_util import CATALOG, Registry, sha256

KIT = ROOT / "zot-vm"
KUBECTL = os.path.expanduser("~/.cache/salespipeline/k8s-v1.36.3/bin/kubectl")


def render(out, ip="10.128.0.5", port="5000", **env):
    subprocess.run([str(KIT / "render.sh"), str(out)], check=True, capture_output=True,
                   env=dict(os.environ, ZOT_IP=ip, ZOT_PORT=port, PROJECT="my-project", **env))
    return out


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return render(tmp_path_factory.mktemp("kit"))


def test_user_data_passes_cloud_init_schema(kit, tmp_path):
    ok = subprocess.run(["cloud-init", "schema", "--config-file", str(kit / "user-data.yaml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "Valid cloud-config" in ok.stdout, ok.stdout + ok.stderr
    # The check can fail: a wrong type is named.
    bad = tmp_path / "bad.yaml"
    bad.write_text((kit / "user-data.yaml").read_text().replace("package_update: true",
                                                                "package_update: sometimes"))
    refused = subprocess.run(["cloud-init", "schema", "--config-file", str(bad)],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "package_update" in refused.stdout + refused.stderr


def test_user_data_carries_the_kit(kit):
    data = yaml.safe_load((kit / "user-data.yaml").read_text())
    files = {f["path"]: f for f in data["write_files"]}
    assert json.loads(files["/etc/zot/config.json"]["content"]) == json.loads((kit / "config.json").read_text())
    assert files["/etc/zot/tls/server.key"]["content"] == (kit / "server.key").read_text()
    assert files["/etc/zot/tls/ca.crt"]["content"] == (kit / "ca.crt").read_text()
    assert files["/etc/zot/htpasswd"]["content"] == (kit / "htpasswd").read_text()
    install = files["/usr/local/sbin/zot-install"]["content"]
    assert "releases/download/v2.1.21/zot-linux-amd64" in install
    assert "8751cc0daf739634835a3bd8206e3094c84d552e2c462e4a4baf80f40dd92685" in install
    assert "sha256sum -c" in install
    unit = files["/etc/systemd/system/zot.service"]["content"]
    assert "User=zot" in unit and "RequiresMountsFor=/var/lib/zot" in unit
    assert data["mounts"][0][:2] == ["LABEL=zot-data", "/var/lib/zot"]
    assert data["fs_setup"][0]["overwrite"] is False   # the disk's data survives a new VM
    assert "ca.key" not in (kit / "user-data.yaml").read_text()
    assert (kit / "ca.key").read_text() not in (kit / "user-data.yaml").read_text()


def test_zot_config_is_json_with_the_settings(kit):
    c = json.loads((kit / "config.json").read_text())
    assert c["storage"]["rootDirectory"].startswith("/var/lib/zot/")   # on the persistent disk
    assert c["storage"]["dedupe"] is True and c["storage"]["gc"] is True
    http = c["http"]
    assert http["port"] == "5000" and http["address"] == "0.0.0.0"
    assert http["tls"] == {"cert": "/etc/zot/tls/server.crt", "key": "/etc/zot/tls/server.key"}
    assert http["auth"]["htpasswd"]["path"] == "/etc/zot/htpasswd"
    ac = http["accessControl"]
    assert ac["adminPolicy"]["users"] == ["pusher"]
    assert ac["repositories"]["**"]["policies"] == [{"users": ["puller"], "actions": ["read"]}]
    assert ac["repositories"]["**"]["defaultPolicy"] == []   # anonymous: nothing
    users = [line.split(":")[0] for line in (kit / "htpasswd").read_text().splitlines()]
    assert users == ["pusher", "puller"]
    assert all(line.split(":", 1)[1].startswith("$2y$") for line in (kit / "htpasswd").read_text().splitlines())


def test_certificate_names_the_vm_and_chains_to_the_kit_ca(kit, tmp_path):
    out = subprocess.run(["openssl", "verify", "-CAfile", str(kit / "ca.crt"), str(kit / "server.crt")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    san = subprocess.run(["openssl", "x509", "-in", str(kit / "server.crt"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert "IP Address:10.128.0.5" in san
    # A second run keeps the CA and the passwords.
    before = {f: (kit / f).read_text() for f in ("ca.crt", "pusher.password", "server.crt")}
    render(kit)
    assert before == {f: (kit / f).read_text() for f in before}


def test_create_sh_firewall_admits_only_the_cluster(kit):
    out = subprocess.run([str(KIT / "create.sh")], capture_output=True, text=True, check=True,
                         env=dict(os.environ, DRY_RUN="1", KIT=str(kit), PROJECT="my-project",
                                  ZOT_IP="10.128.0.5", NODE_RANGE="10.128.0.0/20",
                                  POD_RANGE="10.4.0.0/14")).stdout
    lines = out.splitlines()
    fw = next(l for l in lines if "firewall-rules create" in l)
    assert "--rules tcp:5000" in fw and "--target-tags zot" in fw
    assert "--source-ranges 10.128.0.0/20\\,10.4.0.0/14" in fw
    vm = next(l for l in lines if "instances create" in l)
    assert "--private-network-ip zot-ip" in vm and f"user-data={kit}/user-data.yaml" in vm
    assert "device-name=zot-data" in vm and "auto-delete=no" in vm
    assert any("addresses create zot-ip" in l and "--addresses 10.128.0.5" in l for l in lines)
    assert any("disks create zot-data" in l for l in lines)
    # A kit rendered for another address is refused.
    wrong = subprocess.run([str(KIT / "create.sh")], capture_output=True, text=True,
                           env=dict(os.environ, DRY_RUN="1", KIT=str(kit), PROJECT="p",
                                    ZOT_IP="10.128.0.9", NODE_RANGE="10.0.0.0/8", POD_RANGE="10.4.0.0/14"))
    assert wrong.returncode != 0 and "another address" in wrong.stderr


def namespace_objects(kit, ns):
    out = subprocess.run([str(KIT / "gke.sh"), "namespace", ns], capture_output=True, text=True,
                         check=True, env=dict(os.environ, DRY_RUN="1", KIT=str(kit), KUBECTL=KUBECTL)).stdout
    return {d["kind"]: d for d in yaml.safe_load_all(out) if d}


def test_gke_namespace_objects(kit):
    objs = namespace_objects(kit, "blackfriday")
    secret, cm = objs["Secret"], objs["ConfigMap"]
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"] == {"name": "zot-pull", "namespace": "blackfriday"}
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    puller = (kit / "puller.password").read_text().strip()
    assert base64.b64decode(auths["10.128.0.5:5000"]["auth"]).decode() == f"puller:{puller}"
    assert cm["metadata"]["name"] == "zot-ca" and cm["data"]["ca.crt"] == (kit / "ca.crt").read_text()
    containerd = yaml.safe_load((kit / "containerd-config.yaml").read_text())
    [domain] = containerd["privateRegistryAccessConfig"]["certificateAuthorityDomainConfig"]
    assert domain["fqdns"] == ["10.128.0.5:5000"]
    assert domain["gcpSecretManagerCertificateConfig"]["secretURI"] == "projects/my-project/secrets/zot-ca/versions/latest"


def test_push_and_pull_with_the_kits_tls_and_users(images, tmp_path, workers):
    """The kit rendered for 127.0.0.1: a real registry serves with its certificate and
    htpasswd; `make push` with its env (pusher) publishes the images and the catalog; the api
    pulls the catalog with the pull Secret (puller) and the CA ConfigMap as a pod mounts them."""
    port = free_port()
    kit = render(tmp_path / "kit", ip="127.0.0.1", port=str(port))
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in (kit / "env").read_text().splitlines() if line.startswith("export "))
    assert env["REGISTRY"] == f"127.0.0.1:{port}/blackfriday" and env["REGISTRY_USER"] == "pusher"
    r = Registry(tmp_path / "registry", port=port, extra_env={
        "SP_REGISTRY_PKI_DIR": str(kit), "SP_REGISTRY_HTPASSWD": str(kit / "htpasswd"),
        "SP_REGISTRY_USER": "pusher", "SP_REGISTRY_PASSWORD": env["REGISTRY_PASSWORD"]})
    try:
        r.start()
        subprocess.run([str(ROOT / "scripts" / "images.sh"), "push"], check=True, capture_output=True,
                       env=dict(os.environ, **env), timeout=600)
        repos = r.get("/v2/_catalog").json()["repositories"]
        assert sorted(repos) == sorted(f"blackfriday/{n}" for n in [*images, "catalog"])

        # What a pod of the api gets: the Secret's .dockerconfigjson and the ConfigMap's ca.crt.
        objs = namespace_objects(kit, "blackfriday")
        mounted = tmp_path / "mounted"
        mounted.mkdir()
        (mounted / "config.json").write_bytes(base64.b64decode(objs["Secret"]["data"][".dockerconfigjson"]))
        (mounted / "ca.crt").write_text(objs["ConfigMap"]["data"]["ca.crt"])
        tag = subprocess.run([str(ROOT / "scripts" / "images.sh"), "podman", "image", "inspect", "--format",
                              '{{index .Config.Labels "org.opencontainers.image.version"}}', images["api"]],
                             capture_output=True, text=True, check=True).stdout.strip()
        out = subprocess.run([str(BIN_DIR / "salesctl"), "catalog", "--catalog-artifact",
                              f"{env['REGISTRY']}/catalog:{tag}"], capture_output=True, text=True,
                             env=dict(SANITIZER_ENV, REGISTRY_AUTH_FILE=str(mounted / "config.json"),
                                      REGISTRY_CA=str(mounted / "ca.crt")))
        assert out.returncode == 0, out.stderr
        assert f"300 products, {sha256(CATALOG.read_bytes())}" in out.stderr
        api_port = free_port()
        api = workers("api", ["--port", str(api_port), "--bridge-url", f"http://127.0.0.1:{free_port()}/ventas",
                              "--catalog-artifact", f"{env['REGISTRY']}/catalog:{tag}"],
                      http_port=api_port, env={"REGISTRY_AUTH_FILE": str(mounted / "config.json"),
                                               "REGISTRY_CA": str(mounted / "ca.crt")})
        wait_until(lambda: api.metrics().get("sp_catalog_products") == 300, 30, what="the api's catalog")
        # The same htpasswd refuses a wrong password.
        import requests
        refused = requests.get(f"https://127.0.0.1:{port}/v2/_catalog", auth=("puller", "wrong"),
                               verify=str(kit / "ca.crt"), timeout=10)
        assert refused.status_code == 401
    finally:
        r.down()
