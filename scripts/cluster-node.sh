# The node of the local cluster: containerd + runc, CNI (bridge, host-local, portmap), kubelet,
# kube-proxy, kube-scheduler, CoreDNS and metrics-server. Sourced by scripts/cluster.sh (which
# defines log, die, start, stop, wait_for, leaf_cert, write_kubeconfig, ...); not run alone.
# shellcheck shell=bash disable=SC2154  # the variables come from cluster.sh
#
# One node per machine: it owns the bridge cni0, the kubelet's port 10250, the kubepods cgroups
# and iptables chains. The pod network stays inside the machine: pods get no default route (only
# the service range, through the bridge), nothing is masqueraded out, and guards drop anything
# forwarded between cni0 and another interface or sent to the pod range from outside.
# What the host had before `up` (sysctls, iptables chains, folders) is recorded in
# $state/node/host so that `down` removes exactly what the node added.

node_owner_file=/run/salespipeline/node.owner
# Host folders the kubelet, containerd and libcni use whatever they are told; removed by `down`
# when `up` found them absent.
node_host_paths=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /opt/containerd
  /usr/libexec/kubernetes)
# Host settings the kubelet and the bridge plugin change: restored after the node is Ready (the
# kubelet sets them once, at start) and again by `down`.
node_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward)
node_chain_re='^(KUBE-|CNI-HOSTPORT-|CNI-DN-|SP-NODE-)'
node_dir=$state/node
# Stop order; start order is the reverse.
node_components=(metrics-server coredns kube-scheduler kube-proxy kubelet containerd)
sock=$state/run/containerd.sock
sandbox_image=registry.k8s.io/pause:3.10

# ---------------------------------------------------------------- host state

ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

# Whether any process of the node whose state is $1 still runs (its command line names $1).
owner_alive() {
  local pid
  for pid in $(cat "$1"/run/*.pid 2> /dev/null); do
    ours "$pid" "$1" && return 0
  done
  return 1
}

node_claim() {
  [ "$(id -u)" = 0 ] || die "a node needs root (cgroups, mounts, iptables, the bridge)"
  [[ $pod_cidr =~ ^[0-9]{1,3}\.[0-9]{1,3}\.0\.0/16$ ]] || die "SP_POD_CIDR=$pod_cidr: want A.B.0.0/16"
  mkdir -p "$(dirname "$node_owner_file")"
  local owner; owner=$(cat "$node_owner_file" 2> /dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$state" ] && [ -d "$owner/node" ]; then
    if owner_alive "$owner"; then
      die "a node already runs from $owner (one per machine): SP_CLUSTER_DIR=$owner $0 down"
    fi
    # Its processes died with whoever ran it (a killed test, a stopped session): what it left on
    # the host (bridge, chains, mounts, cgroups) goes before ours is made.
    log "the node of $owner is dead; removing what it left"
    SP_CLUSTER_DIR=$owner "$0" down > /dev/null
    owner=$(cat "$node_owner_file" 2> /dev/null || true)
  fi
  if [ -z "$owner" ] && ip link show "$bridge" > /dev/null 2>&1; then
    die "$bridge exists but no node of ours owns it; remove it (ip link del $bridge) if it is a leftover"
  fi
  echo "$state" > "$node_owner_file"
}

iptables_chains() { # command table
  "$1" -w -t "$2" -S 2> /dev/null | awk '$1 == "-N" {print $2}'
}

record_host() {
  [ -f "$node_dir/host/done" ] && return 0
  mkdir -p "$node_dir/host"
  local s p t cmd
  for s in "${node_sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done > "$node_dir/host/sysctls"
  for p in "${node_host_paths[@]}"; do [ -e "$p" ] || echo "$p"; done > "$node_dir/host/absent-paths"
  for cmd in iptables ip6tables; do
    for t in filter nat mangle raw; do iptables_chains "$cmd" "$t" | sed "s/^/$cmd $t /"; done
  done > "$node_dir/host/chains"
  ls -d /sys/fs/cgroup/*/kubepods > "$node_dir/host/kubepods-cgroups" 2> /dev/null || true
  touch "$node_dir/host/done"
}

restore_sysctls() {
  local line
  [ -f "$node_dir/host/sysctls" ] || return 0
  while IFS= read -r line; do sysctl -qw "$line" > /dev/null || log "cannot restore $line"; done < "$node_dir/host/sysctls"
}

# The bridge exists before anything binds to its address (kube-apiserver, CoreDNS,
# metrics-server, and the host services the pods use); the CNI bridge plugin adopts it.
make_bridge() {
  ip link show "$bridge" > /dev/null 2>&1 || ip link add "$bridge" type bridge
  ip addr replace "$host_addr/${pod_cidr#*/}" dev "$bridge"
  ip link set "$bridge" up
  # Pod -> ClusterIP -> pod is routed through the host.
  sysctl -qw net.ipv4.ip_forward=1
}

add_guards() {
  local cmd=iptables
  $cmd -w -N SP-NODE-INPUT 2> /dev/null || $cmd -w -F SP-NODE-INPUT
  $cmd -w -A SP-NODE-INPUT -i lo -j RETURN
  $cmd -w -A SP-NODE-INPUT -i "$bridge" -j RETURN
  $cmd -w -A SP-NODE-INPUT -d "$pod_cidr" -j DROP
  $cmd -w -A SP-NODE-INPUT -p tcp --dport 10250 -j DROP
  $cmd -w -C INPUT -j SP-NODE-INPUT 2> /dev/null || $cmd -w -I INPUT 1 -j SP-NODE-INPUT
  # mangle runs before filter, where kube-proxy's own FORWARD rules accept.
  $cmd -w -t mangle -N SP-NODE-FORWARD 2> /dev/null || $cmd -w -t mangle -F SP-NODE-FORWARD
  $cmd -w -t mangle -A SP-NODE-FORWARD -i "$bridge" -o "$bridge" -j RETURN
  $cmd -w -t mangle -A SP-NODE-FORWARD -i "$bridge" -j DROP
  $cmd -w -t mangle -A SP-NODE-FORWARD -o "$bridge" -j DROP
  $cmd -w -t mangle -C FORWARD -j SP-NODE-FORWARD 2> /dev/null || $cmd -w -t mangle -I FORWARD 1 -j SP-NODE-FORWARD
}

# Removes the chains the node added (kubelet's, kube-proxy's leftovers, portmap's, our guards)
# and every rule that jumps to them; chains that existed before `up` stay.
remove_chains() {
  local cmd t chain line
  for cmd in iptables ip6tables; do
    for t in filter nat mangle raw; do
      local gone=()
      while IFS= read -r chain; do
        [[ $chain =~ $node_chain_re ]] || continue
        grep -qxF "$cmd $t $chain" "$node_dir/host/chains" 2> /dev/null || gone+=("$chain")
      done < <(iptables_chains "$cmd" "$t")
      [ ${#gone[@]} -gt 0 ] || continue
      local re; re=$(printf '%s|' "${gone[@]}"); re=" -j (${re%|})( |$)"
      while IFS= read -r line; do
        eval "$cmd -w -t $t -D ${line#-A }" || log "cannot delete: $cmd -t $t $line"
      done < <("$cmd" -w -t "$t" -S | grep '^-A ' | grep -E -- "$re" || true)
      for chain in "${gone[@]}"; do "$cmd" -w -t "$t" -F "$chain" 2> /dev/null || true; done
      for chain in "${gone[@]}"; do "$cmd" -w -t "$t" -X "$chain" 2> /dev/null || log "cannot delete chain $cmd -t $t $chain"; done
    done
  done
}

# Mount points under a folder, deepest first.
mounts_under() { findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1 || $0 == substr(p, 1, length(p) - 1)' | sort -r; }

unmount_under() { # dir
  local m i
  for ((i = 0; i < 3; i++)); do
    [ -n "$(mounts_under "$1")" ] || return 0
    while IFS= read -r m; do umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true; done < <(mounts_under "$1")
  done
  [ -z "$(mounts_under "$1")" ] || { mounts_under "$1" >&2; die "mounts remain under $1; not removing it"; }
}

# The pods' processes: everything in the kubepods cgroups (only our node makes them).
kill_pod_processes() {
  local procs i
  for ((i = 0; i < 50; i++)); do
    procs=$(find /sys/fs/cgroup/pids/kubepods -name cgroup.procs -exec cat {} + 2> /dev/null | sort -u | xargs)
    [ -n "$procs" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $procs 2> /dev/null || true
    sleep 0.1
  done
  log "pod processes still alive: $procs"
}

remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    [ -d "$d" ] || continue
    grep -qxF "$d" "$node_dir/host/kubepods-cgroups" 2> /dev/null && continue
    find "$d" -depth -type d -exec rmdir {} + 2> /dev/null || true
    [ ! -d "$d" ] || log "cannot remove cgroup $d"
  done
}

# containerd's shims outlive containerd by design; ours name our socket.
kill_shims() {
  local pid
  for pid in $(pgrep -f -- "^/usr/bin/containerd-shim-runc-v2 .*-address $sock( |$)" || true); do
    kill -KILL "$pid" 2> /dev/null || true
  done
}

remove_host_paths() {
  local p
  [ -f "$node_dir/host/absent-paths" ] || return 0
  while IFS= read -r p; do
    [ -e "$p" ] || continue
    unmount_under "$p"
    rm -rf "$p"
  done < "$node_dir/host/absent-paths"
}

# ---------------------------------------------------------------- configuration files

write_containerd_config() {
  mkdir -p "$node_dir/containerd/certs.d" "$state/run"
  cat > "$node_dir/containerd.toml" <<EOF
# containerd for the test node: everything under $node_dir, CRI for the kubelet.
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
# opt would create /opt/containerd; the others only log that they cannot run here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  level = "warn"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$sandbox_image"
  # root lacks CAP_SYS_RESOURCE here: no negative oom_score_adj; no AppArmor on this host.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$node_dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni"
  # A registry's CA and mirrors: $node_dir/containerd/certs.d/HOST:PORT/hosts.toml (+ ca.crt);
  # read at every pull, so they can be added while the node runs.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$node_dir/containerd/certs.d"
EOF
}

# Pods get one route: the service range through the bridge. No default route, no masquerade.
write_cni_config() {
  mkdir -p "$node_dir/cni"
  cat > "$node_dir/cni/10-salespipeline.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "salespipeline",
  "plugins": [
    {
      "type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$node_dir/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$host_addr"}]],
        "routes": [{"dst": "$service_cidr", "gw": "$host_addr"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$node_dir/kubelet"
  # No upstream for pods with dnsPolicy Default: names resolve only inside the cluster.
  echo "# the test node's pods resolve cluster names only (CoreDNS at $dns_ip)" > "$node_dir/resolv.conf"
  cat > "$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$sock
address: $host_addr
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
clusterDNS: [$dns_ip]
clusterDomain: cluster.local
resolvConf: $node_dir/resolv.conf
podLogsDir: $node_dir/pod-logs
volumePluginDir: $node_dir/volume-plugins
# This host: cgroup v1 (hybrid), no systemd as PID 1, swap allowed, and root may not lower
# oom_score_adj below 0.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
protectKernelDefaults: false
oomScoreAdj: 0
# A test node on a shared disk: evict late, never collect the images imported by hand.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
}

write_kube_proxy_config() {
  cat > "$node_dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
nodePortAddresses: [$pod_cidr]
iptables: {localhostNodePorts: false}
# 0: leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
}

write_corefile() {
  cat > "$node_dir/Corefile" <<EOF
# Cluster DNS for the test node's pods: Services, headless Services (one A record per ready
# pod), pods by IP. No forwarding: pods resolve nothing outside the cluster.
.:$dns_port {
    bind $host_addr
    ready 127.0.0.1:$dns_ready_port
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $state/kubeconfig
        pods insecure
        ttl 5
    }
}
EOF
}

# The EndpointSlice that sends kube-system Service `service` to the host address.
host_endpoint_slice() { # service ports (a YAML flow sequence)
  cat <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $1-host
  namespace: kube-system
  labels: {kubernetes.io/service-name: $1, endpointslice.kubernetes.io/managed-by: salespipeline-cluster-sh}
addressType: IPv4
endpoints: [{addresses: ["$host_addr"], conditions: {ready: true}}]
ports: $2
EOF
}

# Selector-less Services whose EndpointSlices point at the host processes: the cluster sees
# CoreDNS as kube-dns and metrics-server behind its APIService, as on a real cluster.
write_addons() {
  cat > "$node_dir/addons.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $dns_ip
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: $dns_port}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: $dns_port}
---
$(host_endpoint_slice kube-dns "[{name: dns, port: $dns_port, protocol: UDP}, {name: dns-tcp, port: $dns_port, protocol: TCP}]")
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system, labels: {k8s-app: metrics-server}}
spec:
  ports:
  - {name: https, port: 443, protocol: TCP, targetPort: $metrics_port}
---
$(host_endpoint_slice metrics-server "[{name: https, port: $metrics_port, protocol: TCP}]")
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $(b64 "$pki/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
}

# ---------------------------------------------------------------- images

# The sandbox image: the static pause program (tools/pause) in a FROM-scratch image.
import_pause_image() {
  local out=$top/build/node
  mkdir -p "$out"
  make -s -C "$top" --no-print-directory build/node/pause > /dev/null
  python3 "$top/scripts/oci-image.py" --name "$sandbox_image" --out "$out/pause.tar" \
    --entrypoint /pause --user 65535:65535 "$out/pause:/pause"
  import_images "$out/pause.tar"
}

import_images() { # archive...
  local f
  for f in "$@"; do ctr_ images import "$f" > /dev/null || die "ctr images import $f failed"; done
}

# containerd reads HOST:PORT/hosts.toml under config_path at every pull: a registry can be
# trusted while the node runs.
trust_registry() { # host:port ca-file
  local d=$node_dir/containerd/certs.d/$1
  [ -f "$2" ] || die "no CA file $2"
  mkdir -p "$d"
  cp "$2" "$d/ca.crt"
  cat > "$d/hosts.toml" <<EOF
server = "https://$1"
[host."https://$1"]
  capabilities = ["pull", "resolve"]
  ca = "$d/ca.crt"
EOF
}

# ---------------------------------------------------------------- start, wait

kubectl_() { "$bindir/kubectl" --kubeconfig "$state/kubeconfig" "$@"; }

node_ready() {
  [ "$(kubectl_ get node "$node_name" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
containerd_up() { ctr --address "$sock" version; }
kubelet_healthy() { [ "$(curl -sf --max-time 5 http://127.0.0.1:10248/healthz)" = ok ]; }
proxy_healthy() { curl -sf --max-time 5 http://127.0.0.1:10256/healthz; }
scheduler_healthy() { [ "$(curl -skf --max-time 5 "https://127.0.0.1:$scheduler_port/healthz")" = ok ]; }
dns_ready() { curl -sf --max-time 5 "http://127.0.0.1:$dns_ready_port/ready"; }
metrics_api_available() {
  [ "$(kubectl_ get apiservice v1beta1.metrics.k8s.io -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}')" = True ]
}

start_node() {
  write_containerd_config
  write_cni_config
  write_kubelet_config
  write_kube_proxy_config
  write_corefile
  write_addons
  local kc
  for kc in kubelet kube-proxy kube-scheduler; do write_kubeconfig "$state/$kc.kubeconfig" "$kc"; done

  log "starting containerd, kubelet ($node_name), kube-proxy, kube-scheduler, CoreDNS :$dns_port, metrics-server :$metrics_port on $host_addr"
  start containerd --config "$node_dir/containerd.toml"
  wait_for containerd "containerd" containerd_up
  import_pause_image
  start kubelet --config="$node_dir/kubelet.yaml" --kubeconfig="$state/kubelet.kubeconfig" \
    --root-dir="$node_dir/kubelet" --cert-dir="$node_dir/kubelet/pki" --node-ip="$host_addr"
  wait_for kubelet "kubelet /healthz" kubelet_healthy
  wait_for kubelet "node $node_name Ready" node_ready
  restore_sysctls
  sysctl -qw net.ipv4.ip_forward=1

  kubectl_ apply --server-side --field-manager=cluster.sh -f "$node_dir/addons.yaml" > /dev/null
  start kube-proxy --config="$node_dir/kube-proxy.yaml" --hostname-override="$node_name"
  local kc_s=$state/kube-scheduler.kubeconfig
  start kube-scheduler --kubeconfig="$kc_s" --authentication-kubeconfig="$kc_s" --authorization-kubeconfig="$kc_s" \
    --bind-address=127.0.0.1 --secure-port="$scheduler_port" --leader-elect=false --profiling=false
  start coredns -conf "$node_dir/Corefile"
  start metrics-server --kubeconfig="$state/kubeconfig" --authentication-kubeconfig="$state/kubeconfig" \
    --authorization-kubeconfig="$state/kubeconfig" --bind-address="$host_addr" --secure-port="$metrics_port" \
    --tls-cert-file="$pki/metrics-server.crt" --tls-private-key-file="$pki/metrics-server.key" \
    --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --kubelet-use-node-status-port --metric-resolution=10s --kubelet-request-timeout=5s --profiling=false
  wait_for kube-proxy "kube-proxy /healthz" proxy_healthy
  wait_for kube-scheduler "kube-scheduler /healthz" scheduler_healthy
  wait_for coredns "CoreDNS /ready" dns_ready
  wait_for metrics-server "APIService v1beta1.metrics.k8s.io Available" metrics_api_available
}

# ---------------------------------------------------------------- up, down

# Before the control plane: kube-apiserver binds to the bridge's address.
node_prepare() {
  mkdir -p "$node_dir"
  record_host
  make_bridge
  add_guards
}

# Pods first, through the kubelet (CNI DEL for each sandbox); then the processes; then whatever
# a crash may have left.
node_down() {
  [ -d "$node_dir" ] || return 0
  local i
  stop kube-scheduler   # no new pod is bound while the old ones go
  if running_pid kubelet > /dev/null && running_pid kube-apiserver > /dev/null; then
    kubectl_ delete pods --all --all-namespaces --grace-period=1 --wait=false > /dev/null 2>&1 || true
    for ((i = 0; i < 150; i++)); do
      [ -z "$(ctr_ tasks ls -q 2> /dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop metrics-server
  stop coredns
  stop kube-proxy
  "$nodebindir/kube-proxy" --cleanup > "$state/logs/kube-proxy-cleanup.log" 2>&1 || true
  stop kubelet
  if running_pid containerd > /dev/null; then
    local id
    for id in $(ctr_ tasks ls -q 2> /dev/null); do ctr_ tasks kill -s KILL "$id" > /dev/null 2>&1 || true; done
  fi
  kill_pod_processes
  stop containerd
  kill_shims
  unmount_under "$state"
  remove_cgroups
  ip link del "$bridge" 2> /dev/null || true
  remove_chains
  restore_sysctls
  remove_host_paths
  rm -rf "$node_dir"
  [ "$(cat "$node_owner_file" 2> /dev/null)" != "$state" ] || rm -f "$node_owner_file"
  rmdir "$(dirname "$node_owner_file")" 2> /dev/null || true
}
