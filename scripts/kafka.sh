#!/usr/bin/env bash
# A real Apache Kafka 4 broker (KRaft, one node that is both broker and controller), run from the
# Maven Central jars pinned in tools/kafka/pom.xml with the machine's Java 17.
#
#   kafka.sh install                              fetch the jars and build the class-data archive
#                                                 once (stamped: a no-op afterwards)
#   kafka.sh start DIR PORT [CONTROLLER_PORT]     start (or find running) the broker whose state is
#                                                 DIR; print HOST:PORT once it serves clients
#   kafka.sh stop DIR                             SIGTERM, then SIGKILL after SP_KAFKA_STOP_TIMEOUT s
#   kafka.sh kill DIR                             SIGKILL at once (fault tests)
#   kafka.sh status DIR                           print the bootstrap address; exit 1 if not running
#   kafka.sh create-topic BOOTSTRAP|DIR NAME PARTITIONS
#   kafka.sh run-class CLASS [ARGS...]            e.g. org.apache.kafka.tools.ProducerPerformance
#
# DIR holds server.properties, data/ (the log dirs, kept across stop/start), logs/ and kafka.pid.
# CONTROLLER_PORT defaults to the one DIR used before, else PORT+1.
# Environment: SP_KAFKA_HOST (127.0.0.1): the address clients connect to, listened on and
# advertised (e.g. a test node's bridge address, for pods; the controller stays on loopback),
# SP_CACHE (cache root), SP_KAFKA_HEAP (default -Xms256m -Xmx512m), SP_KAFKA_JVM_OPTS
# (extra broker JVM flags, after ours: -XX:TieredStopAtLevel=4 brings C2 back),
# SP_KAFKA_READY_TIMEOUT (s, default 90), SP_KAFKA_STOP_TIMEOUT (s, default 60).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pom=$top/tools/kafka/pom.xml
log4j_conf=$top/tools/kafka/log4j2.yaml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
home=$cache/kafka-$version
libs=$home/libs
# AppCDS archive of the classes a broker loads: start-to-ready and tool runs take ~40% less time.
jsa=$home/kafka.jsa

log() { printf '[kafka] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- java

# Used when present; -Xshare:auto means a stale or missing archive only costs speed.
cds_opts() { if [ -f "$jsa" ]; then echo "-XX:SharedArchiveFile=$jsa"; fi; }

# Flags shared by every tool JVM: logs at WARN on stderr, so stdout is the tool's own output.
tool_jvm() {
  printf '%s\n' -Xshare:auto -Djava.awt.headless=true -Dlog4j2.configurationFile="$log4j_conf" \
    -Dsp.kafka.log.appender=Stderr -Dsp.kafka.log.level=WARN
  cds_opts
}

# Admin tools (topics, format): C1 only and a small serial heap, they exit before C2 pays off.
run_tool() {
  local opts; mapfile -t opts < <(tool_jvm)
  java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${opts[@]}" -cp "$libs/*" "$@"
}

# ---------------------------------------------------------------- install

# Identifies the JVM build without starting one (`java -version` costs ~0.1-0.3 s).
jvm_id() {
  local java; java=$(readlink -f "$(command -v java)")
  stat -c '%n %s %Y' "${java%/bin/java}/lib/server/libjvm.so" 2>/dev/null || echo "$java"
}

install() {
  local stamp=$home/.stamp want
  command -v java >/dev/null || die "java not found (Kafka $version needs Java 17+)"
  # The archive is only valid for the JVM that wrote it: a JDK update redoes the install.
  want=$( (cat "$pom"; jvm_id) | sha256sum | cut -c1-16)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  command -v mvn >/dev/null || die "mvn not found"
  mkdir -p "$home"
  # Parallel test runs may all call install: one does the work, the others wait, then see the stamp.
  exec 9>"$home/.lock"
  flock 9
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    # After a JDK update only the archive is redone: jars under a running broker stay put.
    local pom_sha; pom_sha=$(sha256sum "$pom" | cut -c1-16)
    [ "$(cat "$libs/.pom-sha" 2>/dev/null)" = "$pom_sha" ] || fetch_jars "$pom_sha"
    train_cds
    echo "$want" >"$stamp"
  fi
  exec 9>&-
}

fetch_jars() {
  log "fetching Kafka $version jars into $libs"
  rm -rf "$libs.tmp"
  # Maven's output goes to a file (it prints colour codes even with -B -q); shown on failure.
  mvn -B -q -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$libs.tmp" >"$home/install.log" 2>&1 ||
    { cat "$home/install.log" >&2; die "mvn failed to fetch the Kafka jars"; }
  echo "$1" >"$libs.tmp/.pom-sha"
  # Swap in whole so a half-copied folder is never used.
  rm -rf "$libs" && mv "$libs.tmp" "$libs"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# One throwaway broker run that formats, starts, serves a topic, a producer and a consumer group,
# and dumps the classes it loaded when it stops. Best effort: without it Kafka only starts slower.
train_cds() {
  local dir=$home/cds-train port cport ok=1
  log "building the class-data archive (one broker run, ~30 s)"
  rm -rf "$dir" "$jsa" "$jsa.tmp"
  port=$(free_port) && cport=$(free_port) || return 0
  # A subshell, so that a failed start (die) ends only this step.
  if (SP_KAFKA_HOST=127.0.0.1 SP_KAFKA_JVM_OPTS="-XX:ArchiveClassesAtExit=$jsa.tmp" start_broker "$dir" "$port" "$cport" \
    >/dev/null); then
    # The clients only widen the archive: their failure still leaves a useful one.
    train_clients "127.0.0.1:$port" >"$home/train.out" 2>&1 ||
      log "training clients failed (see $home/train.out); archive covers start-up only"
  else
    ok=0
  fi
  (stop "$dir") || ok=0
  if [ "$ok" = 1 ] && [ -s "$jsa.tmp" ]; then
    mv -f "$jsa.tmp" "$jsa"
    rm -rf "$dir"
  else
    log "class-data archive not built (see $dir/logs); Kafka will start without it"
    rm -f "$jsa.tmp"
  fi
}

train_clients() {
  local bootstrap=$1
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
    --topic train --partitions 6 --replication-factor 1
  run_tool org.apache.kafka.tools.ProducerPerformance --topic train --num-records 20000 \
    --record-size 100 --throughput -1 --command-property bootstrap.servers="$bootstrap" acks=all
  run_tool org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bootstrap" \
    --topic train --num-records 20000 --group train
}

# run-class: the perf tools measure throughput, so they get the full JIT and a larger heap.
run_class() {
  [ $# -ge 1 ] || die "usage: kafka.sh run-class CLASS [ARGS...]"
  install
  local opts; mapfile -t opts < <(tool_jvm)
  exec java -Xmx512m "${opts[@]}" -cp "$libs/*" "$@"
}

# ---------------------------------------------------------------- broker state in DIR

# DIR as an absolute, symlink-free path: the form written into the broker's command line.
abs_dir() { if [ -d "$1" ]; then (cd "$1" && pwd -P); else echo "$1"; fi; }

# True if DIR/kafka.pid names a live process that is the broker of this DIR (not a reused pid,
# not a zombie left for a parent that is not us).
broker_pid() {
  local dir=$1 pid state
  [ -f "$dir/kafka.pid" ] || return 1
  pid=$(cat "$dir/kafka.pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$dir/server.properties"
}

# A value from DIR/server.properties; empty when DIR has none yet.
prop() { [ ! -f "$1/server.properties" ] || sed -n "s/^$2=//p" "$1/server.properties" | tail -1; }
broker_port() { prop "$1" listeners | sed -n 's/.*PLAINTEXT:\/\/[^,]*:\([0-9]*\).*/\1/p'; }
broker_host() { prop "$1" listeners | sed -n 's/.*PLAINTEXT:\/\/\([^,:]*\):.*/\1/p'; }
controller_port() { prop "$1" controller.quorum.voters | sed -n 's/.*:\([0-9]*\)$/\1/p'; }

write_config() {
  local dir=$1 port=$2 cport=$3 host=$4
  # Static voters (not --standalone): the controller port is then config, not formatted-in state,
  # so a restart on another port still finds its quorum.
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh on each start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://$host:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data

# One node: every internal topic has one replica.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Fewer internal partitions (default 50): the first consumer group and transaction come up faster.
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6

# Topics: tests create theirs explicitly; auto-create stays on for ad-hoc use.
num.partitions=6
auto.create.topics.enable=true
# No 3 s wait for more members before the first rebalance.
group.initial.rebalance.delay.ms=0

# Sized for a 2-core machine running a pipeline beside the broker: more threads than cores only
# switch more (A/B in one run, make bench BASELINE=HEAD, 3 rounds each, against 2 and 4: p99 at
# 70% of saturation 17.7 vs 22.7 ms and 28.3 vs 36.7 ms at 200 connections, saturation p99
# 9.8 vs 12.2 and 12.0 vs 20.8 ms, broker CPU per sale 0.93x).
num.network.threads=1
num.io.threads=2
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
# The compaction map is allocated on the heap at start (128 MiB by default).
log.cleaner.dedupe.buffer.size=16777216
# Big enough not to roll during a bench run: rolling every few seconds (16 MiB) lengthened
# the tail at saturation.
log.segment.bytes=268435456
log.retention.hours=24
# Unfencing waits for a heartbeat: beat faster so the broker serves clients sooner after start.
broker.heartbeat.interval.ms=500
# After a SIGKILL the restarted controller refuses the broker's new registration until the old
# session expires (default 9 s); 4 s is still 8 missed heartbeats.
broker.session.timeout.ms=4000
EOF
}

new_cluster_id() {
  # A Kafka Uuid is 16 random bytes in URL-safe base64 without padding; like Kafka, avoid a
  # leading '-' that a command line would read as an option.
  local id
  while id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); [ "${id:0:1}" = - ]; do :; done
  echo "$id"
}

# Formatting writes meta.properties and the bootstrap metadata: done once, so restarts keep data.
format_once() {
  local dir=$1
  [ -f "$dir/data/meta.properties" ] && return 0
  run_tool kafka.tools.StorageTool format -t "$(new_cluster_id)" -c "$dir/server.properties" \
    >"$dir/logs/format.out" 2>&1 || { cat "$dir/logs/format.out" >&2; die "storage format failed"; }
}

broker_jvm() {
  local heap extra
  read -ra heap <<<"${SP_KAFKA_HEAP:--Xms256m -Xmx512m}"
  read -ra extra <<<"${SP_KAFKA_JVM_OPTS:-}"
  # Serial GC: on 2 cores G1's concurrent threads compete with the pipeline for little gain at
  # this heap size; a collector named in SP_KAFKA_JVM_OPTS replaces it (the JVM refuses two).
  # C1 only: ~40% less CPU to reach ready, and no slower in our perf runs (C2's compile threads
  # compete for the same 2 cores).
  local gc=-XX:+UseSerialGC w
  for w in "${extra[@]}"; do [[ $w == -XX:+Use*GC ]] && gc=; done
  printf '%s\n' "${heap[@]}" ${gc:+"$gc"} -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true -Dkafka.logs.dir="$1/logs" -Dlog4j2.configurationFile="$log4j_conf"
  cds_opts
  # Last, so that they override ours.
  [ ${#extra[@]} -eq 0 ] || printf '%s\n' "${extra[@]}"
}

launch() {
  local dir=$1 opts
  mapfile -t opts < <(broker_jvm "$dir")
  # A fresh server.log per launch: old lines must not be mistaken for this run's.
  [ -f "$dir/logs/server.log" ] && mv -f "$dir/logs/server.log" "$dir/logs/server.log.prev"
  # setsid: a Ctrl-C meant for the caller does not kill the broker mid-write; stop/kill by pid do.
  # The child writes its own pid, then becomes java, so the pid file names the JVM itself.
  (cd "$dir" && exec setsid bash -c 'echo $$ >kafka.pid; exec "$@"' kafka \
    java "${opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/logs/kafka.out" 2>&1 &)
  local _
  for _ in $(seq 100); do [ -s "$dir/kafka.pid" ] && return 0; sleep 0.05; done
  die "broker process did not start (see $dir/logs/kafka.out)"
}

# True when the broker on PORT is the one of CLUSTER_ID and lists itself in a Metadata response,
# i.e. it is registered and unfenced: only then can clients produce and topics be created. The
# cluster id check keeps another broker that holds the port from passing for ours. Metadata v4
# (served by Kafka 1.0 up to 4.x) has a fixed, non-flexible layout: a stdlib socket does, with
# no JVM start per poll.
metadata_ready() {
  python3 - "$1" "$2" "$3" <<'PY'
import socket, struct, sys

def string(buf, off):
    n = struct.unpack_from(">h", buf, off)[0]
    return (None, off + 2) if n < 0 else (buf[off + 2:off + 2 + n].decode(), off + 2 + n)

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf

try:
    host, port, cluster_id = sys.argv[3], int(sys.argv[1]), sys.argv[2]
    s = socket.create_connection((host, port), timeout=2)
    s.settimeout(2)
    client = b"kafka.sh"
    # header v1: api_key 3 (Metadata), version 4, correlation id 1, client id;
    # body: topics = [] (brokers only), allow_auto_topic_creation = false
    req = struct.pack(">hhih", 3, 4, 1, len(client)) + client + struct.pack(">ib", 0, 0)
    s.sendall(struct.pack(">i", len(req)) + req)
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    buf = recv_exact(s, size)
    # correlation id, throttle_time_ms, then the (unfenced) brokers, then the cluster id
    corr, _, nbrokers = struct.unpack_from(">iii", buf, 0)
    off = 12
    for _ in range(nbrokers):
        off += 4                      # node_id
        _, off = string(buf, off)     # host
        off += 4                      # port
        _, off = string(buf, off)     # rack
    got, _ = string(buf, off)
    sys.exit(0 if corr == 1 and nbrokers > 0 and got == cluster_id else 1)
except Exception:
    sys.exit(1)
PY
}

wait_ready() {
  local dir=$1 port=$2 host=$3 limit=${SP_KAFKA_READY_TIMEOUT:-90} cluster_id
  local deadline=$((SECONDS + limit))
  cluster_id=$(sed -n 's/^cluster.id=//p' "$dir/data/meta.properties")
  until metadata_ready "$port" "$cluster_id" "$host"; do
    if ! broker_pid "$dir"; then
      # The JVM's own complaints land in kafka.out, Kafka's reasons in server.log.
      tail -n 10 "$dir/logs/kafka.out" >&2 2>/dev/null || true
      grep -m 5 -E '^\[[^]]*\] (ERROR|FATAL)' "$dir/logs/server.log" | cut -c1-400 >&2 || true
      grep -m 3 -E '^Caused by' "$dir/logs/server.log" | tail -n 1 >&2 || true
      die "broker in $dir exited during start"
    fi
    [ $SECONDS -lt "$deadline" ] || die "broker in $dir not ready after ${limit}s (see $dir/logs)"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- subcommands

start() {
  { [ $# -ge 2 ] && [ $# -le 3 ]; } || die "usage: kafka.sh start DIR PORT [CONTROLLER_PORT]"
  install
  start_broker "$@"
}

start_broker() {
  local dir port=$2 cport host=${SP_KAFKA_HOST:-127.0.0.1}
  mkdir -p "$1"
  dir=$(abs_dir "$1")
  if broker_pid "$dir"; then
    local running; running=$(broker_host "$dir"):$(broker_port "$dir")
    [ "$running" = "$host:$port" ] || die "broker in $dir already runs on $running, not $host:$port"
    wait_ready "$dir" "$port" "$host"
    echo "$host:$port"
    return 0
  fi
  cport=${3:-$(controller_port "$dir")}
  cport=${cport:-$((port + 1))}
  mkdir -p "$dir/logs" "$dir/data"
  rm -f "$dir/kafka.pid"
  write_config "$dir" "$port" "$cport" "$host"
  format_once "$dir"
  launch "$dir"
  wait_ready "$dir" "$port" "$host"
  echo "$host:$port"
}

wait_gone() {
  local dir=$1 deadline=$((SECONDS + $2))
  while broker_pid "$dir"; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

stop() {
  [ $# -eq 1 ] || die "usage: kafka.sh stop DIR"
  local dir; dir=$(abs_dir "$1")
  broker_pid "$dir" || { rm -f "$dir/kafka.pid"; return 0; }
  kill -TERM "$(cat "$dir/kafka.pid")" 2>/dev/null || true
  # SIGTERM runs a controlled shutdown that flushes the logs: about a second normally.
  if ! wait_gone "$dir" "${SP_KAFKA_STOP_TIMEOUT:-60}"; then
    log "broker in $dir ignored SIGTERM; sending SIGKILL"
    kill -KILL "$(cat "$dir/kafka.pid")" 2>/dev/null || true
    wait_gone "$dir" 10 || die "broker in $dir survived SIGKILL"
  fi
  rm -f "$dir/kafka.pid"
}

kill_broker() {
  [ $# -eq 1 ] || die "usage: kafka.sh kill DIR"
  local dir; dir=$(abs_dir "$1")
  broker_pid "$dir" || { rm -f "$dir/kafka.pid"; return 0; }
  kill -KILL "$(cat "$dir/kafka.pid")" 2>/dev/null || true
  wait_gone "$dir" 10 || die "broker in $dir survived SIGKILL"
  rm -f "$dir/kafka.pid"
}

status() {
  [ $# -eq 1 ] || die "usage: kafka.sh status DIR"
  local dir; dir=$(abs_dir "$1")
  broker_pid "$dir" || { log "no broker running in $dir"; return 1; }
  echo "$(broker_host "$dir"):$(broker_port "$dir")"
}

create_topic() {
  [ $# -eq 3 ] || die "usage: kafka.sh create-topic BOOTSTRAP|DIR NAME PARTITIONS"
  local bootstrap=$1
  [ -f "$1/server.properties" ] && bootstrap=$(broker_host "$1"):$(broker_port "$1")
  install
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
    --if-not-exists --topic "$2" --partitions "$3" --replication-factor 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) install ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  kill) kill_broker "$@" ;;
  status) status "$@" ;;
  create-topic) create_topic "$@" ;;
  run-class) run_class "$@" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2; exit 2 ;;
esac
