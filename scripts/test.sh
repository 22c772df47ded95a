#!/usr/bin/env bash
# Runs the unit tests (cmocka, normal and sanitizer builds), the fuzzers for a few seconds each
# (libFuzzer, build/fuzz/bin; scripts/fuzz.sh) and the integration tests (pytest, against real
# Kafka, Valkey and kube-apiserver, with the sanitizer-built workers).
#   scripts/test.sh          everything
#   scripts/test.sh unit     unit tests only
#   scripts/test.sh fuzz     the fuzzers only (SP_FUZZ_SECONDS each, default 12)
#   scripts/test.sh -k expr  integration tests matching a pytest expression
#   scripts/test.sh tests/consume [pytest options]  the integration tests under those paths
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

run_unit() {
  local failed=0 total=0 dir
  for dir in build/test build/asan/test; do
    [ -d "$dir" ] || continue
    for t in "$dir"/*_test; do
      [ -x "$t" ] || continue
      total=$((total + 1))
      echo "== $t"
      "$t" || failed=$((failed + 1))
    done
  done
  echo "unit: $((total - failed)) passed, $failed failed"
  [ "$failed" = 0 ]
}

run_fuzz() {
  if ! ls build/fuzz/bin/*_fuzz >/dev/null 2>&1; then
    echo "fuzz: no harness built (make fuzz-bins)"; return 1
  fi
  scripts/fuzz.sh "${SP_FUZZ_SECONDS:-12}"
}

# Every test under tests/, or only the paths given (tests/consume, a file, file::test).
run_integration() {
  export SP_BIN_DIR=${SP_BIN_DIR:-$top/build/asan/bin}
  local a where=(tests)
  for a in "$@"; do
    [[ $a != -* && -e ${a%%::*} ]] && where=() && break
  done
  .venv/bin/python -m pytest -p no:cacheprovider "${where[@]}" "$@"
}

case "${1:-all}" in
  unit) run_unit ;;
  fuzz) run_fuzz ;;
  all) run_unit; run_fuzz; run_integration ;;
  *) run_integration "$@" ;;
esac
