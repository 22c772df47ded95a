"""A real OCI registry for tests (Debian's docker-registry through scripts/registry.sh, TLS + auth
as the Zot VM has them), ORAS to push and pull artifacts, and the Docker token-auth server the
registry's Bearer mode needs.

The token server implements the token side of Docker's token authentication spec (what
docker/distribution documents as `auth: token`): it checks Basic credentials and answers a JWT
signed with its key (ES256, the certificate in the `x5c` header). The registry is the real one
and checks every token itself against `rootcertbundle`; nothing here stands in for it."""
import base64
import hashlib
import json
import os
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness import ROOT, free_port

ARTIFACT_TYPE = "application/vnd.salespipeline.catalog.v1"
MEDIA_TYPE = "application/vnd.salespipeline.catalog.v1+json"
CATALOG = ROOT / "locust" / "catalog.json"


def oras_binary():
    return subprocess.run([str(ROOT / "scripts" / "gotool.sh"), "oras"], check=True,
                          capture_output=True, text=True).stdout.strip()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """scripts/registry.sh in its own state folder and port; stop() keeps the state, so start()
    serves the same content, CA and password again."""

    def __init__(self, state_dir, auth="htpasswd", extra_env=None, port=None):
        self.dir = Path(state_dir)
        self.port = port or free_port()
        self.env_base = dict(os.environ, SP_REGISTRY_DIR=str(self.dir),
                             SP_REGISTRY_PORT=str(self.port), SP_REGISTRY_AUTH=auth, **(extra_env or {}))
        self.host = f"127.0.0.1:{self.port}"

    def _script(self, *args):
        subprocess.run([str(ROOT / "scripts" / "registry.sh"), *args], env=self.env_base,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self):
        self._script("up")
        self.vars = {}
        for line in (self.dir / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.vars[key] = value
        return self

    def stop(self):
        self._script("stop")

    def down(self):
        self._script("down")

    @property
    def prefix(self):
        return self.vars["REGISTRY"]

    def client_env(self):
        """What a client of this registry needs: the auth file and the CA."""
        return {k: self.vars[k] for k in ("REGISTRY_AUTH_FILE", "REGISTRY_CA", "REGISTRY_USER",
                                          "REGISTRY_PASSWORD")}

    def oras(self, *args, cwd=None):
        return subprocess.run([oras_binary(), *args, "--registry-config", self.vars["REGISTRY_AUTH_FILE"],
                               "--ca-file", self.vars["REGISTRY_CA"]], cwd=cwd, check=True,
                              capture_output=True, text=True)

    def push_catalog(self, path, tag):
        """`path` as the catalog artifact <prefix>/catalog:<tag>, exactly as `make push` does."""
        ref = f"{self.prefix}/catalog:{tag}"
        self.oras("push", "--no-tty", "--artifact-type", ARTIFACT_TYPE, ref,
                  f"{Path(path).name}:{MEDIA_TYPE}", cwd=Path(path).parent)
        return ref

    def get(self, path, accept=None):
        import requests
        headers = {"Accept": accept} if accept else {}
        return requests.get(f"https://{self.host}{path}", headers=headers, verify=self.vars["REGISTRY_CA"],
                            auth=(self.vars["REGISTRY_USER"], self.vars["REGISTRY_PASSWORD"]), timeout=10)


class TokenServer:
    """GET /token?service=S&scope=repository:R:pull with Basic credentials -> {"token": JWT}."""

    ISSUER = "salespipeline-test-token-issuer"   # scripts/registry.sh's token issuer

    def __init__(self, work_dir, user, password):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        import datetime
        self.user, self.password = user, password
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = Path(work_dir) / "token-signer.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests = []   # (service, scope, authorised) of each request
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def token(self, service, scope):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        def b64(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        _, name, actions = scope.split(":")
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        claims = {"iss": self.ISSUER, "sub": self.user, "aud": service, "iat": now,
                  "nbf": now - 5, "exp": now + 300, "jti": os.urandom(8).hex(),
                  "access": [{"type": "repository", "name": name, "actions": actions.split(",")}]}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                auth = self.headers.get("Authorization", "")
                want = "Basic " + base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                ok = url.path == "/token" and auth == want and q.get("scope", "").endswith(":pull")
                outer.requests.append((q.get("service"), q.get("scope"), ok))
                if not ok:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": outer.token(q.get("service", ""), q["scope"]),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
