# shellcheck shell=bash
# scripts/bench/lib.sh - the pieces of `make bench`, sourced by scripts/bench.sh and by any other
# harness that drives the local stack and wants CPU per sale by process:
#
#   . scripts/bench/lib.sh
#   bench_stack_up TREE STATE PORT_BASE        the local stack of checkout TREE (its scripts and
#                                              its build/bin), state in STATE
#   bench_wrk_row STATE URL CONNS SECONDS [RATE]   one wrk run; prints one JSON object: accepted/s,
#                                              p50/p99, CPU us per accepted sale by process and
#                                              for the whole machine, peak RSS by process, the
#                                              bridge's ProcesarLote calls and their sales
#   bench_stack_down TREE STATE
#   bench_kafka_batches STATE                  the record batches the broker holds for the topic
#   bench_flame STATE SECONDS OUT_DIR PREFIX   perf profiles of api, bridge, writer-a and the
#                                              broker while a load runs elsewhere, as SVG
#
# RATE empty or 0: closed loop (each connection sends its next sale when the last is answered).
# RATE > 0: open loop at RATE sales/s (scripts/bench/wrk-sales.lua), reported with the offered
# rate, the share of sales sent late, and latency from when each sale was due (due_p50_ms,
# due_p99_ms: the open-loop figures, a late send's wait included).
# Needs wrk, bc, python3; bench_flame needs perf and inferno (bench_inferno installs it).

BENCH_TOP=${BENCH_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BENCH_CACHE=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
BENCH_WRK_LUA=${BENCH_WRK_LUA:-$BENCH_TOP/scripts/bench/wrk-sales.lua}
BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-2}
BENCH_PARTS=(api bridge writer-a writer-b-1 writer-b-2 consumer valkey-primary valkey-replica kafka)
BENCH_INFERNO_VERSION=0.12.8

bench_log() { printf '[bench] %s\n' "$*" >&2; }

# Busy CPU time of the whole machine (every core, every process, wrk included), microseconds.
bench_machine_busy_us() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.0f\n", ($2+$3+$4+$7+$8) * 1000000 / hz}' /proc/stat
}
# CPU time (user+system) of a process, microseconds; printf because mawk prints 1.2e+11.
bench_cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f\n", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }
bench_peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
bench_pid() { if [ "$2" = kafka ]; then cat "$1/kafka/kafka.pid"; else cat "$1/$2.pid"; fi; }

# bench_stack_up TREE STATE PORT_BASE: TREE's own local.sh and kafka.sh with TREE's binaries, so
# that a baseline checkout runs with its own Kafka settings too. Extra environment (e.g.
# SP_KAFKA_JVM_OPTS) passes through.
bench_stack_up() {
  local tree=$1 state=$2 base=$3
  SP_LOCAL_DIR=$state SP_PORT_BASE=$base SP_BIN_DIR=$tree/build/bin LOG_LEVEL=warn \
    "$tree/scripts/local.sh" down >/dev/null 2>&1 || true
  SP_LOCAL_DIR=$state SP_PORT_BASE=$base SP_BIN_DIR=$tree/build/bin LOG_LEVEL=warn \
    "$tree/scripts/local.sh" up >/dev/null
}
bench_stack_down() {
  SP_LOCAL_DIR=$2 "$1/scripts/local.sh" down >/dev/null 2>&1 || true
}
bench_api_url() { (. "$1/env" && echo "$API_URL"); }
# bench_bridge_metric STATE NAME: a counter of the stack's bridge, empty when it has none (a
# baseline without it).
bench_bridge_metric() {
  curl -s --max-time 5 "$(. "$1/env" && echo "$BRIDGE_URL")/metrics" |
    awk -v n="$2" '$1 == n {printf "%.0f\n", $2}'
}

# bench_kafka_batches STATE: the record batches the broker holds for the stack's topic, as
# "kafka_batches=N kafka_records=M" (Kafka's own DumpLogSegments over the segment files).
bench_kafka_batches() {
  local topic files
  topic=$(. "$1/env" && echo "$KAFKA_TOPIC")
  files=$(ls "$1"/kafka/data/"$topic"-*/*.log 2>/dev/null | paste -sd, -)
  [ -n "$files" ] || return 0
  "$BENCH_TOP/scripts/kafka.sh" run-class org.apache.kafka.tools.DumpLogSegments --files "$files" 2>/dev/null |
    awk '$1 == "baseOffset:" { for (i = 1; i < NF; i++) if ($i == "count:") r += $(i + 1); n++ }
         END { printf "kafka_batches=%d kafka_records=%d\n", n, r }'
}

# bench_wrk URL CONNS SECONDS [RATE]: wrk's RESULT line as key=value words.
bench_wrk() {
  local url=$1 conns=$2 secs=$3 rate=${4:-0}
  WRK_RATE=$rate WRK_THREADS=$BENCH_WRK_THREADS wrk -t"$BENCH_WRK_THREADS" -c"$conns" \
    -d"${secs}s" --timeout 10s -s "$BENCH_WRK_LUA" "$url" | sed -n 's/^RESULT //p'
}

# bench_wrk_row STATE URL CONNS SECONDS [RATE]: one JSON object (see the top of this file).
bench_wrk_row() {
  local state=$1 url=$2 conns=$3 secs=$4 rate=${5:-0} p m result busy_before busy_after
  local batch_counters=(sp_bridge_writer_batches_total sp_bridge_writer_batch_sales_total)
  declare -A before pid batch_before
  for m in "${batch_counters[@]}"; do batch_before[$m]=$(bench_bridge_metric "$state" "$m"); done
  for p in "${BENCH_PARTS[@]}"; do
    pid[$p]=$(bench_pid "$state" "$p")
    before[$p]=$(bench_cpu_us "${pid[$p]}")
  done
  busy_before=$(bench_machine_busy_us)
  result=$(bench_wrk "$url" "$conns" "$secs" "$rate")
  busy_after=$(bench_machine_busy_us)
  {
    echo "conns=$conns seconds_asked=$secs rate_asked=$rate $result"
    # Batches api -> bridge, each one ProcesarLote call bridge -> writer (none in a baseline
    # without them).
    for m in "${batch_counters[@]}"; do
      [ -z "${batch_before[$m]}" ] || echo "$m=$(( $(bench_bridge_metric "$state" "$m") - ${batch_before[$m]} ))"
    done
    echo "load1=$(cut -d' ' -f1 /proc/loadavg)"
    for p in "${BENCH_PARTS[@]}"; do
      echo "cpu_us.$p=$(( $(bench_cpu_us "${pid[$p]}") - ${before[$p]} ))"
      echo "rss_kb.$p=$(bench_peak_rss_kb "${pid[$p]}")"
    done
    echo "cpu_us.machine=$((busy_after - busy_before))"
  } | python3 -c '
import json, sys
row = {}
for word in sys.stdin.read().split():
    k, _, v = word.partition("=")
    try:
        row[k] = float(v)
    except ValueError:
        row[k] = v
acc = row.get("accepted", 0) or 1e-9
row["accepted_per_s"] = row.get("accepted", 0) / row["seconds"]
row["offered_per_s"] = row.get("requests", 0) / row["seconds"]
for k in [k for k in row if k.startswith("cpu_us.")]:
    row["us_per_sale." + k[7:]] = row[k] / acc
print(json.dumps(row, sort_keys=True))'
}

# --- flame graphs ---

# Prints the folder holding inferno-collapse-perf and inferno-flamegraph (crates.io, pinned),
# built once into the shared cache (~3 min of CPU cold, a stat warm).
bench_inferno() {
  local out=$BENCH_CACHE/inferno-$BENCH_INFERNO_VERSION
  if [ ! -x "$out/bin/inferno-flamegraph" ]; then
    command -v cargo >/dev/null || { bench_log "cargo not found: no flame graphs"; return 1; }
    bench_log "building inferno $BENCH_INFERNO_VERSION from crates.io (first run only)"
    mkdir -p "$BENCH_CACHE"
    (
      flock 9
      [ -x "$out/bin/inferno-flamegraph" ] && exit 0
      rm -rf "$out.tmp"
      cargo install inferno --version "$BENCH_INFERNO_VERSION" --locked --no-default-features \
        --features cli,nameattr --root "$out.tmp" -j "${SP_BUILD_JOBS:-2}" >&2 &&
        rm -rf "$out" && mv "$out.tmp" "$out"
    ) 9>"$BENCH_CACHE/inferno-$BENCH_INFERNO_VERSION.lock" || return 1
  fi
  echo "$out/bin"
}

# bench_flame STATE SECONDS OUT_DIR PREFIX: while a load runs, samples api, bridge, writer-a
# (DWARF call graphs: Debian's libraries have no frame pointers) and the broker (frame pointers:
# start it with SP_KAFKA_JVM_OPTS=-XX:+PreserveFramePointer; JIT frames are named from the JVM's
# perf map, jcmd Compiler.perfmap) for SECONDS, and writes OUT_DIR/PREFIX-<part>.svg.
bench_flame() {
  local state=$1 secs=$2 out=$3 prefix=$4 inferno part pid kpid
  inferno=$(bench_inferno) || return 0
  mkdir -p "$out"
  local pids=()
  for part in api bridge writer-a; do pids+=("$(bench_pid "$state" "$part")"); done
  kpid=$(bench_pid "$state" kafka)
  perf record -q -F 199 --call-graph dwarf,16384 -p "$(IFS=,; echo "${pids[*]}")" \
    -o "$out/$prefix-workers.data" -- sleep "$secs" 2>/dev/null &
  local w=$!
  perf record -q -F 199 -g -p "$kpid" -o "$out/$prefix-kafka.data" -- sleep "$secs" 2>/dev/null &
  local k=$!
  wait "$w" "$k" || true
  jcmd "$kpid" Compiler.perfmap >/dev/null 2>&1 || bench_log "jcmd Compiler.perfmap failed: JIT frames unnamed"
  local i=0
  for part in api bridge writer-a; do
    perf script -i "$out/$prefix-workers.data" --pid "${pids[$i]}" 2>/dev/null |
      "$inferno/inferno-collapse-perf" --all 2>/dev/null >"$out/$prefix-$part.folded" || true
    i=$((i + 1))
  done
  perf script -i "$out/$prefix-kafka.data" 2>/dev/null |
    "$inferno/inferno-collapse-perf" --all 2>/dev/null >"$out/$prefix-kafka.folded" || true
  for part in api bridge writer-a kafka; do
    "$inferno/inferno-flamegraph" --title "$prefix $part" <"$out/$prefix-$part.folded" \
      >"$out/$prefix-$part.svg" 2>/dev/null || bench_log "no flame graph for $prefix $part"
  done
  rm -f "$out/$prefix-workers.data" "$out/$prefix-kafka.data" "/tmp/perf-$kpid.map"
}

# bench_split FOLDED: where a profile's samples are: the kernel, JIT-compiled Java (inferno marks
# frames _[k] and _[j]), or native code (ours, the libraries, the JVM's own).
bench_split() {
  awk '{ n = $NF; sub(/ [0-9]+$/, ""); k = split($0, f, ";"); leaf = f[k];
         if (leaf ~ /_\[k\]$/) kern += n; else if (leaf ~ /_\[j\]$/) jit += n; else nat += n }
       END { t = kern + jit + nat; if (!t) t = 1
             printf "kernel %.0f%%, JIT %.0f%%, native %.0f%%\n", 100*kern/t, 100*jit/t, 100*nat/t }' "$1"
}
