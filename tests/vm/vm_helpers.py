"""Valkey VMs booted here with QEMU (TCG: this machine has no virtualisation for guests), from
our disk image (scripts/valkey-disk.sh) and the cloud-init user data the operator renders.

What stands in for KubeVirt, and how close it is:
- the containerDisk: a fresh qcow2 overlay over build/vm/disk.qcow2 at every boot (KubeVirt
  boots every VM start from a fresh copy of the image too), booted by SeaBIOS like KubeVirt's
  default firmware;
- cloudInitNoCloud: a NoCloud seed ISO (volume id cidata) with the rendered user data;
- the PVC disk: a sparse raw file with serial `valkeydata` (KubeVirt keeps a raw disk.img in a
  Filesystem PVC and passes the disk's `serial`);
- masquerade pod networking: QEMU user networking (DHCP from QEMU, like virt-launcher's DHCP),
  with the guest's 6379 forwarded to a free port on 127.0.0.1 (the Service);
- cluster DNS for the replica's `replicaof <primary Service>`: a hosts entry, written by a
  second user-data part (MIME multipart, `cloud-init devel make-mime`) next to the operator's
  untouched part, pointing the name at a guestfwd address that socat relays to the primary's
  forwarded port;
- stopping a VM: ACPI power button (QMP system_powerdown), as KubeVirt's graceful shutdown does.
"""
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

from harness import ROOT, free_port, stop_process, wait_until

DISK = ROOT / "build" / "vm" / "disk.qcow2"
OCI_ARCHIVE = ROOT / "build" / "vm" / "valkey-vm.oci.tar"
DATA_SERIAL = "valkeydata"           # INFRA_DATA_DISK_SERIAL in operator/infra.h
PRIMARY_GUEST_ADDR = "10.0.2.100"    # guestfwd address the replica's hosts entry names


def build_disk():
    """scripts/valkey-disk.sh build: cached, ~3 minutes when it is not."""
    r = subprocess.run([str(ROOT / "scripts" / "valkey-disk.sh"), "build"], capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, f"valkey-disk.sh build failed:\n{r.stderr[-4000:]}"
    return DISK


def make_seed(folder, user_data, instance_id, hostname, extra_part=None):
    """A NoCloud seed ISO. `extra_part`: a second #cloud-config of the test, joined to the
    operator's user data as MIME multipart by cloud-init's own tool."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "operator.yaml").write_text(user_data)
    if extra_part:
        (folder / "test.yaml").write_text(extra_part)
        mime = subprocess.run(["cloud-init", "devel", "make-mime",
                               "-a", f"{folder / 'operator.yaml'}:cloud-config",
                               "-a", f"{folder / 'test.yaml'}:cloud-config"],
                              capture_output=True, text=True, timeout=120)
        assert mime.returncode == 0, mime.stderr
        user_data = mime.stdout
    (folder / "user-data").write_text(user_data)
    (folder / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n")
    iso = folder / "seed.iso"
    subprocess.run(["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet",
                    "-rock", str(folder / "user-data"), str(folder / "meta-data")],
                   check=True, timeout=60)
    return iso


class QMP:
    """QEMU's machine protocol (JSON lines over a unix socket)."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.file.readline())
            if "event" not in msg:
                return msg

    def execute(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        reply = self._read()
        assert "error" not in reply, reply
        return reply.get("return")

    def close(self):
        self.file.close()
        self.sock.close()


class ValkeyVM:
    """One VM: its own folder (overlay, seed, console log, sockets), Valkey's port forwarded to
    `port` on 127.0.0.1. `data_disk`: a raw file attached with serial valkeydata."""

    def __init__(self, folder, name, seed, data_disk=None, memory_mib=1024, guestfwd_port=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.seed = seed
        self.data_disk = data_disk
        self.memory_mib = memory_mib
        self.guestfwd_port = guestfwd_port
        self.port = free_port()
        self.proc = None
        self.boots = []  # seconds from QEMU start to the first authenticated PING, per boot

    @property
    def console(self):
        return self.folder / "console.log"

    def console_tail(self, n=60):
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no console output)"

    def start(self):
        """Boots from a fresh overlay of the image (the containerDisk is ephemeral)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        overlay = self.folder / "root.qcow2"
        overlay.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(DISK), "-F", "qcow2",
                        str(overlay)], check=True, timeout=60)
        for f in ("console.log", "qmp.sock"):
            (self.folder / f).unlink(missing_ok=True)
        net = f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:6379"
        if self.guestfwd_port:
            net += (f",guestfwd=tcp:{PRIMARY_GUEST_ADDR}:6379-cmd:"
                    f"socat STDIO TCP:127.0.0.1:{self.guestfwd_port}")
        args = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", str(self.memory_mib),
                "-smp", "1", "-nodefaults", "-display", "none", "-name", self.name,
                "-serial", f"file:{self.console}",
                "-qmp", f"unix:{self.folder / 'qmp.sock'},server=on,wait=off",
                "-drive", f"file={overlay},if=none,id=root,format=qcow2",
                "-device", "virtio-blk-pci,drive=root,bootindex=0",
                "-drive", f"file={self.seed},if=none,id=cidata,format=raw,readonly=on",
                "-device", "virtio-blk-pci,drive=cidata",
                "-netdev", net, "-device", "virtio-net-pci,netdev=n0"]
        if self.data_disk:
            args += ["-drive", f"file={self.data_disk},if=none,id=data,format=raw",
                     "-device", f"virtio-blk-pci,drive=data,serial={DATA_SERIAL}"]
        self.log = open(self.folder / "qemu.log", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, password=None, timeout=10):
        import valkey
        return valkey.Valkey(host="127.0.0.1", port=self.port, password=password,
                             socket_timeout=timeout, socket_connect_timeout=timeout,
                             decode_responses=True)

    @property
    def url(self):
        """The forwarded port as a redis:// URL (the password goes separately)."""
        return f"redis://127.0.0.1:{self.port}"

    def auth_url(self, password):
        return f"redis://:{password}@127.0.0.1:{self.port}"

    def wait_valkey(self, password, timeout):
        """Until Valkey answers an authenticated PING (AOF loaded); fails at once when QEMU exits."""
        def serving():
            if not self.alive():
                raise AssertionError(f"QEMU of {self.name} exited ({self.proc.returncode}):\n"
                                     f"{self.console_tail()}")
            return self.client(password, timeout=5).ping()
        try:
            wait_until(serving, timeout, interval=2, what=f"Valkey in {self.name}")
        except TimeoutError as e:
            raise AssertionError(f"{e}\nconsole of {self.name}:\n{self.console_tail()}") from None
        self.boots.append(round(time.monotonic() - self.started, 1))
        return self.boots[-1]

    def power_off(self, timeout):
        """ACPI power button; the guest shuts down (Valkey stops cleanly) and QEMU exits."""
        qmp = QMP(self.folder / "qmp.sock")
        try:
            qmp.execute("system_powerdown")
        finally:
            qmp.close()
        t0 = time.monotonic()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not power off in {timeout} s after the ACPI "
                                 f"power button:\n{self.console_tail()}") from None
        self.log.close()
        return round(time.monotonic() - t0, 1)

    def kill(self):
        """Ends QEMU whatever state it is in (the test's cleanup)."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        if self.proc is not None and not self.log.closed:
            self.log.close()


def data_disk_files(image, path="/"):
    """Names in a folder of the ext4 file system on a raw data disk, read from the host
    (debugfs, no mount): proves where Valkey wrote."""
    r = subprocess.run(["debugfs", "-R", f"ls -p {path}", str(image)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = []
    for line in r.stdout.splitlines():  # /inode/mode/uid/gid/name/size/
        fields = line.strip().split("/")
        if len(fields) >= 6 and fields[5] not in (".", ".."):
            names.append(fields[5])
    return names


def data_disk_label(image):
    r = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(image)], capture_output=True,
                       text=True, timeout=60)
    return r.stdout.strip()


class Registry:
    """Debian's docker-registry (CNCF distribution 2.8, the OCI Distribution Spec that Zot
    implements too) on a free loopback port, plain HTTP, storage in `folder`."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        config = self.folder / "config.yml"
        config.write_text(f"version: 0.1\nlog: {{level: warn}}\n"
                          f"storage: {{filesystem: {{rootdirectory: {self.folder / 'data'}}}}}\n"
                          f"http: {{addr: {self.host}}}\n")
        self.log = open(self.folder / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)

        def serving():
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {(self.folder / 'registry.log').read_text()}")
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as r:
                return r.status == 200
        wait_until(serving, 30, interval=0.2, what="docker-registry")
        return self

    def stop(self):
        stop_process(self.proc)
        if self.proc:
            self.log.close()


def oci_layout_files(blob_reader, index):
    """(manifest, config, [(tar member, sha256 of its content)]) of an OCI image: `blob_reader`
    returns a blob's bytes by digest, `index` is the layout's index.json."""
    manifest = json.loads(blob_reader(index["manifests"][0]["digest"]))
    config = json.loads(blob_reader(manifest["config"]["digest"]))
    files = []
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob_reader(layer["digest"])), mode="r:*") as t:
            for m in t.getmembers():
                digest = hashlib.sha256(t.extractfile(m).read()).hexdigest() if m.isfile() else None
                files.append((m, digest))
    return manifest, config, files
