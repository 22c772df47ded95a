"""Issue 10: the product catalog as an OCI artifact in a real registry (docker-registry with TLS
and auth, as the Zot VM), and its readers: the api (C, libcurl), salesctl (C), Locust (Python).
"""
import json
import signal
import subprocess
import sys

import pytest
import requests

from harness import BIN_DIR, ROOT, SANITIZER_ENV, free_port, http_get, wait_until
from registry_util import ARTIFACT_TYPE, CATALOG, MEDIA_TYPE, sha256

sys.path.insert(0, str(ROOT / "locust"))
import catalog_artifact  # noqa: E402  (Locust's puller)

sys.path.insert(0, str(ROOT / "tests" / "writer"))
from writer_util import read_records, record_count, start_writer  # noqa: E402

SCHEMA = ROOT / "locust" / "catalog.schema.json"


def sale(producto_id="ELE-001", categoria="Electronica", precio=10.0, units=1):
    return {"categoria": categoria, "producto_id": producto_id, "precio": precio,
            "cantidad_vendida": units}


def post(api, body):
    return requests.post(api.url("/ventas"), json=body, timeout=10)


def catalog_api(workers, registry, *args, bridge_url=None, env=None, ready=False):
    """Our api reading the catalog from `registry` (its auth file and CA)."""
    port = free_port()
    full_env = dict(registry.client_env(), **(env or {}))
    full_env.pop("REGISTRY_USER"), full_env.pop("REGISTRY_PASSWORD")   # the api reads the auth file
    w = workers("api", ["--port", str(port), "--bridge-url",
                        bridge_url or f"http://127.0.0.1:{free_port()}/ventas", *args],
                http_port=port, env=full_env)
    return w.wait_ready() if ready else w


def wait_catalog(api, products=300, timeout=30):
    wait_until(lambda: api.metrics().get("sp_catalog_products") == products, timeout,
               what=f"the api's catalog to hold {products} products")


def readyz(worker):
    return http_get(worker.url("/readyz"))


# ---------------------------------------------------------------- the file and its schema

def test_committed_catalog_matches_its_schema():
    import jsonschema
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    catalog = json.loads(CATALOG.read_text())
    jsonschema.validate(catalog, schema, cls=jsonschema.Draft202012Validator)
    ids = [p["id"] for p in catalog["products"]]
    assert len(ids) == 300 and len(set(ids)) == 300   # unique: what the schema cannot say
    bad = json.loads(CATALOG.read_text())
    bad["products"][7]["category"] = "Juguetes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


# ---------------------------------------------------------------- the artifact in the registry

def test_artifact_comes_back_byte_for_byte(registry, tmp_path):
    data = CATALOG.read_bytes()
    r = registry.get("/v2/blackfriday/catalog/manifests/v1",
                     accept="application/vnd.oci.image.manifest.v1+json")
    assert r.status_code == 200, r.text
    manifest = r.json()
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert r.headers["Docker-Content-Digest"] == sha256(r.content)
    [layer] = manifest["layers"]
    assert layer["mediaType"] == MEDIA_TYPE
    assert layer["digest"] == sha256(data) and layer["size"] == len(data)

    # ORAS (Go), Locust's puller (Python) and salesctl (C) each get the same bytes back.
    registry.oras("pull", "--no-tty", "-o", str(tmp_path), registry.catalog_ref)
    assert (tmp_path / "catalog.json").read_bytes() == data
    blob, digest = catalog_artifact.pull(registry.catalog_ref, env=registry.client_env())
    assert blob == data and digest == sha256(data)
    out = subprocess.run([str(BIN_DIR / "salesctl"), "catalog", "--catalog-artifact",
                          registry.catalog_ref], env=dict(SANITIZER_ENV, **registry.client_env()),
                         capture_output=True, text=True, check=True)
    assert out.stdout.count("\n") == 300 and "ELE-001\tElectronica\t408.38\tTelevisor Quetzal 1" in out.stdout
    assert f"300 products, {sha256(data)}" in out.stderr


def test_pull_by_digest_and_a_wrong_digest(registry, workers):
    data = CATALOG.read_bytes()
    r = registry.get("/v2/blackfriday/catalog/manifests/v1",
                     accept="application/vnd.oci.image.manifest.v1+json")
    pinned = f"{registry.prefix}/catalog@{sha256(r.content)}"
    blob, _ = catalog_artifact.pull(pinned, env=registry.client_env())
    assert blob == data
    api = catalog_api(workers, registry, "--catalog-artifact", pinned)
    wait_catalog(api)
    # A digest nobody pushed: the registry says so, the api stays without a catalog.
    missing = f"{registry.prefix}/catalog@sha256:{'0' * 64}"
    api2 = catalog_api(workers, registry, "--catalog-artifact", missing)
    wait_until(lambda: "MANIFEST_UNKNOWN" in readyz(api2)[1] or "HTTP 404" in readyz(api2)[1], 30,
               what="the api to report the missing manifest")
    assert readyz(api2)[0] == 503


# ---------------------------------------------------------------- the api's check

def test_api_refuses_products_not_in_the_catalog(registry, workers):
    api = catalog_api(workers, registry, "--catalog-artifact", registry.catalog_ref)
    wait_catalog(api)
    r = post(api, sale("ZZZ-999"))
    assert r.status_code == 400 and r.json()["field"] == "producto_id", r.text
    assert "catalog" in r.json()["error"]
    r = post(api, sale("ELE-001", "Ropa"))   # ELE-001 is Electronica
    assert r.status_code == 400 and r.json()["field"] == "categoria", r.text
    assert "Electronica" in r.json()["error"]
    r = post(api, sale("ELE-001", 1))        # by number: the same category
    assert r.status_code == 503, r.text      # passed the check; no bridge behind this api
    m = api.metrics()
    assert m['sp_catalog_refused_total{field="producto_id"}'] == 1
    assert m['sp_catalog_refused_total{field="categoria"}'] == 1
    assert m['sp_catalog_pulls_total{result="ok"}'] >= 1


def test_api_without_a_catalog_checks_nothing(workers):
    port = free_port()
    api = workers("api", ["--port", str(port), "--bridge-url", f"http://127.0.0.1:{free_port()}/ventas"],
                  http_port=port, env={"CATALOG_ARTIFACT": ""})
    wait_until(lambda: http_get(api.url("/healthz"))[0] == 200, 30, what="api /healthz")
    assert post(api, sale("ZZZ-999")).status_code == 503   # forwarded (no bridge), not refused
    assert "sp_catalog_products" not in api.metrics()


def test_api_picks_up_a_new_catalog(registry, workers, tmp_path):
    """A new push under the same tag: picked up on SIGHUP, and by the refresh interval."""
    ref = registry.push_catalog(CATALOG, "live")
    on_hup = catalog_api(workers, registry, "--catalog-artifact", ref, "--catalog-refresh-seconds", "0")
    timed = catalog_api(workers, registry, "--catalog-artifact", ref, "--catalog-refresh-seconds", "1")
    wait_catalog(on_hup)
    wait_catalog(timed)
    assert post(on_hup, sale("NEW-001", "Hogar")).status_code == 400

    bigger = json.loads(CATALOG.read_text())
    bigger["products"].append({"id": "NEW-001", "name": "Lampara Nueva", "category": "Hogar",
                               "base_price": 12.5})
    new_file = tmp_path / "catalog.json"
    new_file.write_text(json.dumps(bigger))
    registry.push_catalog(new_file, "live")
    wait_catalog(timed, 301)
    assert on_hup.metrics()["sp_catalog_products"] == 300   # waits for its SIGHUP
    on_hup.proc.send_signal(signal.SIGHUP)
    wait_catalog(on_hup, 301)
    assert post(on_hup, sale("NEW-001", "Hogar")).status_code == 503   # known now: forwarded
    assert any(e["event"] == "catalog_replaced" and sha256(new_file.read_bytes()) in e["msg"]
               for e in on_hup.log_events())
    # Same content pulled again: nothing replaced.
    on_hup.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: on_hup.metrics()['sp_catalog_pulls_total{result="ok"}'] >= 3, 30,
               what="a third pull")
    assert sum(e["event"] == "catalog_replaced" for e in on_hup.log_events()) == 1


def test_api_waits_for_the_registry_and_loses_nothing(own_registry, workers, kafka, topic):
    """Registry down when the api starts: not ready, sales 503; once it is back, the catalog
    loads, the api turns ready, and every sale answered 202 is in Kafka exactly once."""
    own_registry.start()
    ref = own_registry.push_catalog(CATALOG, "v1")
    own_registry.stop()
    writer = start_writer(workers, kafka.bootstrap, topic)
    port = free_port()
    bridge = workers("bridge", ["--port", str(port), "--writer-target", f"ipv4:{writer.target}"],
                     http_port=port).wait_ready()
    api = catalog_api(workers, own_registry, "--catalog-artifact", ref,
                      bridge_url=bridge.url("/ventas"))
    wait_until(lambda: api.metrics().get('sp_catalog_pulls_total{result="error"}', 0) >= 2, 30,
               what="failed pulls while the registry is down")
    code, why = readyz(api)
    assert code == 503 and "catalog" in why and "not loaded" in why, why
    during = [post(api, sale(f"ELE-{i:03d}")) for i in range(1, 6)]
    assert all(r.status_code == 503 for r in during), [r.text for r in during]

    own_registry.start()
    api.wait_ready(60)   # back-off is at most 30 s
    accepted = []
    for i in range(1, 51):
        r = post(api, sale(f"ELE-{i:03d}", precio=float(i)))
        assert r.status_code == 202, r.text
        accepted.append(r.json()["id"])
    assert post(api, sale("ZZZ-001")).status_code == 400
    assert record_count(kafka.bootstrap, topic) == 50
    ids = sorted(dict((k, v.decode()) for k, v in rec.headers())["sale-id"]
                 for rec in read_records(kafka.bootstrap, topic, 50))
    assert ids == sorted(accepted)


# ---------------------------------------------------------------- authentication

def test_bearer_token_authentication(token_registry, workers):
    r = token_registry
    # Without a token the registry refuses and names the token realm.
    plain = requests.get(f"https://{r.host}/v2/blackfriday/catalog/manifests/v1",
                         verify=r.vars["REGISTRY_CA"], timeout=10)
    assert plain.status_code == 401
    assert plain.headers["WWW-Authenticate"].startswith(f'Bearer realm="{r.tokens.realm}"')

    api = catalog_api(workers, r, "--catalog-artifact", r.catalog_ref)
    wait_catalog(api)
    assert (r.host, "repository:blackfriday/catalog:pull", True) in r.tokens.requests
    blob, _ = catalog_artifact.pull(r.catalog_ref, env=r.client_env())
    assert blob == CATALOG.read_bytes()

    # Wrong credentials: the token server says no, the api says why and stays not ready.
    bad_auth = r.dir / "bad-auth.json"
    bad_auth.write_text(json.dumps({"auths": {r.host: {"username": r.vars["REGISTRY_USER"],
                                                       "password": "wrong"}}}))
    api2 = catalog_api(workers, r, "--catalog-artifact", r.catalog_ref,
                       env={"REGISTRY_AUTH_FILE": str(bad_auth)})
    wait_until(lambda: "token from" in readyz(api2)[1] and "HTTP 401" in readyz(api2)[1], 30,
               what="the api to report the refused token")


def test_basic_auth_errors_are_reported(registry, workers, tmp_path):
    bad_auth = tmp_path / "auth.json"
    bad_auth.write_text(json.dumps({"auths": {registry.host: {"username": "salespipeline",
                                                              "password": "wrong"}}}))
    api = catalog_api(workers, registry, "--catalog-artifact", registry.catalog_ref,
                      env={"REGISTRY_AUTH_FILE": str(bad_auth)})
    wait_until(lambda: "HTTP 401" in readyz(api)[1], 30, what="the api to report the 401")
    # A CA that did not sign the registry's certificate: TLS refuses.
    api2 = catalog_api(workers, registry, "--catalog-artifact", registry.catalog_ref,
                       env={"REGISTRY_CA": "/etc/ssl/certs/ca-certificates.crt"})
    wait_until(lambda: "SSL" in readyz(api2)[1] or "certificate" in readyz(api2)[1], 30,
               what="the api to report the TLS failure")
