"""Helpers of the infrastructure tests: the operator's rendered artifacts (`operator --render`,
no cluster needed) and what they hold."""
import json
import os
import subprocess
from pathlib import Path

import yaml

from harness import BIN_DIR, ROOT, SANITIZER_ENV, free_port, stop_process, wait_until

SAMPLE_FILE = ROOT / "manifests" / "sample-salespipeline.yaml"
CONF_PATH = "/etc/salespipeline/valkey.conf"
SETUP_PATH = "/usr/local/sbin/salespipeline-valkey-setup"


def sample_docs():
    return [d for d in yaml.safe_load_all(SAMPLE_FILE.read_text()) if d]


def write_pipeline(tmp_path, edit=None, name="sample.yaml"):
    """The sample manifest (Namespace + SalesPipeline), with `edit(spec)` applied, as a file."""
    docs = sample_docs()
    sp = next(d for d in docs if d["kind"] == "SalesPipeline")
    if edit:
        edit(sp["spec"])
    path = Path(tmp_path) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs))
    return path


def render(what, file, role=None, password=None):
    """`operator --render WHAT --file FILE [--role R] [--password P]`: the artifact's text."""
    args = [str(BIN_DIR / "operator"), "--render", what, "--file", str(file)]
    if role:
        args += ["--role", role]
    if password:
        args += ["--password", password]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **SANITIZER_ENV))
    assert r.returncode == 0, f"{' '.join(args)} exited {r.returncode}: {r.stderr}"
    return r.stdout


def render_json(what, file):
    return json.loads(render(what, file))


def cloud_config(text):
    """Checks the #cloud-config header and returns the parsed document."""
    assert text.startswith("#cloud-config\n"), text[:80]
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict), doc
    return doc


def written_file(doc, path):
    files = {f["path"]: f for f in doc["write_files"]}
    assert path in files, sorted(files)
    return files[path]


def conf_lines(conf):
    """valkey.conf directives as {name: [args text, ...]} (comments and blanks dropped)."""
    out = {}
    for line in conf.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, rest = line.partition(" ")
            out.setdefault(name, []).append(rest)
    return out


def loopback_conf(conf, port, data_dir, primary_port=None):
    """The rendered valkey.conf with only what binds it to the VM changed: address, port,
    data folder (and, for a replica, the primary's address)."""
    out = []
    for line in conf.splitlines():
        word = line.split(" ", 1)[0]
        if word == "bind":
            line = "bind 127.0.0.1"
        elif word == "port":
            line = f"port {port}"
        elif word == "dir":
            line = f"dir {data_dir}"
        elif word == "replicaof" and primary_port:
            line = f"replicaof 127.0.0.1 {primary_port}"
        out.append(line)
    return "\n".join(out) + "\n"


class ValkeyFromConf:
    """A real valkey-server started from a rendered configuration file, on loopback."""

    def __init__(self, folder, conf_text):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf_text = conf_text
        self.proc = None

    def start(self, password, primary_port=None):
        conf = self.folder / "valkey.conf"
        conf.write_text(loopback_conf(self.conf_text, self.port, self.folder, primary_port))
        self.log = open(self.folder / "valkey.log", "wb")
        self.proc = subprocess.Popen(["valkey-server", str(conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def serving():
            if self.proc.poll() is not None:
                raise RuntimeError(f"valkey-server exited {self.proc.returncode}: "
                                   f"{(self.folder / 'valkey.log').read_text()[-2000:]}")
            return self.client(password).ping()
        wait_until(serving, 60, interval=0.1, what="valkey-server from the rendered config")
        return self

    def client(self, password=None):
        import valkey
        return valkey.Valkey(port=self.port, password=password, socket_timeout=10,
                             decode_responses=True)

    def stop(self):
        stop_process(self.proc)
        if self.proc:
            self.log.close()
