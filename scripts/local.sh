#!/usr/bin/env bash
# The whole pipeline as local processes: Kafka, Valkey primary + replica, the api, the bridge,
# writer-a (1 instance), writer-b (2 instances) and the consumer.
#
#   local.sh up [--storage]  start what is not running, wait until every part is ready, print
#                            the URLs; --storage: Kafka and Valkey only (for workers elsewhere,
#                            e.g. the pods of the test node: scripts/e2e-k8s.sh)
#   local.sh down     stop every process `up` started (by its pid file, and only those), remove state
#   local.sh status   one line per part
#
# State lives in SP_LOCAL_DIR (default build/local): <part>.pid, <part>.log, data folders, and
# `env`, a shell-sourceable file exporting API_URL, VALKEY_URL, KAFKA_BROKERS and the rest.
# Ports: SP_PORT_BASE (default 8000) + fixed offsets, so a test stack can sit beside a person's.
# Address: SP_LOCAL_ADDRESS (default 127.0.0.1), the IPv4 address every part listens on and the
# URLs name (the test node's pods reach the host at its bridge address, 10.244.0.1, only).
# Valkey password: SP_VALKEY_PASSWORD (default none): required by the primary and the replica,
# given to the consumer and exported as VALKEY_PASSWORD.
# Deadlines: SP_DEADLINE_MS, the api's (default: the api's own); the bridge's and the writers'
# follow from it by the rule the operator applies (`salesctl deadlines`, common/contract.h).
# Binaries: SP_BIN_DIR (default build/bin).
# Shape (scripts/report.sh compares them): SP_PARTITIONS, the topic's (default 6);
# SP_WRITER_GROUPS, the writer deployments the bridge calls (default "writer-a writer-b";
# "writer-a" alone is one instance, "writer-b" alone two); SP_VALKEY_REPLICA=0 starts no
# replica; SP_VALKEY_AOF, the primary's appendfsync: everysec (default), always, or no (no AOF).
# Any other option a worker reads from its environment (common/contract.h: KAFKA_LINGER_MS,
# KAFKA_ACKS, KAFKA_STICKY_MS, BRIDGE_BATCH_MAX, BRIDGE_CONNECTIONS, VALKEY_WAIT_REPLICAS, ...)
# reaches it when set in the caller's environment.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${SP_LOCAL_DIR:-$top/build/local}
bin=${SP_BIN_DIR:-$top/build/bin}
base=${SP_PORT_BASE:-8000}
topic=${SP_TOPIC:-sales}
partitions=${SP_PARTITIONS:-6}
addr=${SP_LOCAL_ADDRESS:-127.0.0.1}
valkey_password=${SP_VALKEY_PASSWORD:-}
writer_groups=${SP_WRITER_GROUPS:-writer-a writer-b}
valkey_replica=${SP_VALKEY_REPLICA:-1}
valkey_aof=${SP_VALKEY_AOF:-everysec}

api_port=$((base + 80))
bridge_port=$((base + 81))
consumer_http=$((base + 95))
valkey_port=$((base + 379))
replica_port=$((base + 380))
kafka_port=$((base + 1092))
kafka_controller=$((base + 1093))
# writer instance -> "grpc_port http_port"
declare -A writer_ports=(
  [writer-a]="$((base + 51)) $((base + 91))"
  [writer-b-1]="$((base + 52)) $((base + 92))"
  [writer-b-2]="$((base + 53)) $((base + 93))"
)
# writer group -> its instances
declare -A group_instances=([writer-a]="writer-a" [writer-b]="writer-b-1 writer-b-2")

# The instances of the groups in SP_WRITER_GROUPS, and the bridge's target: one ';'-separated
# gRPC target per group, the group's instances as one round-robin address list.
writer_instances=()
writer_target=
for group in $writer_groups; do
  [ -n "${group_instances[$group]:-}" ] || { echo "SP_WRITER_GROUPS: no writer group $group" >&2; exit 2; }
  addrs=
  for name in ${group_instances[$group]}; do
    writer_instances+=("$name")
    read -r grpc _ <<<"${writer_ports[$name]}"
    addrs+="${addrs:+,}$addr:$grpc"
  done
  writer_target+="${writer_target:+;}ipv4:$addrs"
done

log() { printf '[local] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# pid_alive NAME: NAME's process runs. A zombie counts as gone: a part killed a moment ago may
# wait for init to reap it, and `up` must start it again rather than wait on a corpse.
pid_alive() {
  local f=$dir/$1.pid pid state
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
  [ -n "$state" ] && [ "$state" != Z ]
}

# start_part NAME CMD...: starts CMD in the background unless NAME's process is alive.
start_part() {
  local name=$1; shift
  if pid_alive "$name"; then return 0; fi
  log "starting $name"
  ( cd "$dir" && exec "$@" >>"$dir/$name.log" 2>&1 ) &
  echo $! >"$dir/$name.pid"
}

# wait_ready NAME URL: polls URL until 200, failing early if NAME died.
wait_ready() {
  local name=$1 url=$2 deadline=$((SECONDS + ${SP_READY_TIMEOUT:-90}))
  until curl -fs -o /dev/null --max-time 2 "$url"; do
    pid_alive "$name" || die "$name exited; last lines of $dir/$name.log:$(printf '\n'; tail -n 20 "$dir/$name.log")"
    [ $SECONDS -lt $deadline ] || die "$name not ready at $url after ${SP_READY_TIMEOUT:-90}s"
    sleep 0.2
  done
}

# valkey-cli with the password, if any, from the environment (never on a command line).
valkey_cli() { REDISCLI_AUTH=$valkey_password valkey-cli -h "$addr" "$@"; }

wait_valkey() {
  local name=$1 port=$2 deadline=$((SECONDS + 30))
  until [ "$(valkey_cli -p "$port" ping 2>/dev/null)" = PONG ]; do
    pid_alive "$name" || die "$name exited; see $dir/$name.log"
    [ $SECONDS -lt $deadline ] || die "$name not answering on $port"
    sleep 0.1
  done
}

start_kafka() {
  SP_KAFKA_HOST=$addr "$top/scripts/kafka.sh" start "$dir/kafka" "$kafka_port" "$kafka_controller" >/dev/null
  "$top/scripts/kafka.sh" create-topic "$addr:$kafka_port" "$topic" "$partitions" >/dev/null
}

# The password goes into a config file of the server's own (0600), never onto a command line.
valkey_conf() { # name
  local f=$dir/$1/auth.conf
  (umask 077 && : > "$f")
  [ -z "$valkey_password" ] || printf 'requirepass "%s"\nmasterauth "%s"\n' "$valkey_password" "$valkey_password" > "$f"
  echo "$f"
}

start_valkey() {
  local aof=(--appendonly yes --appendfsync "$valkey_aof")
  case $valkey_aof in
    everysec | always) ;;
    no) aof=(--appendonly no) ;;
    *) die "SP_VALKEY_AOF: everysec, always or no, not $valkey_aof" ;;
  esac
  mkdir -p "$dir/valkey-primary" "$dir/valkey-replica"
  start_part valkey-primary valkey-server "$(valkey_conf valkey-primary)" --bind "$addr" \
    --port "$valkey_port" --dir "$dir/valkey-primary" "${aof[@]}" --save ""
  wait_valkey valkey-primary "$valkey_port"
  [ "$valkey_replica" = 1 ] || return 0
  start_part valkey-replica valkey-server "$(valkey_conf valkey-replica)" --bind "$addr" \
    --port "$replica_port" --dir "$dir/valkey-replica" --replicaof "$addr" "$valkey_port" --save ""
  wait_valkey valkey-replica "$replica_port"
}

common_env() {
  echo BIND_ADDR="$addr" LOG_LEVEL="${LOG_LEVEL:-info}"
}

kafka_env() {
  echo KAFKA_BROKERS="$addr:$kafka_port" KAFKA_TOPIC="$topic"
}

# deadline HOP: that hop's deadline in ms, from the api's (SP_DEADLINE_MS).
deadline() {
  "$bin/salesctl" deadlines ${SP_DEADLINE_MS:+--timeout-ms "$SP_DEADLINE_MS"} |
    awk -v hop="$1" '$1 == hop { print $2 }'
}

start_workers() {
  local name ports
  for name in "${writer_instances[@]}"; do
    read -r grpc http <<<"${writer_ports[$name]}"
    start_part "$name" env $(common_env) $(kafka_env) INSTANCE="$name" GRPC_PORT="$grpc" \
      HTTP_PORT="$http" DELIVERY_TIMEOUT_MS="$(deadline writer)" "$bin/writer"
  done
  for name in "${writer_instances[@]}"; do
    read -r grpc http <<<"${writer_ports[$name]}"
    wait_ready "$name" "http://$addr:$http/readyz"
  done
  start_part bridge env $(common_env) PORT="$bridge_port" WRITER_TARGET="$writer_target" \
    DOWNSTREAM_TIMEOUT_MS="$(deadline bridge)" "$bin/bridge"
  wait_ready bridge "http://$addr:$bridge_port/readyz"
  start_part api env $(common_env) PORT="$api_port" \
    BRIDGE_URL="http://$addr:$bridge_port/ventas" DOWNSTREAM_TIMEOUT_MS="$(deadline api)" \
    "$bin/api"
  wait_ready api "http://$addr:$api_port/readyz"
  VALKEY_PASSWORD=$valkey_password start_part consumer env $(common_env) $(kafka_env) \
    HTTP_PORT="$consumer_http" VALKEY_URL="redis://$addr:$valkey_port" "$bin/consumer"
  wait_ready consumer "http://$addr:$consumer_http/readyz"
}

write_env() {
  local urls= name http
  for name in "${writer_instances[@]}"; do
    read -r _ http <<<"${writer_ports[$name]}"
    urls+="${urls:+ }http://$addr:$http"
  done
  # Exported: `. build/local/env` then `salesctl dashboard` reads VALKEY_URL from it.
  (umask 077 && cat >"$dir/env" <<ENV
export API_URL=http://$addr:$api_port
export BRIDGE_URL=http://$addr:$bridge_port
export VALKEY_URL=redis://$addr:$valkey_port
export VALKEY_REPLICA_URL=$([ "$valkey_replica" = 1 ] && echo "redis://$addr:$replica_port")
export VALKEY_PASSWORD=$valkey_password
export KAFKA_BROKERS=$addr:$kafka_port
export KAFKA_TOPIC=$topic
export CONSUMER_URL=http://$addr:$consumer_http
export WRITER_URLS="$urls"
ENV
  )
}

up() { # [--storage]
  local storage=0
  case "${1:-}" in --storage) storage=1 ;; '') ;; *) die "usage: $0 up [--storage]" ;; esac
  [ "$storage" = 1 ] || for b in api bridge writer consumer salesctl; do
    [ -x "$bin/$b" ] || die "$bin/$b missing: run make first"
  done
  mkdir -p "$dir"
  start_kafka
  start_valkey
  [ "$storage" = 1 ] || start_workers
  write_env
  if [ "$storage" = 1 ]; then
    log "Kafka $addr:$kafka_port (topic $topic) and Valkey redis://$addr:$valkey_port ready; . $dir/env"
    return 0
  fi
  log "pipeline ready; state and logs in $dir"
  cat <<MSG
  api (POST /ventas)   http://$addr:$api_port/ventas
  bridge               http://$addr:$bridge_port
  writers (metrics)    http://$addr:$((base + 91))/metrics  :$((base + 92))  :$((base + 93))
  consumer (metrics)   http://$addr:$consumer_http/metrics
  kafka                $addr:$kafka_port (topic $topic)
  valkey               redis://$addr:$valkey_port (replica :$replica_port)
  dashboard            $bin/salesctl dashboard --valkey-url redis://$addr:$valkey_port
  source $dir/env for these as variables; \`make down\` stops it all.
MSG
}

stop_part() {
  local name=$1 f=$dir/$1.pid pid deadline
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -TERM "$pid" 2>/dev/null; then
    deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  [ -d "$dir" ] || return 0
  # Intake first, storage last, so that in-flight sales drain.
  for name in api bridge writer-a writer-b-1 writer-b-2 consumer valkey-replica valkey-primary; do
    stop_part "$name"
  done
  [ -d "$dir/kafka" ] && "$top/scripts/kafka.sh" stop "$dir/kafka" || true
  rm -rf "$dir"
  log "stopped"
}

status() {
  for name in kafka valkey-primary valkey-replica writer-a writer-b-1 writer-b-2 bridge api consumer; do
    if [ "$name" = kafka ]; then
      "$top/scripts/kafka.sh" status "$dir/kafka" >/dev/null 2>&1 && s=running || s=stopped
    elif pid_alive "$name"; then s=running; else s=stopped; fi
    printf '%-16s %s\n' "$name" "$s"
  done
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [--storage]|down|status" >&2; exit 2 ;;
esac
