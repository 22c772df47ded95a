"""Pulls the product catalog OCI artifact (docs/catalog.md) over the OCI Distribution Spec.

The same steps as the api's C client (common/oci.c), with requests: the manifest by tag or
digest (Accept: the OCI image manifest), the layer of the catalog's media type, both sha256
digests checked; Basic or Bearer-token authentication as the registry's 401 challenge asks,
with credentials from a docker config.json (REGISTRY_AUTH_FILE, the form of a Kubernetes pull
Secret) or REGISTRY_USER / REGISTRY_PASSWORD; TLS checked against REGISTRY_CA when set.

    python3 locust/catalog_artifact.py HOST:PORT/blackfriday/catalog:0.1.0 > catalog.json
"""
import base64
import hashlib
import json
import os
import re
import sys
import time

import requests

ARTIFACT_TYPE = "application/vnd.salespipeline.catalog.v1"
MEDIA_TYPE = "application/vnd.salespipeline.catalog.v1+json"
MANIFEST_ACCEPT = ("application/vnd.oci.image.manifest.v1+json, "
                   "application/vnd.docker.distribution.manifest.v2+json")
MAX_BYTES = 16 * 1024 * 1024


class PullError(Exception):
    pass


def parse_reference(ref):
    """'host[:port]/repo:tag' or '...@sha256:hex' -> (registry, repository, tag or digest)."""
    registry, _, rest = ref.partition("/")
    if not rest or not ("." in registry or ":" in registry or registry == "localhost"):
        raise PullError(f"'{ref}' is not host[:port]/repository[:tag|@sha256:...]")
    name, _, digest = rest.partition("@")
    repo, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        repo, tag = name, "latest"
    if digest:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise PullError(f"'{ref}': the digest must be sha256:<64 hex digits>")
        return registry, repo, digest
    return registry, repo, tag


def credentials(registry, env=os.environ):
    """(user, password) for `registry` from REGISTRY_AUTH_FILE, else REGISTRY_USER/PASSWORD."""
    path = env.get("REGISTRY_AUTH_FILE")
    if path:
        with open(path) as f:
            auths = json.load(f).get("auths", {})
        for key, entry in auths.items():
            host = key.split("://", 1)[-1].split("/", 1)[0]
            if host.lower() != registry.lower():
                continue
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
            return entry.get("username", ""), entry.get("password", "")
    if env.get("REGISTRY_USER"):
        return env["REGISTRY_USER"], env.get("REGISTRY_PASSWORD", "")
    return None


def _challenge(header):
    scheme, _, params = header.partition(" ")
    found = dict(re.findall(r'(\w+)="?([^",]*)"?', params))
    return scheme.lower(), found


class _Session:
    """GETs with the registry's authentication, learnt from its first 401."""

    def __init__(self, registry, repository, creds, ca_file, timeout):
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "salespipeline-locust"
        # Per request: a session-wide `verify` loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.
        self.verify = ca_file or True
        self.registry, self.repository, self.creds, self.timeout = registry, repository, creds, timeout
        self.auth_header = None

    def get(self, path, headers=None, max_bytes=MAX_BYTES):
        url = f"https://{self.registry}/v2/{self.repository}/{path}"
        for attempt in range(2):
            h = dict(headers or {})
            if self.auth_header:
                h["Authorization"] = self.auth_header
            r = self.http.get(url, headers=h, timeout=self.timeout, stream=True, verify=self.verify)
            if r.status_code != 401 or attempt:
                break
            scheme, params = _challenge(r.headers.get("WWW-Authenticate", ""))
            if scheme == "basic":
                if not self.creds:
                    raise PullError(f"{self.registry} needs credentials and has none here")
                token = base64.b64encode(":".join(self.creds).encode()).decode()
                self.auth_header = f"Basic {token}"
            elif scheme == "bearer":
                self.auth_header = "Bearer " + self._token(params)
            else:
                raise PullError(f"{self.registry} asks for '{scheme}' authentication")
        if r.status_code != 200:
            raise PullError(f"GET {url}: HTTP {r.status_code} {r.text[:200]}")
        body = r.raw.read(max_bytes + 1, decode_content=True)
        if len(body) > max_bytes:
            raise PullError(f"GET {url}: over {max_bytes} bytes")
        return r, body

    def _token(self, params):
        if not params.get("realm"):
            raise PullError(f"{self.registry} asked for a token without a realm")
        query = {"service": params.get("service", ""),
                 "scope": f"repository:{self.repository}:pull"}
        r = self.http.get(params["realm"], params=query, auth=self.creds, timeout=self.timeout,
                          verify=self.verify)
        if r.status_code != 200:
            raise PullError(f"token from {params['realm']}: HTTP {r.status_code} {r.text[:200]}")
        answer = r.json()
        token = answer.get("token") or answer.get("access_token")
        if not token:
            raise PullError(f"the token answer of {params['realm']} has no token")
        return token


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull(reference, env=os.environ, timeout=10.0):
    """The catalog layer's bytes and its digest, both digests verified."""
    registry, repository, tag = parse_reference(reference)
    s = _Session(registry, repository, credentials(registry, env), env.get("REGISTRY_CA"), timeout)
    r, body = s.get(f"manifests/{tag}", {"Accept": MANIFEST_ACCEPT}, 4 * 1024 * 1024)
    digest = sha256(body)
    expected = tag if tag.startswith("sha256:") else r.headers.get("Docker-Content-Digest", "")
    if expected.startswith("sha256:") and expected != digest:
        raise PullError(f"manifest of {reference}: digest {digest}, expected {expected}")
    manifest = json.loads(body)
    layers = [l for l in manifest.get("layers", []) if l.get("mediaType") == MEDIA_TYPE]
    if not layers:
        raise PullError(f"{reference}: no layer of media type {MEDIA_TYPE}")
    layer = layers[0]
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", layer.get("digest", "")):
        raise PullError(f"{reference}: the layer has no sha256 digest")
    _, data = s.get(f"blobs/{layer['digest']}", max_bytes=min(int(layer["size"]), MAX_BYTES))
    if len(data) != layer["size"] or sha256(data) != layer["digest"]:
        raise PullError(f"blob of {reference}: {len(data)} bytes, {sha256(data)}; "
                        f"the manifest says {layer['size']}, {layer['digest']}")
    return data, layer["digest"]


def pull_with_retries(reference, seconds=60.0, env=os.environ):
    """pull(), retried with back-off (0.5 s doubling to 8 s) while the registry is unreachable
    or failing, for at most `seconds`."""
    deadline, delay = time.monotonic() + seconds, 0.5
    while True:
        try:
            return pull(reference, env)
        except (PullError, requests.RequestException, ValueError) as e:
            if time.monotonic() + delay > deadline:
                raise PullError(f"{reference}: {e}") from e
            print(f"catalog: {e}; retrying in {delay:.1f} s", file=sys.stderr)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    blob, layer_digest = pull(sys.argv[1])
    sys.stdout.buffer.write(blob)
    print(f"{sys.argv[1]}: {len(blob)} bytes, {layer_digest}", file=sys.stderr)
