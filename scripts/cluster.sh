#!/usr/bin/env bash
# A real local Kubernetes cluster built from the Go module proxy (tools/k8s, tools/etcd, ...):
# the control plane (etcd + kube-apiserver + kube-controller-manager) on 127.0.0.1, and with
# --node a real node (scripts/cluster-node.sh: containerd, kubelet, kube-proxy, kube-scheduler,
# CoreDNS, metrics-server) whose pods run on a bridge inside this machine.
#   scripts/cluster.sh build|up|down|status|env|owner|import|trust-registry [--node|--no-node]
# See usage() for the environment variables it reads.
# shellcheck disable=SC2317  # the readiness checks are called through wait_for
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat >&2 <<'EOF'
usage: scripts/cluster.sh build|up|down|status|env|owner|import|trust-registry [--node|--no-node]
  build   build etcd, kube-apiserver, kube-controller-manager, kubectl once into the cache
          (with --node also kubelet, kube-proxy, kube-scheduler, CoreDNS, metrics-server)
  up      build, then start the control plane (with --node: and the node) and wait until it
          serves (no-op if it already runs)
  down    stop what `up` started (the node too, whatever the flag), remove what it added to
          the host and the state dir
  status  say whether it is up (exit 0) or not (exit 1)
  env     print export lines for KUBECONFIG, SP_KUBECONFIG, SP_KUBECTL (with a node also
          SP_NODE_HOST_ADDRESS, SP_NODE_IMAGES_IMPORT, SP_NODE_REGISTRY_CONFIG); also in STATE/env
  owner   print the state folder of the cluster that owns this machine's node (empty if none)
  import ARCHIVE...  import OCI image archives into the node's containerd (namespace k8s.io)
  trust-registry HOST:PORT CA  let the node's containerd pull from that registry over TLS
          verified with CA (a hosts.toml; credentials come from the pods' imagePullSecrets)
--node / --no-node (or SP_CLUSTER_NODE=1/0; default 0): with or without the node. One node per
  machine: it owns cni0, the kubelet's port 10250, the kubepods cgroups and iptables chains.
environment (defaults):
  SP_CACHE (${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline)  binaries: $SP_CACHE/k8s-vX.Y.Z/bin
  SP_CLUSTER_DIR (build/cluster, relative to the repo)  certs, data, logs, pids, kubeconfig
  SP_CLUSTER_PORT (16443)  kube-apiserver      SP_KCM_PORT (16444)  kube-controller-manager
  SP_ETCD_PORT (12379)  etcd clients         SP_ETCD_PEER_PORT (12380)  etcd peers
  SP_CLUSTER_TIMEOUT (120)  seconds `up` waits for readiness
  SP_ADVERTISE_ADDRESS (auto)  kube-apiserver --advertise-address (with a node: the bridge's)
  GO (go on PATH, else /usr/local/go/bin/go)
with a node:
  SP_POD_CIDR (10.244.0.0/16, must end in .0.0/16)  pod range on bridge cni0; the host is its
      first address (10.244.0.1): kube-apiserver, CoreDNS, metrics-server and the host services
      that pods use (Kafka, Valkey, a registry) listen there; 127.0.0.1 is not reachable from pods
  SP_SCHEDULER_PORT (16445)  kube-scheduler on 127.0.0.1
  SP_METRICS_SERVER_PORT (16446)  metrics-server on the host address
  SP_DNS_PORT (10053), SP_DNS_READY_PORT (10054)  CoreDNS on the host address, its /ready on 127.0.0.1
  the kubelet uses 10250 (host address), 10248 (127.0.0.1); kube-proxy 10249 and 10256 (127.0.0.1)
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
coredns_version=$(gomod_version "$top/tools/coredns/go.mod" github.com/coredns/coredns)
metrics_server_version=$(gomod_version "$top/tools/metrics-server/go.mod" sigs.k8s.io/metrics-server)
if [ -z "$k8s_version" ] || [ -z "$etcd_version" ] || [ -z "$coredns_version" ] || [ -z "$metrics_server_version" ]; then
  die "cannot read versions from tools/*/go.mod"
fi

cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
bindir=$cache/k8s-$k8s_version/bin
nodebindir=$cache/k8s-$k8s_version/node-bin
corednsdir=$cache/coredns-$coredns_version/bin
metricsdir=$cache/metrics-server-$metrics_server_version/bin
node=${SP_CLUSTER_NODE:-0}
state=${SP_CLUSTER_DIR:-build/cluster}
case $state in /*) ;; *) state=$top/$state ;; esac
api_port=${SP_CLUSTER_PORT:-16443}
kcm_port=${SP_KCM_PORT:-16444}
etcd_port=${SP_ETCD_PORT:-12379}
etcd_peer_port=${SP_ETCD_PEER_PORT:-12380}
timeout=${SP_CLUSTER_TIMEOUT:-120}
pki=$state/pki
service_cidr=10.0.0.0/24   # the `kubernetes` Service is 10.0.0.1, kube-dns 10.0.0.10
dns_ip=10.0.0.10
pod_cidr=${SP_POD_CIDR:-10.244.0.0/16}
host_addr=${pod_cidr%.0.0/16}.0.1
bridge=cni0
scheduler_port=${SP_SCHEDULER_PORT:-16445}
metrics_port=${SP_METRICS_SERVER_PORT:-16446}
dns_port=${SP_DNS_PORT:-10053}
dns_ready_port=${SP_DNS_READY_PORT:-10054}
# The kubelet registers the Node under the host name, and kube-apiserver reaches it by the
# Node's InternalIP (--node-ip, the bridge's address).
node_name=$(hostname | tr '[:upper:]' '[:lower:]')
# Stop order; start order is the reverse.
components=(kube-controller-manager kube-apiserver etcd)

# shellcheck source=scripts/cluster-node.sh
. "$top/scripts/cluster-node.sh"

# ---------------------------------------------------------------- build

find_go() {
  if [ -n "${GO:-}" ]; then echo "$GO"; return; fi
  command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || die "no go toolchain"
}

# Anything that changes a set of binaries: a changed stamp forces a rebuild of that set.
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
build_stamp() {
  stamp_of "$top"/tools/k8s/go.{mod,sum} "$top"/tools/etcd/go.{mod,sum} "$top/tools/etcd/main.go"
}

# Whether dir holds every binary named and the stamp.
built_set() { # dir stamp binaries...
  local dir=$1 stamp=$2 b; shift 2
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
  [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]
}

# -X flags for both version packages: without them /version says v0.0.0 and clients misbehave;
# kubectl (and metrics-server) report their own version from client-go's package.
version_ldflags() { # version
  local v=$1 major minor pkg flags="-s -w"
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
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

# Builds one set of binaries once per stamp: under a lock (make deps and make cluster-up may
# race, and two Go builds at once would only thrash 2 cores), into a temporary folder swapped in
# whole, so an interrupted build never leaves a half set.
build_set() { # lock out-dir stamp "binaries" what build-function
  local lock=$1 out=$2 stamp=$3 bins=$4 what=$5 fn=$6
  # shellcheck disable=SC2086  # bins is a word list
  built_set "$out" "$stamp" $bins && return 0
  go=$(find_go)
  mkdir -p "$cache"
  exec 9>"$cache/$lock.lock"
  flock 9
  # shellcheck disable=SC2086
  if built_set "$out" "$stamp" $bins; then exec 9>&-; return 0; fi
  local tmp=$out.tmp start=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "building $what with $("$go" env GOVERSION) (first run only)"
  "$fn" "$tmp"
  echo "$stamp" > "$tmp/.stamp"
  rm -rf "$out" && mv "$tmp" "$out"
  exec 9>&-
  log "built $what into $out in $((SECONDS - start)) s ($(du -sh "$out" | cut -f1))"
}

build_control_plane() {
  go_build "$top/tools/etcd" "$1" "-s -w" .
  go_build "$top/tools/k8s" "$1" "$(version_ldflags "$k8s_version")" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
}

build_k8s_node() {
  go_build "$top/tools/k8s-node" "$1" "$(version_ldflags "$k8s_version")" k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler
}

build_coredns() { go_build "$top/tools/coredns" "$1" "-s -w" .; }

build_metrics_server() {
  go_build "$top/tools/metrics-server" "$1" "$(version_ldflags "$metrics_server_version")" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
}

build() {
  # 10-20 min cold on 2 cores for the control plane; the node's set 3-6 min more.
  build_set "k8s-$k8s_version" "$bindir" "$(build_stamp)" "etcd kube-apiserver kube-controller-manager kubectl" \
    "etcd $etcd_version, kube-apiserver, kube-controller-manager, kubectl $k8s_version" build_control_plane
  [ "$node" = 1 ] || return 0
  build_set "k8s-$k8s_version" "$nodebindir" "$(stamp_of "$top"/tools/k8s-node/go.{mod,sum})" \
    "kubelet kube-proxy kube-scheduler" "kubelet, kube-proxy, kube-scheduler $k8s_version" build_k8s_node
  build_set "coredns-$coredns_version" "$corednsdir" "$(stamp_of "$top"/tools/coredns/*)" coredns \
    "CoreDNS $coredns_version" build_coredns
  build_set "metrics-server-$metrics_server_version" "$metricsdir" "$(stamp_of "$top"/tools/metrics-server/go.{mod,sum})" \
    metrics-server "metrics-server $metrics_server_version" build_metrics_server
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$state/run/$1.pid"; }

binary_of() {
  case $1 in
    kubelet | kube-proxy | kube-scheduler) echo "$nodebindir/$1" ;;
    coredns) echo "$corednsdir/coredns" ;;
    metrics-server) echo "$metricsdir/metrics-server" ;;
    containerd) command -v containerd ;;
    *) echo "$bindir/$1" ;;
  esac
}

# Whether pid runs and is ours: its command line names the state dir ($2, default ours), so a
# recycled pid is never taken for one of ours, and a zombie (empty command line) counts as gone.
ours() { [[ "$(tr '\0' ' ' 2> /dev/null < "/proc/$1/cmdline")" == *"${2:-$state}/"* ]]; }

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
  setsid "$(binary_of "$name")" "$@" > "$state/logs/$name.log" 2>&1 < /dev/null 8>&- 9>&- &
  local pid=$! i
  echo "$pid" > "$(pidfile "$name")"
  # Until the forked shell has exec'd, its command line is ours, not the component's.
  for ((i = 0; i < 50; i++)); do running_pid "$name" > /dev/null && return 0; sleep 0.1; done
  die "$name did not start; log: $state/logs/$name.log"
}

stop() { # name [seconds to wait after SIGTERM]
  local name=$1 grace=${2:-15} pid i
  if pid=$(running_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then log "$name ($pid) still runs ${grace} s after SIGTERM: SIGKILL"; kill -KILL "$pid" 2> /dev/null || true; fi
  fi
  rm -f "$(pidfile "$name")"
}

all_running() {
  local c; for c in "${components[@]}"; do running_pid "$c" > /dev/null || return 1; done
  [ "$node" = 0 ] || for c in "${node_components[@]}"; do running_pid "$c" > /dev/null || return 1; done
}

# up and down of one state dir run one at a time (parallel make targets may both call up).
lock_state() {
  mkdir -p "$cache/locks"
  exec 8> "$cache/locks/cluster-$(printf '%s' "$state" | sha256sum | cut -c1-12).lock"
  flock 8
}

port_free() { [ -z "$(ss -Hltn "sport = :$1")" ]; }

check_ports() {
  local p ports=("$api_port" "$kcm_port" "$etcd_port" "$etcd_peer_port")
  [ "$node" = 0 ] || ports+=("$scheduler_port" "$metrics_port" "$dns_port" "$dns_ready_port" 10248 10249 10250 10256)
  for p in "${ports[@]}"; do
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
  local server='basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth'
  local client='basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'
  # 10.0.0.1 is the `kubernetes` Service's ClusterIP in 10.0.0.0/24; host_addr is where the
  # server listens when there is a node (pods reach it there and through the Service).
  leaf_cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,IP:$host_addr,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  leaf_cert admin "/O=system:masters/CN=admin" "$client"
  # With --use-service-account-credentials=false every controller acts as this one user; the
  # bootstrap role system:kube-controller-manager does not let the garbage collector and the
  # namespace controller delete arbitrary kinds (CRs included), so it is a master too.
  leaf_cert kcm "/O=system:masters/CN=system:kube-controller-manager" "$client"
  # The node's identities: the bootstrap RBAC roles and the Node authorizer know these names.
  leaf_cert kubelet "/O=system:nodes/CN=system:node:$node_name" "$client"
  leaf_cert kube-proxy "/CN=system:kube-proxy" "$client"
  leaf_cert kube-scheduler "/CN=system:kube-scheduler" "$client"
  # kube-apiserver to the kubelets (logs, exec, port-forward) and to aggregated APIs.
  leaf_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  leaf_cert front-proxy-client "/CN=front-proxy-client" "$client"
  leaf_cert kubelet-serving "/CN=$node_name" "$server
subjectAltName=DNS:$node_name,IP:$host_addr,IP:127.0.0.1"
  leaf_cert metrics-server "/CN=metrics-server" "$server
subjectAltName=DNS:metrics-server.kube-system.svc,IP:$host_addr"
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
    server: https://$api_host:$api_port
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
  [ "$node" = 0 ] || addr=${addr:-$host_addr}
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
# RBAC test checks. Priority and fairness off: tests act as system:masters (exempt anyway), and
# on a loaded 2-core machine its queueing would only add timing noise; --max-requests-inflight still applies.
# Without a node: no pods ever run, so no ServiceAccount admission (no waiting for a namespace's
# default ServiceAccount). With one: pods get tokens, the kubelets are reached with a client
# certificate and verified, and aggregated APIs (metrics-server) are proxied to.
apiserver_mode_flags() {
  if [ "$node" = 0 ]; then
    echo --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
      --enable-admission-plugins=OwnerReferencesPermissionEnforcement
    return
  fi
  echo --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true
}

start_apiserver() {
  # shellcheck disable=SC2046  # the flag functions yield separate words on purpose
  start kube-apiserver --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address="$api_host" --secure-port="$api_port" $(advertise_flags) $(apiserver_mode_flags) \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$service_cidr" --allow-privileged=true \
    --enable-priority-and-fairness=false --profiling=false
}

start_kcm() {
  local kc=$state/kcm.kubeconfig
  start kube-controller-manager --kubeconfig="$kc" \
    --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$state/kcm-certs" \
    --flex-volume-plugin-dir="$state/kcm-flexvolume" \
    --controllers='*' --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$service_cidr" --allocate-node-cidrs=false --profiling=false
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
curl_api() { curl -sf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://$api_host:$api_port$1"; }
etcd_healthy() { [[ "$(curl -sf --max-time 5 "http://127.0.0.1:$etcd_port/health")" == *'"health":"true"'* ]]; }
api_ready() { [ "$(curl_api /readyz)" = ok ]; }
kcm_healthy() { [ "$(curl -skf --max-time 5 "https://127.0.0.1:$kcm_port/healthz")" = ok ]; }
default_ns() { curl_api /api/v1/namespaces/default > /dev/null; }

up() {
  build
  lock_state
  if [ "$node" = 0 ] && [ -d "$node_dir" ]; then die "the cluster in $state has a node: \`$0 down\` first, or up --node"; fi
  if all_running && api_ready; then log "already up: https://$api_host:$api_port"; return 0; fi
  # A partial earlier run.
  node_down
  local c; for c in "${components[@]}"; do stop "$c"; done
  [ "$node" = 0 ] || node_claim
  check_ports
  mkdir -p "$state" && touch "$state/.salespipeline-cluster"
  local t0=$SECONDS deadline=$((SECONDS + timeout))
  [ "$node" = 0 ] || node_prepare
  make_certs
  write_kubeconfig "$state/kubeconfig" admin
  write_kubeconfig "$state/kcm.kubeconfig" kcm
  write_kubectl_wrapper
  log "starting etcd :$etcd_port, kube-apiserver $api_host:$api_port, kube-controller-manager :$kcm_port"
  start_etcd && wait_for etcd "etcd /health" etcd_healthy
  start_apiserver && wait_for kube-apiserver "kube-apiserver /readyz" api_ready
  start_kcm && wait_for kube-controller-manager "kube-controller-manager /healthz" kcm_healthy
  wait_for kube-apiserver "namespace default" default_ns
  [ "$node" = 0 ] || start_node
  env_lines > "$state/env"
  log "up in $((SECONDS - t0)) s; kubectl: $state/kubectl, or: eval \"\$($0 env)\""
}

# ---------------------------------------------------------------- down, status, env

down() {
  lock_state
  local t0=$SECONDS
  node_down
  # kube-apiserver's graceful exit waits up to 20-30 s for watches of its own loopback client
  # (and, with a node, for its lease reconciler); nothing of it outlives `down`.
  stop kube-controller-manager
  stop kube-apiserver 3
  stop etcd
  [ -e "$state" ] || return 0
  # Remove only a folder that `up` made, whatever SP_CLUSTER_DIR says.
  [ -f "$state/.salespipeline-cluster" ] || die "$state was not made by $0; not removing it"
  unmount_under "$state"
  rm -rf "$state"
  log "down in $((SECONDS - t0)) s"
}

status() {
  local c pid down=0 list=("${components[@]}")
  [ "$node" = 0 ] || list+=("${node_components[@]}")
  for c in "${list[@]}"; do
    if pid=$(running_pid "$c"); then echo "$c: running (pid $pid)"; else echo "$c: stopped"; down=1; fi
  done
  if [ "$down" = 0 ] && api_ready; then
    echo "up: https://$api_host:$api_port ($k8s_version), kubeconfig $state/kubeconfig${node/#1/, node $node_name}"
    return 0
  fi
  echo "down"; return 1
}

env_lines() {
  printf 'export KUBECONFIG=%q\n' "$state/kubeconfig"
  printf 'export SP_KUBECONFIG=%q\n' "$state/kubeconfig"
  printf 'export SP_KUBECTL=%q\n' "$bindir/kubectl"
  [ "$node" = 1 ] || return 0
  # Where the pods reach this host: bind host services (Kafka, Valkey, a registry) here.
  printf 'export SP_NODE_HOST_ADDRESS=%q\n' "$host_addr"
  printf 'export SP_NODE_POD_CIDR=%q\n' "$pod_cidr"
  printf 'export SP_NODE_NAME=%q\n' "$node_name"
  # containerd's registry hosts (HOST:PORT/hosts.toml + CA) and its socket (ctr --address).
  printf 'export SP_NODE_REGISTRY_CONFIG=%q\n' "$node_dir/containerd/certs.d"
  printf 'export SP_NODE_CONTAINERD=%q\n' "$sock"
}

main() {
  local cmd=${1:-} args=()
  [ $# -gt 0 ] && shift
  for arg in "$@"; do
    case $arg in
      --node) node=1 ;;
      --no-node) node=0 ;;
      -*) usage; exit 2 ;;
      *) args+=("$arg") ;;
    esac
  done
  # A running node is stopped, shown and described whatever the flag says.
  case $cmd in down | status | env | import | trust-registry) [ ! -d "$node_dir" ] || node=1 ;; esac
  api_host=127.0.0.1
  [ "$node" = 0 ] || api_host=$host_addr
  case "$cmd" in
    build) build ;;
    up) up ;;
    down) down ;;
    status) status ;;
    env) env_lines ;;
    owner) cat "$node_owner_file" 2> /dev/null || true ;;
    import)
      [ ${#args[@]} -gt 0 ] || { usage; exit 2; }
      running_pid containerd > /dev/null || die "no node runs from $state"
      import_images "${args[@]}" ;;
    trust-registry)
      [ ${#args[@]} -eq 2 ] || { usage; exit 2; }
      [ -d "$node_dir" ] || die "no node in $state"
      trust_registry "${args[@]}" ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"; exit $?
