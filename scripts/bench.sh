#!/usr/bin/env bash
# `make bench`: measurements, never assertions. Starts the local stack (local.sh) on its own
# ports, drives the api with wrk, measures the consumer alone and the operator's reconcile of
# 100 pipelines, and writes build/bench/results-<date>.md with sales/s,
# p50/p99 latency, CPU microseconds per sale and peak RSS of each process.
#   SP_BENCH_SECONDS  length of each wrk run (default 20)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out_dir=$top/build/bench
mkdir -p "$out_dir"
export SP_LOCAL_DIR=$out_dir/stack SP_PORT_BASE=${SP_PORT_BASE:-27000} LOG_LEVEL=warn
seconds=${SP_BENCH_SECONDS:-20}
results=$out_dir/results-$(date -u +%Y%m%dT%H%M%SZ).md
parts=(api bridge writer-a writer-b-1 writer-b-2 consumer valkey-primary valkey-replica kafka)

log() { printf '[bench] %s\n' "$*" >&2; }

scripts/local.sh down >/dev/null 2>&1 || true
scripts/local.sh up >/dev/null
trap 'scripts/local.sh down >/dev/null' EXIT
# shellcheck disable=SC1091
. "$SP_LOCAL_DIR/env"

pid_of() { if [ "$1" = kafka ]; then cat "$SP_LOCAL_DIR/kafka/kafka.pid"; else cat "$SP_LOCAL_DIR/$1.pid"; fi; }
# Busy CPU time of the whole machine (every core, every process, wrk included) in microseconds.
machine_busy_us() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.0f\n", ($2+$3+$4+$7+$8) * 1000000 / hz}' /proc/stat
}
# CPU time (user+system) of a process in microseconds.
# printf: mawk prints large numbers as 1.2e+11, which bc cannot read.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f\n", ($14 + $15) * 1000000 / hz}' "/proc/$1/stat"; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# run_wrk LABEL CONNECTIONS DELAY_MS: one wrk run, then one table row per process.
run_wrk() {
  local label=$1 conns=$2 delay=$3 line requests accepted secs p50 p99
  declare -A before
  for p in "${parts[@]}"; do before[$p]=$(cpu_us "$(pid_of "$p")"); done
  local busy_before; busy_before=$(machine_busy_us)
  log "$label: wrk -t2 -c$conns -d${seconds}s (delay ${delay} ms)"
  line=$(WRK_DELAY_MS=$delay wrk -t2 -c"$conns" -d"${seconds}s" --timeout 10s \
    -s scripts/bench/wrk-sales.lua "$API_URL" | grep '^RESULT')
  read -r requests accepted secs p50 p99 <<<"$(echo "$line" |
    sed -E 's/.*requests=([0-9]+) accepted=([0-9]+) seconds=([0-9.]+) p50_ms=([0-9.]+) p99_ms=([0-9.]+).*/\1 \2 \3 \4 \5/')"
  printf '\n### %s\n\nwrk -t2 -c%s -d%ss, pacing %s ms per request per connection\n\n' \
    "$label" "$conns" "$seconds" "$delay" >>"$results"
  printf '| requests | accepted (2xx) | accepted/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n' >>"$results"
  printf '| %s | %s | %.0f | %s | %s |\n\n' "$requests" "$accepted" \
    "$(echo "$accepted / $secs" | bc -l)" "$p50" "$p99" >>"$results"
  printf '| process | CPU us per accepted sale | peak RSS MB |\n|---|---|---|\n' >>"$results"
  for p in "${parts[@]}"; do
    local pid used
    pid=$(pid_of "$p")
    used=$(echo "$(cpu_us "$pid") - ${before[$p]}" | bc -l)
    printf '| %s | %.1f | %.1f |\n' "$p" "$(echo "$used / ($accepted + 0.000001)" | bc -l)" \
      "$(echo "$(peak_rss_kb "$pid") / 1024" | bc -l)" >>"$results"
  done
  printf '| whole machine (wrk and everything else included) | %.1f | |\n' \
    "$(echo "($(machine_busy_us) - $busy_before) / ($accepted + 0.000001)" | bc -l)" >>"$results"
}

{
  echo "# salespipeline bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load generator (wrk) on the same cores."
  echo "Chain: wrk -> api -> bridge -> writer-a + writer-b x2 (round robin) -> Kafka (1 broker) -> consumer -> Valkey."
} >"$results"

# Warm-up, not recorded: the broker's JIT and the first connections of every hop.
log "warm-up: 5 s"
WRK_DELAY_MS=0 wrk -t2 -c64 -d5s --timeout 10s -s scripts/bench/wrk-sales.lua "$API_URL" >/dev/null
run_wrk "Saturation" 64 0
run_wrk "Paced, about 5,000 sales/s offered" 50 10

# The consumer alone: a pre-filled topic drained into Valkey, per batch size, with and without
# WAIT for the replica. The stack's own consumer stops first so that only one writes.
kill -TERM "$(pid_of consumer)" 2>/dev/null || true
log "consumer: ${SP_BENCH_RECORDS:-200000} records, batches 100/500/2000, WAIT 0/1"
{
  printf '\n### Consumer: pre-filled topic -> Valkey\n\n```\n'
  .venv/bin/python tests/consume/bench_consumer.py --bootstrap "$KAFKA_BROKERS" \
    --valkey-port "${VALKEY_URL##*:}" --replica-port "${VALKEY_REPLICA_URL##*:}" \
    --records "${SP_BENCH_RECORDS:-200000}" --batches 100,500,2000 --waits 0,1 --bin-dir build/bin
  printf '```\n'
} >>"$results"

# The operator: reconcile of 100 SalesPipelines from cold on a control plane of its own.
log "operator: 100 SalesPipelines from cold"
{
  printf '\n### Operator: 100 SalesPipelines from cold\n\n```\n'
  .venv/bin/python tests/operator/bench_reconcile.py 100 1 2>&1 | tail -n 20
  printf '```\n'
} >>"$results"

cat "$results"
log "written to $results"
