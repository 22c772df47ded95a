#!/usr/bin/env bash
# Runs the libFuzzer harnesses (build/fuzz/bin/*_fuzz, built by `make fuzz-bins`):
#   scripts/fuzz.sh SECONDS [NAME...]
# For each: first every committed input once (tests/fuzz/corpus/NAME and the crash reproducers
# of tests/fuzz/regressions/NAME: a failure there is a regression), then SECONDS of fuzzing
# from them. New inputs go to build/fuzz/corpus/NAME (kept between runs, never committed),
# a crash to build/fuzz/crashes/NAME-*; copy a fixed one into tests/fuzz/regressions/NAME/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
seconds=${1:?usage: scripts/fuzz.sh SECONDS [NAME...]}
shift
names=("$@")
if [ ${#names[@]} = 0 ]; then
  for b in build/fuzz/bin/*_fuzz; do names+=("$(basename "$b")"); done
fi
# UBSan: stop on the first finding (libFuzzer then saves the input); ASan: leaks count.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
failed=0
for name in "${names[@]}"; do
  bin=build/fuzz/bin/$name
  seeds=tests/fuzz/corpus/$name
  regressions=tests/fuzz/regressions/$name
  work=build/fuzz/corpus/$name
  mkdir -p "$work" build/fuzz/crashes "$regressions"
  dict=()
  [ -f "tests/fuzz/dict/$name.dict" ] && dict=(-dict="tests/fuzz/dict/$name.dict")
  common=(-timeout=10 -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="build/fuzz/crashes/$name-"
          "${dict[@]}")
  echo "== $name: committed inputs, then ${seconds}s"
  if ! "$bin" "${common[@]}" -runs=0 "$seeds" "$regressions" > "build/fuzz/$name.replay.log" 2>&1; then
    echo "$name: a committed input fails (build/fuzz/$name.replay.log):"; tail -30 "build/fuzz/$name.replay.log"
    failed=$((failed + 1)); continue
  fi
  if ! "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
       "$work" "$seeds" "$regressions" > "build/fuzz/$name.log" 2>&1; then
    echo "$name: FOUND A CRASH (build/fuzz/$name.log, input in build/fuzz/crashes/):"
    grep -A30 -m1 "ERROR\|property failed\|runtime error" "build/fuzz/$name.log" || tail -30 "build/fuzz/$name.log"
    failed=$((failed + 1)); continue
  fi
  grep -E "DONE|stat::number_of_executed_units" "build/fuzz/$name.log" \
    | tr '\n' ' ' | sed "s/^/$name: /"; echo
done
echo "fuzz: $((${#names[@]} - failed)) clean, $failed failed"
[ "$failed" = 0 ]
