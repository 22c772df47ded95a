#!/usr/bin/env bash
# A real local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager, no
# kubelet), built from the Go module proxy (tools/k8s, tools/etcd) and run on 127.0.0.1.
#   scripts/cluster.sh build|up|down|status|env
# See usage() for the environment variables it reads.
# shellcheck disable=SC2317  # the readiness checks are called through wait_for
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat >&2 <<'EOF'
usage: scripts/cluster.sh build|up|down|status|env
  build   build etcd, kube-apiserver, kube-controller-manager, kubectl once into the cache
  up      build, then start the control plane and wait until it serves (no-op if it already runs)
  down    stop what `up` started and remove the state dir
  status  say whether it is up (exit 0) or not (exit 1)
  env     print export lines for KUBECONFIG, SP_KUBECONFIG and SP_KUBECTL
environment (defaults):
  SP_CACHE (${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline)  binaries: $SP_CACHE/k8s-vX.Y.Z/bin
  SP_CLUSTER_DIR (build/cluster, relative to the repo)  certs, data, logs, pids, kubeconfig
  SP_CLUSTER_PORT (16443)  kube-apiserver      SP_KCM_PORT (16444)  kube-controller-manager
  SP_ETCD_PORT (12379)  etcd clients         SP_ETCD_PEER_PORT (12380)  etcd peers
  SP_CLUSTER_TIMEOUT (120)  seconds `up` waits for readiness
  SP_ADVERTISE_ADDRESS (auto)  kube-apiserver --advertise-address
  GO (go on PATH, else /usr/local/go/bin/go)
EOF
}

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- configuration

gomod_version() { # module go.mod -> the version that go.mod requires of module
  sed -n "s#^\(require\)\?[[:space:]]*$2 \(v[^ ]*\).*#\2#p" "$1" | head -n1
}

k8s_version=$(gomod_version "$top/tools/k8s/go.mod" k8s.io/kubernetes)
etcd_version=$(gomod_version "$top/tools/etcd/go.mod" go.etcd.io/etcd/server/v3)
if [ -z "$k8s_version" ] || [ -z "$etcd_version" ]; then die "cannot read versions from tools/*/go.mod"; fi

cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
bindir=$cache/k8s-$k8s_version/bin
state=${SP_CLUSTER_DIR:-build/cluster}
case $state in /*) ;; *) state=$top/$state ;; esac
api_port=${SP_CLUSTER_PORT:-16443}
kcm_port=${SP_KCM_PORT:-16444}
etcd_port=${SP_ETCD_PORT:-12379}
etcd_peer_port=${SP_ETCD_PEER_PORT:-12380}
timeout=${SP_CLUSTER_TIMEOUT:-120}
pki=$state/pki
# Stop order; start order is the reverse.
components=(kube-controller-manager kube-apiserver etcd)

# ---------------------------------------------------------------- build

find_go() {
  if [ -n "${GO:-}" ]; then echo "$GO"; return; fi
  command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || die "no go toolchain"
}

# Anything that changes the binaries: a changed stamp forces a rebuild.
build_stamp() {
  cat "$top"/tools/k8s/go.{mod,sum} "$top"/tools/etcd/go.{mod,sum} "$top/tools/etcd/main.go" \
    | sha256sum | cut -c1-16
}

built() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kubectl; do [ -x "$bindir/$b" ] || return 1; done
  [ "$(cat "$bindir/.stamp" 2>/dev/null)" = "$(build_stamp)" ]
}

# -X flags for both version packages: without them /version says v0.0.0 and clients misbehave;
# kubectl reports its own version from client-go's package.
version_ldflags() {
  local v=$k8s_version minor=${k8s_version#v1.} pkg flags="-s -w"
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  echo "$flags"
}

go_build() { # module-dir out-dir ldflags packages...
  local dir=$1 out=$2 ldflags=$3; shift 3
  # -mod=readonly: the committed go.sum is the pin; -p 2 keeps memory sane on 2 cores.
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath" \
    "$go" build -p "${SP_BUILD_JOBS:-2}" -ldflags "$ldflags" -o "$out/" "$@")
}

build() {
  built && return 0
  go=$(find_go)
  mkdir -p "$cache"
  # One build at a time per version (make deps and make cluster-up may race).
  exec 9>"$cache/k8s-$k8s_version.lock"
  flock 9
  if built; then exec 9>&-; return 0; fi
  local tmp=$cache/k8s-$k8s_version/bin.tmp start=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building etcd $etcd_version with $("$go" env GOVERSION) (first run only)"
  go_build "$top/tools/etcd" "$tmp" "-s -w" .
  log "building kube-apiserver, kube-controller-manager, kubectl $k8s_version (10-20 min cold on 2 cores)"
  go_build "$top/tools/k8s" "$tmp" "$(version_ldflags)" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
  build_stamp > "$tmp/.stamp"
  # Swap in whole so an interrupted build never leaves a half set of binaries.
  rm -rf "$bindir" && mv "$tmp" "$bindir"
  exec 9>&-
  log "built into $bindir in $((SECONDS - start)) s ($(du -sh "$cache/k8s-$k8s_version" | cut -f1))"
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$state/run/$1.pid"; }

# Whether pid runs and is ours: its command line names the state dir, so a recycled pid is
# never taken for one of ours, and a zombie (empty command line) counts as gone.
ours() { [[ "$(tr '\0' ' ' 2> /dev/null < "/proc/$1/cmdline")" == *"$state/"* ]]; }

# The pid in the component's pid file, if that process is still ours.
running_pid() {
  local f pid; f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && ours "$pid" || return 1
  echo "$pid"
}

start() { # name args... : run detached from our session so Ctrl-C of the caller keeps it
  local name=$1; shift
  mkdir -p "$state/run" "$state/logs"
  # 8>&- 9>&-: the daemons must not inherit (and so hold) our lock files.
  setsid "$bindir/$name" "$@" > "$state/logs/$name.log" 2>&1 < /dev/null 8>&- 9>&- &
  local pid=$! i
  echo "$pid" > "$(pidfile "$name")"
  # Until the forked shell has exec'd, its command line is ours, not the component's.
  for ((i = 0; i < 50; i++)); do running_pid "$name" > /dev/null && return 0; sleep 0.1; done
  die "$name did not start; log: $state/logs/$name.log"
}

stop() {
  local name=$1 pid i
  if pid=$(running_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then log "$name ($pid) ignored SIGTERM, killing"; kill -KILL "$pid" 2> /dev/null || true; fi
  fi
  rm -f "$(pidfile "$name")"
}

all_running() {
  local c; for c in "${components[@]}"; do running_pid "$c" > /dev/null || return 1; done
}

# up and down of one state dir run one at a time (parallel make targets may both call up).
lock_state() {
  mkdir -p "$cache/locks"
  exec 8> "$cache/locks/cluster-$(printf '%s' "$state" | sha256sum | cut -c1-12).lock"
  flock 8
}

port_free() { [ -z "$(ss -Hltn "sport = :$1")" ]; }

check_ports() {
  local p; for p in "$api_port" "$kcm_port" "$etcd_port" "$etcd_peer_port"; do
    port_free "$p" || die "port $p is taken (\`ss -ltnp\` names the process; SP_*_PORT in \`$0 help\` move ours)"
  done
}

# ---------------------------------------------------------------- certificates

# P-256 keys for TLS: an RSA key costs ~0.3 s on a busy 2-core machine, an EC key ~0.01 s.
keyopts=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)

# One openssl call per leaf: key + CSR, then signed by our CA with the given extensions.
leaf_cert() { # name subject extensions
  local name=$1 subj=$2 ext=$3
  openssl req -new "${keyopts[@]}" -nodes -subj "$subj" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

make_certs() {
  [ -f "$pki/done" ] && return 0
  log "generating certificates in $pki"
  rm -rf "$pki" && mkdir -p "$pki"
  openssl req -x509 -new "${keyopts[@]}" -nodes -days 3650 -subj "/CN=salespipeline-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  # 10.0.0.1 is the `kubernetes` Service's ClusterIP in 10.0.0.0/24.
  leaf_cert apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
    'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' \
    'extendedKeyUsage=serverAuth' \
    'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local')"
  local client='basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  leaf_cert admin "/O=system:masters/CN=admin" "$client"
  # With --use-service-account-credentials=false every controller acts as this one user; the
  # bootstrap role system:kube-controller-manager does not let the garbage collector and the
  # namespace controller delete arbitrary kinds (CRs included), so it is a master too.
  leaf_cert kcm "/O=system:masters/CN=system:kube-controller-manager" "$client"
  # RSA for service-account tokens (RS256): what every token consumer accepts.
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  touch "$pki/done"
}

b64() { base64 -w0 < "$1"; }

write_kubeconfig() { # file client-cert-name
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: salespipeline
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$pki/$2.crt")
    client-key-data: $(b64 "$pki/$2.key")
contexts:
- name: salespipeline
  context: {cluster: salespipeline, user: $2}
current-context: salespipeline
EOF
  chmod 600 "$1"
}

write_kubectl_wrapper() {
  cat > "$state/kubectl" <<EOF
#!/bin/sh
# kubectl $k8s_version for the local control plane, from any working directory.
exec "$bindir/kubectl" --kubeconfig "$state/kubeconfig" "\$@"
EOF
  chmod +x "$state/kubectl"
}

# ---------------------------------------------------------------- up

# kube-apiserver publishes this address in the `kubernetes` Service's Endpoints. Unset, it takes
# the address of the default route's interface and refuses to start without a default route.
# 127.0.0.1 starts, but Endpoints validation rejects loopback and the endpoint reconciler logs
# errors forever. So: the default route interface's address (what it would pick), else any
# global address, else 127.0.0.1 with the reconciler off (no pods here to read the Endpoints).
ipv4_of() { # [dev]
  ip -4 -o addr show ${1:+dev "$1"} scope global 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}'
}

advertise_flags() {
  local addr=${SP_ADVERTISE_ADDRESS:-} dev
  if [ -z "$addr" ]; then
    dev=$(ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
    [ -z "$dev" ] || addr=$(ipv4_of "$dev")
    [ -n "$addr" ] || addr=$(ipv4_of)
  fi
  case $addr in
    '' | 127.*) echo "--advertise-address=${addr:-127.0.0.1} --endpoint-reconciler-type=none" ;;
    *) echo "--advertise-address=$addr" ;;
  esac
}

start_etcd() {
  start etcd --name=default --data-dir="$state/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="default=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync=true --log-level=warn
}

# OwnerReferencesPermissionEnforcement on, as in stricter clusters (OpenShift): setting an owner
# reference with blockOwnerDeletion needs update on the owner's finalizers, which the operator's
# RBAC test checks. Priority and fairness off: tests act as system:masters (exempt anyway), and on a loaded
# 2-core machine its queueing would only add timing noise; --max-requests-inflight still applies.
start_apiserver() {
  # shellcheck disable=SC2046  # advertise_flags yields separate words on purpose
  start kube-apiserver --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --secure-port="$api_port" $(advertise_flags) \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --enable-admission-plugins=OwnerReferencesPermissionEnforcement \
    --enable-priority-and-fairness=false --profiling=false
}

start_kcm() {
  local kc=$state/kcm.kubeconfig
  start kube-controller-manager --kubeconfig="$kc" \
    --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$state/kcm-certs" \
    --controllers='*' --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allocate-node-cidrs=false --profiling=false
}

show_log() { tail -n 30 "$state/logs/$1.log" >&2 || true; }

# Polls check until it succeeds; fails at the deadline or as soon as component has died.
wait_for() { # component description check...
  local name=$1 what=$2; shift 2
  until "$@" > /dev/null 2>&1; do
    running_pid "$name" > /dev/null || { show_log "$name"; die "$name exited; log: $state/logs/$name.log"; }
    [ "$SECONDS" -lt "$deadline" ] || { show_log "$name"; die "timed out waiting for $what"; }
    sleep 0.2
  done
}

# Checks for wait_for.
curl_api() { curl -sf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$api_port$1"; }
etcd_healthy() { [[ "$(curl -sf --max-time 5 "http://127.0.0.1:$etcd_port/health")" == *'"health":"true"'* ]]; }
api_ready() { [ "$(curl_api /readyz)" = ok ]; }
kcm_healthy() { [ "$(curl -skf --max-time 5 "https://127.0.0.1:$kcm_port/healthz")" = ok ]; }
default_ns() { curl_api /api/v1/namespaces/default > /dev/null; }

up() {
  build
  lock_state
  if all_running && api_ready; then log "already up: https://127.0.0.1:$api_port"; return 0; fi
  local c; for c in "${components[@]}"; do stop "$c"; done # a partial earlier run
  check_ports
  mkdir -p "$state" && touch "$state/.salespipeline-cluster"
  make_certs
  write_kubeconfig "$state/kubeconfig" admin
  write_kubeconfig "$state/kcm.kubeconfig" kcm
  write_kubectl_wrapper
  local t0=$SECONDS deadline=$((SECONDS + timeout))
  log "starting etcd :$etcd_port, kube-apiserver :$api_port, kube-controller-manager :$kcm_port"
  start_etcd && wait_for etcd "etcd /health" etcd_healthy
  start_apiserver && wait_for kube-apiserver "kube-apiserver /readyz" api_ready
  start_kcm && wait_for kube-controller-manager "kube-controller-manager /healthz" kcm_healthy
  wait_for kube-apiserver "namespace default" default_ns
  log "up in $((SECONDS - t0)) s; kubectl: $state/kubectl, or: eval \"\$($0 env)\""
}

# ---------------------------------------------------------------- down, status, env

down() {
  lock_state
  local c; for c in "${components[@]}"; do stop "$c"; done
  [ -e "$state" ] || return 0
  # Remove only a folder that `up` made, whatever SP_CLUSTER_DIR says.
  [ -f "$state/.salespipeline-cluster" ] || die "$state was not made by $0; not removing it"
  rm -rf "$state"
  log "down"
}

status() {
  local c pid down=0
  for c in "${components[@]}"; do
    if pid=$(running_pid "$c"); then echo "$c: running (pid $pid)"; else echo "$c: stopped"; down=1; fi
  done
  if [ "$down" = 0 ] && api_ready; then echo "up: https://127.0.0.1:$api_port ($k8s_version), kubeconfig $state/kubeconfig"; return 0; fi
  echo "down"; return 1
}

env_lines() {
  printf 'export KUBECONFIG=%q\n' "$state/kubeconfig"
  printf 'export SP_KUBECONFIG=%q\n' "$state/kubeconfig"
  printf 'export SP_KUBECTL=%q\n' "$bindir/kubectl"
}

main() {
  case "${1:-}" in
    build) build ;;
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_lines ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"; exit $?
