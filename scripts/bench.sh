#!/usr/bin/env bash
# `make bench`: measurements, never assertions. Drives the local stack (local.sh) with wrk and
# writes build/bench/results-<time>.md (and the raw rows, rows-<time>.jsonl): accepted sales/s,
# p50/p99, CPU microseconds per accepted sale by process and for the whole machine (wrk
# included), peak RSS by process, sales per batch (api -> bridge -> writer) and records per
# Kafka record batch (the broker's segments, after the saturation run), for
#   - saturation: wrk -t2 -c64, closed loop;
#   - 70% of that round's saturation rate, open loop (scripts/bench/wrk-sales.lua) over 100
#     connections, with the offered rate, how well wrk kept to its schedule, and p50/p99 both
#     from each send (wrk's) and from when each sale was due (X-Request-Id sent back);
# then the consumer alone and the operator's reconcile of 100 pipelines.
#
# BASELINE=<rev> (or SP_BENCH_BASELINE; `make bench-compare` = 25d93d3): A/B mode. The commit is
# exported (git archive) into build/bench/baseline-<sha>/ and built there once; then baseline and
# working tree are measured ALTERNATELY (B A B A ...), each round on a fresh stack started by its
# own checkout's scripts (so each runs with its own Kafka settings), with the same wrk load; the
# results give each round, the medians and the ratios new/baseline. Flame graphs of api, bridge,
# writer-a and the broker for both go to build/bench/flame-<time>/.
#
#   SP_BENCH_SECONDS   length of each measured wrk run (default 20)
#   SP_BENCH_ROUNDS    rounds per variant (default 1, A/B mode 3)
#   SP_BENCH_SECTIONS  what to run (default "chain consumer operator"; A/B mode "chain flame")
#   SP_BENCH_NEW_ENV, SP_BENCH_BASE_ENV   extra VAR=value words for the stack of each variant,
#                      e.g. SP_BENCH_NEW_ENV="KAFKA_LINGER_MS=10 SP_KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=4"
#                      with BASELINE=HEAD compares settings on the same code
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=scripts/bench/lib.sh
. scripts/bench/lib.sh
out_dir=$top/build/bench
mkdir -p "$out_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=$out_dir/results-$stamp.md
rows=$out_dir/rows-$stamp.jsonl
flames=$out_dir/flame-$stamp
seconds=${SP_BENCH_SECONDS:-20}
baseline=${BASELINE:-${SP_BENCH_BASELINE:-}}
port_base=${SP_PORT_BASE:-27000}
# Open loop needs free connections when a send is due, even through a stall; each one's first
# sale goes out at once at the start (wrk), so not many more than that.
paced_conns=${SP_BENCH_PACED_CONNECTIONS:-100}
if [ -n "$baseline" ]; then
  rounds=${SP_BENCH_ROUNDS:-3} sections=${SP_BENCH_SECTIONS:-chain flame}
else
  rounds=${SP_BENCH_ROUNDS:-1} sections=${SP_BENCH_SECTIONS:-chain consumer operator}
fi
state=$out_dir/stack
current_tree=

has_section() { [[ " $sections " == *" $1 "* ]]; }

cleanup() { [ -z "$current_tree" ] || bench_stack_down "$current_tree" "$state"; }
trap cleanup EXIT

# The baseline checkout, built once: build/bench/baseline-<sha>.
baseline_tree() {
  local sha dir
  sha=$(git rev-parse --verify "$baseline^{commit}") || { bench_log "unknown revision $baseline"; exit 2; }
  dir=$out_dir/baseline-${sha:0:12}
  if [ ! -f "$dir/.built" ]; then
    bench_log "exporting $baseline ($sha) into $dir and building it"
    rm -rf "$dir" && mkdir -p "$dir"
    git archive "$sha" | tar -x -C "$dir"
    make -C "$dir" -j2 bins >"$dir.build.log" 2>&1 || { tail -n 30 "$dir.build.log" >&2; exit 1; }
    echo "$sha" >"$dir/.built"
  fi
  echo "$dir"
}

# stack_up TREE [VAR=value...]: a fresh stack of TREE, with that extra environment.
stack_up() {
  current_tree=$1
  (
    shift
    # shellcheck disable=SC2163
    for kv in "$@"; do export "$kv"; done
    bench_stack_up "$current_tree" "$state" "$port_base"
  )
  bench_log "warm-up: 5 s (broker JIT, first connections of every hop)"
  bench_wrk "$(bench_api_url "$state")" 64 5 >/dev/null
}
stack_down() { bench_stack_down "$current_tree" "$state"; current_tree=; }

# chain_round VARIANT TREE ROUND: saturation, then 70% of it open loop; rows to $rows.
chain_round() {
  local variant=$1 tree=$2 round=$3 url sat rate
  # shellcheck disable=SC2086
  stack_up "$tree" ${variant_env[$variant]}
  url=$(bench_api_url "$state")
  bench_log "$variant round $round: saturation, wrk -t$BENCH_WRK_THREADS -c64 -d${seconds}s (load $(cut -d' ' -f1 /proc/loadavg))"
  sat=$(bench_wrk_row "$state" "$url" 64 "$seconds")
  # The broker's record batches so far: the warm-up's and the saturation run's.
  echo "$sat" | python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(variant=sys.argv[1], row="saturation", round=int(sys.argv[2])); r.update((k, float(v)) for k, _, v in (w.partition("=") for w in sys.argv[3].split())); print(json.dumps(r, sort_keys=True))' "$variant" "$round" "$(bench_kafka_batches "$state")" >>"$rows"
  rate=$(echo "$sat" | python3 -c 'import json,sys; print(int(0.7 * json.load(sys.stdin)["accepted_per_s"]))')
  bench_log "$variant round $round: open loop at $rate sales/s (70%)"
  bench_wrk_row "$state" "$url" "$paced_conns" "$seconds" "$rate" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(variant=sys.argv[1], row="paced70", round=int(sys.argv[2])); print(json.dumps(r, sort_keys=True))' "$variant" "$round" >>"$rows"
  stack_down
}

# flame VARIANT TREE: a stack whose broker keeps frame pointers, saturated while perf samples.
flame() {
  local variant=$1 tree=$2 url wrk_pid
  # shellcheck disable=SC2086
  SP_KAFKA_JVM_OPTS="${SP_KAFKA_JVM_OPTS:-} -XX:+PreserveFramePointer" stack_up "$tree" ${variant_env[$variant]}
  url=$(bench_api_url "$state")
  bench_log "$variant: perf profiles under saturation"
  bench_wrk "$url" 64 $((seconds + 4)) >/dev/null &
  wrk_pid=$!
  sleep 2
  bench_flame "$state" "$seconds" "$flames" "$variant"
  wait "$wrk_pid" || true
  stack_down
}

{
  echo "# salespipeline bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load generator (wrk) on the same cores."
  echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other engineers share the machine)."
  echo "Chain: wrk -> api -> bridge -> writer-a + writer-b x2 (round robin) -> Kafka (1 broker) -> consumer -> Valkey."
  echo "Working tree: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + uncommitted changes')."
} >"$results"

variants=(new)
declare -A tree=([new]=$top)
declare -A variant_env=([new]=${SP_BENCH_NEW_ENV:-} [base]=${SP_BENCH_BASE_ENV:-})
if [ -n "$baseline" ]; then
  tree[base]=$(baseline_tree)
  variants=(base new)
  echo "Baseline: $baseline ($(cat "${tree[base]}/.built")), built in ${tree[base]}; measured alternately with the working tree." >>"$results"
fi
for v in "${variants[@]}"; do
  [ -z "${variant_env[$v]}" ] || echo "Extra environment of $v: \`${variant_env[$v]}\`." >>"$results"
done
make -j2 bins >/dev/null

if has_section chain; then
  for round in $(seq "$rounds"); do
    for v in "${variants[@]}"; do chain_round "$v" "${tree[$v]}" "$round"; done
  done
  python3 scripts/bench/report.py "$rows" "$seconds" >>"$results"
fi

if has_section flame; then
  for v in "${variants[@]}"; do flame "$v" "${tree[$v]}"; done
  {
    printf '\n### Flame graphs (perf, %s s under saturation)\n\n' "$seconds"
    for v in "${variants[@]}"; do
      for part in api bridge writer-a kafka; do
        [ -s "$flames/$v-$part.folded" ] || continue
        printf -- '- %s %s: `%s` (%s)\n' "$v" "$part" "${flames#"$top"/}/$v-$part.svg" \
          "$(bench_split "$flames/$v-$part.folded")"
      done
    done
  } >>"$results"
fi

if has_section consumer; then
  stack_up "$top"
  # shellcheck disable=SC1091
  . "$state/env"
  # The stack's own consumer stops first so that only one writes.
  kill -TERM "$(bench_pid "$state" consumer)" 2>/dev/null || true
  bench_log "consumer: ${SP_BENCH_RECORDS:-200000} records, batches 100/500/2000, WAIT 0/1"
  {
    printf '\n### Consumer: pre-filled topic -> Valkey\n\n```\n'
    .venv/bin/python tests/consume/bench_consumer.py --bootstrap "$KAFKA_BROKERS" \
      --valkey-port "${VALKEY_URL##*:}" --replica-port "${VALKEY_REPLICA_URL##*:}" \
      --records "${SP_BENCH_RECORDS:-200000}" --batches 100,500,2000 --waits 0,1 --bin-dir build/bin
    printf '```\n'
  } >>"$results"
  stack_down
fi

if has_section operator; then
  bench_log "operator: 100 SalesPipelines from cold"
  {
    printf '\n### Operator: 100 SalesPipelines from cold\n\n```\n'
    .venv/bin/python tests/operator/bench_reconcile.py 100 1 2>&1 | tail -n 20
    printf '```\n'
  } >>"$results"
fi

cat "$results"
bench_log "written to $results (raw rows: $rows)"
