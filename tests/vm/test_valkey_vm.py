"""The Valkey VMs booted for real: our disk image (scripts/valkey-disk.sh) under QEMU (TCG), with
the cloud-init user data the operator renders for the sample SalesPipeline as a NoCloud seed,
the primary with its data disk; and the same disk as a containerDisk image, pushed to a real
registry. See vm_helpers.py for what stands in for KubeVirt.

`make valkey-vm-test` runs this file; `make test` runs it too (4.5-5.5 minutes on 2 shared
cores: both VMs boot at once in 2-3 minutes, the primary again in 1-2). Measured times go to
build/vm/valkey-vm-times.json."""
import hashlib
import json
import subprocess
import tarfile
import time

import pytest
import valkey as valkeylib
import yaml

from conftest import PASSWORD
from consume.consume_helpers import (check_dashboard, dashboard, make_sales, produce_sales,
                                     start_consumer, stored_offsets)
from harness import ROOT, wait_until
from vm_helpers import (DATA_SERIAL, DISK, OCI_ARCHIVE, PRIMARY_GUEST_ADDR, Registry, ValkeyVM,
                        data_disk_files, data_disk_label, make_seed, oci_layout_files)

MANIFEST = ROOT / "manifests" / "sample-salespipeline.yaml"
TIMES = ROOT / "build" / "vm" / "valkey-vm-times.json"
BOOT_TIMEOUT = 900       # seconds; measured: one VM alone ~1 minute, two at once 2-3 (TCG, 2 cores)
POWEROFF_TIMEOUT = 180
DATA_DISK_BYTES = 1 << 30
CONF_PATH = "/etc/salespipeline/valkey.conf"


def valkey_conf(userdata):
    doc = yaml.safe_load(userdata)
    return next(f["content"] for f in doc["write_files"] if f["path"] == CONF_PATH)


def replicaof_host(userdata):
    """The primary's address the operator wrote into the replica's configuration."""
    line = next(l for l in valkey_conf(userdata).splitlines() if l.startswith("replicaof "))
    return line.split()[1]


def record(test, **values):
    """Measured times (seconds), kept for the report; never asserted on."""
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(TIMES.read_text()) if TIMES.exists() else []
    runs.append({"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **values})
    TIMES.write_text(json.dumps(runs[-50:], indent=1) + "\n")


def primary_vm(tmp_path, render_userdata, name="primary"):
    userdata = render_userdata(MANIFEST, "primary")
    seed = make_seed(tmp_path / name / "seed", userdata, f"{name}-1", f"black-friday-valkey-{name}")
    data = tmp_path / "data.img"
    with open(data, "wb") as f:  # sparse, like KubeVirt's disk.img in a Filesystem PVC
        f.truncate(DATA_DISK_BYTES)
    return ValkeyVM(tmp_path / name, name, seed, data_disk=data), data


def check_password(vm):
    """Valkey answers with the operator's password, and refuses without it or with another."""
    assert vm.client(PASSWORD).ping()
    with pytest.raises(valkeylib.exceptions.AuthenticationError):
        vm.client(None).get("sp:total_sales")
    with pytest.raises(valkeylib.exceptions.AuthenticationError):
        vm.client("not-the-password").ping()


def check_aof_enabled(vm):
    c = vm.client(PASSWORD)
    assert c.config_get("dir") == {"dir": "/var/lib/valkey"}
    assert c.config_get("appendonly") == {"appendonly": "yes"}
    wait_until(lambda: c.info("persistence")["aof_rewrite_in_progress"] == 0, 60,
               what="the first AOF rewrite")
    assert c.info("persistence")["aof_enabled"] == 1


def check_aof_on_data_disk(data):
    """Read from the host once the VM is off: the disk with serial valkeydata holds the file
    system the operator's cloud-init made, and Valkey's AOF is on it."""
    assert data_disk_label(data) == DATA_SERIAL
    assert "appendonlydir" in data_disk_files(data, "/")
    aof = data_disk_files(data, "/appendonlydir")
    assert any(n.endswith(".manifest") for n in aof) and any(".incr.aof" in n for n in aof), aof


def count_sales(kafka, workers, pb_stubs, vm, sales, topic, already=0):
    """The real consumer on the host counts `sales` from Kafka into the VM's Valkey, through the
    forwarded port; returns once Valkey's stored offsets cover them (`already` counted before)."""
    produce_sales(kafka, topic, pb_stubs, sales)
    consumer = start_consumer(workers, kafka, topic, vm, "--valkey-password", PASSWORD,
                              group=f"g-{topic}")
    c = vm.client(PASSWORD)
    total = already + len(sales)
    wait_until(lambda: sum(stored_offsets(c, topic).values()) >= total, 300, interval=0.5,
               what=f"{total} sales counted in {vm.name}")
    assert consumer.terminate() == 0
    assert sum(stored_offsets(c, topic).values()) == total


def vm_dashboard(vm):
    return dashboard(vm.auth_url(PASSWORD))


@pytest.mark.timeout(2700)
def test_primary_and_replica_vms(valkey_disk, render_userdata, vms, kafka, topic, workers,
                                 pb_stubs, tmp_path):
    primary, data = primary_vm(tmp_path, render_userdata)
    vms.append(primary.start())
    replica_userdata = render_userdata(MANIFEST, "replica")
    primary_name = replicaof_host(replica_userdata)
    # Cluster DNS stands in as a hosts entry: the operator's part stays as rendered.
    hosts = {"bootcmd": [["sh", "-c", f"echo '{PRIMARY_GUEST_ADDR} {primary_name}' >> /etc/hosts"]]}
    seed = make_seed(tmp_path / "replica" / "seed", replica_userdata, "replica-1",
                     "black-friday-valkey-replica-1", extra_part="#cloud-config\n" + yaml.safe_dump(hosts))
    replica = ValkeyVM(tmp_path / "replica", "replica", seed, guestfwd_port=primary.port)
    vms.append(replica.start())
    times = {"primary_boot_seconds": primary.wait_valkey(PASSWORD, BOOT_TIMEOUT),
             "replica_boot_seconds": replica.wait_valkey(PASSWORD, BOOT_TIMEOUT)}
    check_password(primary)
    check_password(replica)
    check_aof_enabled(primary)
    r = replica.client(PASSWORD)
    wait_until(lambda: r.info("replication")["master_link_status"] == "up", 300, interval=1,
               what="the replica to sync from the primary")
    assert r.info("replication")["master_host"] == primary_name
    with pytest.raises(valkeylib.exceptions.ReadOnlyError):
        r.set("x", 1)

    # The consumer counts into the primary; the dashboard reads the same from both.
    sales = make_sales(3000, seed=72)
    count_sales(kafka, workers, pb_stubs, primary, sales, topic)
    assert primary.client(PASSWORD).execute_command("WAIT", 1, 60000) == 1
    check_dashboard(vm_dashboard(primary), sales)
    check_dashboard(vm_dashboard(replica), sales)

    # The primary powered off (ACPI, as KubeVirt stops a VM): the replica still serves reads.
    times["primary_poweroff_seconds"] = primary.power_off(POWEROFF_TIMEOUT)
    check_aof_on_data_disk(data)
    wait_until(lambda: r.info("replication")["master_link_status"] == "down", 120, interval=1,
               what="the replica to notice the primary is gone")
    check_dashboard(vm_dashboard(replica), sales)

    # Booted again from a fresh copy of the image: every counted sale is back from the AOF, the
    # replica resyncs, and counting goes on where it stopped (the offsets are in Valkey too).
    primary.start()
    times["primary_reboot_seconds"] = primary.wait_valkey(PASSWORD, BOOT_TIMEOUT)
    check_dashboard(vm_dashboard(primary), sales)
    more = make_sales(1000, seed=73, ts0=sales[-1].ts + 1)
    count_sales(kafka, workers, pb_stubs, primary, more, topic, already=len(sales))
    wait_until(lambda: r.info("replication")["master_link_status"] == "up", 300, interval=1,
               what="the replica to resync after the primary's restart")
    assert primary.client(PASSWORD).execute_command("WAIT", 1, 60000) == 1
    check_dashboard(vm_dashboard(primary), sales + more)
    check_dashboard(vm_dashboard(replica), sales + more)
    times["replica_poweroff_seconds"] = replica.power_off(POWEROFF_TIMEOUT)
    times["primary_final_poweroff_seconds"] = primary.power_off(POWEROFF_TIMEOUT)
    record("test_primary_and_replica_vms", **times)


def test_container_disk_image(valkey_disk, tmp_path):
    """The containerDisk KubeVirt pulls: one layer holding the qcow2 under /disk/, owned by
    107:107 (qemu in virt-launcher), byte for byte the disk the VM test boots; pushed to a real
    registry by `scripts/valkey-disk.sh push` and pulled back unchanged."""
    disk_sha = hashlib.sha256(DISK.read_bytes()).hexdigest()
    with tarfile.open(OCI_ARCHIVE) as archive:
        def blob(digest):
            return archive.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()
        index = json.loads(archive.extractfile("index.json").read())
        manifest, config, files = oci_layout_files(blob, index)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    by_name = {m.name.lstrip("./"): (m, digest) for m, digest in files}
    assert set(by_name) == {"disk", "disk/disk.qcow2"}, sorted(by_name)
    for name, (m, _) in by_name.items():
        assert (m.uid, m.gid) == (107, 107), (name, m.uid, m.gid)
    assert by_name["disk/disk.qcow2"][1] == disk_sha
    assert DISK.read_bytes()[:4] == b"QFI\xfb"  # qcow2 magic

    registry = Registry(tmp_path / "registry").start()
    try:
        ref = f"{registry.host}/blackfriday/valkey-vm:0.1.0"
        push = subprocess.run([str(ROOT / "scripts" / "valkey-disk.sh"), "push", ref],
                              capture_output=True, text=True, timeout=600)
        assert push.returncode == 0, push.stderr
        pulled = tmp_path / "pulled"
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
                        f"oci:{pulled}:0.1.0"], check=True, timeout=600)
    finally:
        registry.stop()
    index = json.loads((pulled / "index.json").read_text())
    _, _, files = oci_layout_files(
        lambda d: (pulled / "blobs" / "sha256" / d.split(":", 1)[1]).read_bytes(), index)
    assert {(m.name.lstrip("./"), d) for m, d in files if m.isfile()} == {("disk/disk.qcow2", disk_sha)}
