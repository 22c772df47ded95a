"""The Valkey VMs' cloud-init, rendered for the sample SalesPipeline: valid cloud-config, and
the valkey.conf inside it accepted by a real valkey-server (primary with AOF, then a replica of
it that syncs), changed only where it binds to the VM (address, port, data folder)."""
import re
import subprocess

import pytest
import valkey as valkeylib

from harness import wait_until
from infra_helpers import (CONF_PATH, SETUP_PATH, ValkeyFromConf, cloud_config, conf_lines,
                           render, write_pipeline, written_file)

PASSWORD = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
GIB = 1 << 30


@pytest.fixture
def servers():
    started = []
    yield started
    for s in reversed(started):
        s.stop()


def rendered(tmp_path, role, edit=None):
    text = render("valkey-cloudinit", write_pipeline(tmp_path, edit), role=role, password=PASSWORD)
    doc = cloud_config(text)
    return doc, written_file(doc, CONF_PATH)["content"]


@pytest.mark.parametrize("role", ["primary", "replica"])
def test_cloud_config_is_valid_and_complete(tmp_path, role):
    doc, conf = rendered(tmp_path, role)
    # cloud-init's own schema check (Debian 12's cloud-init, the one in the VM image).
    userdata = tmp_path / "user-data"
    userdata.write_text(render("valkey-cloudinit", write_pipeline(tmp_path), role=role, password=PASSWORD))
    schema = subprocess.run(["cloud-init", "schema", "--config-file", str(userdata)],
                            capture_output=True, text=True, timeout=120)
    assert schema.returncode == 0 and "Valid cloud-config" in schema.stdout, schema.stdout + schema.stderr
    assert set(doc) == {"write_files", "runcmd"}
    assert doc["runcmd"] == [[SETUP_PATH]]
    for f in doc["write_files"]:
        assert set(f) == {"path", "owner", "permissions", "content"}
        assert isinstance(f["permissions"], str) and f["permissions"].startswith("0")
    assert written_file(doc, CONF_PATH)["permissions"] == "0600"  # it holds the password
    script = written_file(doc, SETUP_PATH)
    assert script["permissions"] == "0755" and script["content"].startswith("#!/bin/sh\n")
    # The setup script is valid shell, and mounts the data disk only where there is one.
    check = subprocess.run(["sh", "-n"], input=script["content"], text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    assert ("virtio-valkeydata" in script["content"]) == (role == "primary")
    assert "valkey-server" in script["content"]
    # No network at boot: the image holds Valkey (scripts/valkey-disk.sh); nothing is installed.
    assert not re.search(r"\bapt(-get)?\b|https?://", script["content"]), script["content"]
    unit = written_file(doc, "/etc/salespipeline/valkey-server.override.conf")["content"]
    # With a data disk Valkey never starts on the root disk (it would start empty).
    assert ("RequiresMountsFor=/var/lib/valkey" in unit) == (role == "primary")
    # The password is in the configuration, written by the operator (never in the VM spec).
    lines = conf_lines(conf)
    assert lines["requirepass"] == [f'"{PASSWORD}"'] and lines["masterauth"] == [f'"{PASSWORD}"']
    assert lines["bind"] == ["0.0.0.0"] and lines["protected-mode"] == ["no"]
    assert lines["port"] == ["6379"]
    assert lines["maxmemory-policy"] == ["volatile-ttl"]
    assert int(lines["maxmemory"][0]) == GIB // 100 * 60  # 60% of spec.valkey.memory 1Gi
    if role == "primary":
        assert lines["appendonly"] == ["yes"] and lines["appendfsync"] == ["everysec"]
        assert "replicaof" not in lines
    else:
        assert lines["appendonly"] == ["no"]
        # The primary's Service, in the VMs' own namespace (spec.valkey.namespace, <ns>-data).
        assert lines["replicaof"] == ["black-friday-valkey-primary.blackfriday-data.svc.cluster.local 6379"]


def test_spec_changes_reach_the_configuration(tmp_path):
    def bigger(spec):
        spec["valkey"]["memory"] = "2Gi"
        spec["valkey"]["persistence"] = False
    doc, conf = rendered(tmp_path, "primary", bigger)
    lines = conf_lines(conf)
    assert int(lines["maxmemory"][0]) == 2 * GIB // 100 * 60
    assert lines["appendonly"] == ["no"] and lines["save"] == ['""']
    assert "virtio-valkeydata" not in written_file(doc, SETUP_PATH)["content"]


def test_real_valkey_runs_the_primary_and_replica_configs(tmp_path, servers):
    _, primary_conf = rendered(tmp_path / "p", "primary")
    _, replica_conf = rendered(tmp_path / "r", "replica")
    primary = ValkeyFromConf(tmp_path / "primary", primary_conf)
    servers.append(primary)
    primary.start(PASSWORD)
    p = primary.client(PASSWORD)
    # What the rendered file asked for is what the server runs with.
    assert p.config_get("appendonly") == {"appendonly": "yes"}
    assert p.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert p.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-ttl"}
    assert p.config_get("maxmemory") == {"maxmemory": str(GIB // 100 * 60)}
    with pytest.raises(valkeylib.exceptions.AuthenticationError):
        primary.client(None).ping()
    p.set("sp:total_sales", 42)
    p.hset("sp:reports", mapping={"Ropa": 3, "Belleza": 4})

    replica = ValkeyFromConf(tmp_path / "replica", replica_conf)
    servers.append(replica)
    replica.start(PASSWORD, primary_port=primary.port)
    r = replica.client(PASSWORD)
    wait_until(lambda: r.info("replication").get("master_link_status") == "up", 60,
               interval=0.1, what="the replica to sync with the primary (masterauth)")
    wait_until(lambda: r.get("sp:total_sales") == "42", 30, interval=0.1, what="the replicated key")
    assert r.hgetall("sp:reports") == {"Ropa": "3", "Belleza": "4"}
    assert p.execute_command("WAIT", 1, 5000) == 1
    with pytest.raises(valkeylib.exceptions.ReadOnlyError):
        r.set("x", 1)
    # AOF on the primary: its data folder holds the append-only file.
    assert any((tmp_path / "primary" / "appendonlydir").iterdir())
