"""The cluster with its real node (`scripts/cluster.sh up --node`) for tests: started once per
run in a temporary state folder by the session fixture `node` (tests/conftest.py) and stopped
even on failure, or reused from SP_TEST_NODE_DIR (the state folder of a node that is already
up: `SP_CLUSTER_DIR=... scripts/cluster.sh up --node`; then nothing is stopped at the end).

One node per machine (cni0, the kubelet's port 10250, iptables): every test area that needs
pods (tests/node, tests/e2e) shares the one session node.

The session also checks that `down` leaves the host as `up` found it: mounts, network links,
iptables chains, kubepods cgroups, sysctls, the host folders the kubelet and containerd use."""
import contextlib
import glob
import json
import os
import shlex
import subprocess
from pathlib import Path

from harness import ROOT, free_port

CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
NODE_SYSCTLS = ["vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
                "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward"]
NODE_HOST_PATHS = ["/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni",
                   "/run/containerd", "/opt/containerd", "/usr/libexec/kubernetes", "/run/salespipeline"]
NODE_CHAIN_PREFIXES = ("KUBE-", "CNI-HOSTPORT-", "CNI-DN-", "SP-NODE-")


def _out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def host_snapshot(state):
    """What a node adds to the host, as far as this machine shows it."""
    chains = []
    for cmd in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            for line in _out(cmd, "-w", "-t", table, "-S").splitlines():
                words = line.split()
                if (words[0] == "-N" and words[1].startswith(NODE_CHAIN_PREFIXES)) or \
                        ("-j" in words and words[words.index("-j") + 1].startswith(NODE_CHAIN_PREFIXES)):
                    chains.append(f"{cmd} {table} {line}")
    mounts = [m for m in _out("findmnt", "-rn", "-o", "TARGET").splitlines()
              if m.startswith((str(state), "/var/lib/kubelet", "/run/containerd", "/run/netns/cni-"))]
    links = [name for name in (line.split(": ")[1].split("@")[0]
                               for line in _out("ip", "-o", "link").splitlines())
             if name == "cni0" or name.startswith("veth")]
    return {
        "iptables": sorted(chains),
        "mounts": sorted(mounts),
        "links": sorted(links),
        "cgroups": sorted(glob.glob("/sys/fs/cgroup/*/kubepods")),
        "sysctls": {s: _out("sysctl", "-n", s).strip() for s in NODE_SYSCTLS},
        "paths": sorted(p for p in NODE_HOST_PATHS if os.path.exists(p)),
        "processes": sorted(p for p in subprocess.run(["pgrep", "-af", str(state)], capture_output=True,
                                                      text=True).stdout.splitlines()
                            if p.split()[0] != str(os.getpid())),
    }


class Node:
    """The cluster with its node: kubectl (the wrapper `up` writes) and the env `up` wrote."""

    def __init__(self, state):
        self.state = Path(state)
        self.env = {}
        for line in (self.state / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = shlex.split(value)[0] if value else ""
        self.host_address = self.env["SP_NODE_HOST_ADDRESS"]

    def kubectl(self, *args, stdin=None, check=True, timeout=120):
        p = subprocess.run([str(self.state / "kubectl"), *args], input=stdin, capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
        return p

    def get(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def apply(self, *objects):
        self.kubectl("apply", "--server-side", "-f", "-",
                     stdin="\n---\n".join(json.dumps(o) for o in objects))

    def exec(self, ns, pod, *cmd, check=True, timeout=60):
        return self.kubectl("exec", "-n", ns, pod, "--", *cmd, check=check, timeout=timeout)


def cluster_env(state):
    return dict(os.environ, SP_CLUSTER_DIR=str(state), SP_CLUSTER_PORT=str(free_port()),
                SP_KCM_PORT=str(free_port()), SP_ETCD_PORT=str(free_port()),
                SP_ETCD_PEER_PORT=str(free_port()), SP_SCHEDULER_PORT=str(free_port()),
                SP_METRICS_SERVER_PORT=str(free_port()), SP_DNS_PORT=str(free_port()),
                SP_DNS_READY_PORT=str(free_port()), SP_CLUSTER_TIMEOUT="300")


class NodeError(Exception):
    """`cluster.sh up --node` or `down` failed, or `down` left something behind."""


@contextlib.contextmanager
def running_node(state):
    """`cluster.sh up --node` in the state folder `state` (on free ports) for the block, then
    `down`, even on failure; then checks that the host is as `up` found it (NodeError)."""
    env = cluster_env(state)
    before = host_snapshot(state)
    try:
        up = subprocess.run([str(CLUSTER_SH), "up", "--node"], env=env, capture_output=True,
                            text=True, timeout=3600)
        if up.returncode != 0:
            raise NodeError(f"scripts/cluster.sh up --node failed:\n{up.stderr[-6000:]}")
        yield Node(state)
    finally:
        down = subprocess.run([str(CLUSTER_SH), "down"], env=env, capture_output=True, text=True,
                              timeout=300)
    if down.returncode != 0:
        raise NodeError(f"scripts/cluster.sh down failed:\n{down.stderr[-4000:]}")
    after = host_snapshot(state)
    left = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    if left:
        raise NodeError(f"the node left things behind (before, after): {left}")

