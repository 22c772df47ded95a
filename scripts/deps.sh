#!/usr/bin/env bash
# Installs everything the build, the tests and `make run` need, pinned and idempotent.
# A second run costs seconds: each step is skipped when its stamp matches its inputs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
mkdir -p "$cache" "$top/build"

log() { printf '[deps] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Another apt or dpkg run (a second checkout's install) holds the lock: wait for it, do not fail.
apt_get() { DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=900 "$@"; }

apt_packages=$(grep -v '^#' "$top/scripts/apt-packages.txt" | xargs)
backports_packages="valkey-server valkey-tools"

apt_step() {
  local stamp="$top/build/.deps-apt"
  local want; want=$(cat "$top/scripts/apt-packages.txt" "$0" | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  # bookworm-backports, derived from the machine's own Debian entry (no host name in our files).
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    local src=/etc/apt/sources.list.d/debian.sources
    if [ -f "$src" ]; then
      local uris; uris=$(awk '/^URIs:/ {print $2; exit}' "$src")
      log "adding bookworm-backports from $src ($uris)"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$uris" | as_root tee /etc/apt/sources.list.d/backports.sources >/dev/null
    else
      local uri; uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
      echo "deb $uri bookworm-backports main" | as_root tee /etc/apt/sources.list.d/backports.list >/dev/null
    fi
  fi
  local missing=()
  for p in $apt_packages $backports_packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends $apt_packages >/dev/null
    apt_get install -y -qq --no-install-recommends \
      -t bookworm-backports $backports_packages >/dev/null
    # Never the packaged services: tests start their own servers on their own ports.
    as_root systemctl disable --now valkey-server docker-registry 2>/dev/null || true
    as_root pkill -x valkey-server 2>/dev/null || true
    # cloud-init is here only for `cloud-init schema` (checks the Valkey VMs' user data); it
    # must never act on this machine at boot.
    as_root mkdir -p /etc/cloud && as_root touch /etc/cloud/cloud-init.disabled
  fi
  echo "$want" > "$stamp"
}

venv_step() {
  local venv="$top/.venv" stamp="$top/.venv/.stamp"
  local want; want=$(sha256sum "$top/requirements.txt" | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  log "python virtualenv from requirements.txt"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$top/requirements.txt"
  echo "$want" > "$stamp"
}

kafka_step() { "$top/scripts/kafka.sh" install; }

# etcd, kube-apiserver, kube-controller-manager, kubectl, and the node's kubelet, kube-proxy,
# kube-scheduler, CoreDNS and metrics-server, built once from the Go module proxy.
cluster_step() { "$top/scripts/cluster.sh" build --node; }

# What `make images`, `make registry-up` and `make push` need beyond the packages: ORAS, built
# once from tools/oras.
images_step() { apt_step; "$top/scripts/gotool.sh" oras >/dev/null; }

case "${1:-all}" in
  apt) apt_step ;;
  venv) venv_step ;;
  kafka) kafka_step ;;
  cluster) cluster_step ;;
  images) images_step ;;
  base) apt_step; venv_step; kafka_step ;;
  all) apt_step; venv_step; kafka_step; images_step; cluster_step ;;
  *) echo "usage: $0 [all|base|apt|venv|kafka|images|cluster]" >&2; exit 2 ;;
esac
