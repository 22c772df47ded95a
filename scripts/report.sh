#!/usr/bin/env bash
# `make report`: the measurements of the technical report (docs/informe.md) on this machine.
# Starts the local stack (scripts/local.sh) once per scenario, on its own ports, drives it with
# wrk (scripts/bench/wrk-sales.lua), and writes CSV files, Markdown tables and PNG plots into
# docs/report/, then copies the tables into docs/informe.md between their markers.
#
#   scripts/report.sh                 every scenario, then the tables and plots (~10-15 min)
#   scripts/report.sh kafka           one scenario (kafka, valkey, hops, writers), then render
#   scripts/report.sh render          only the tables and plots, from the CSV files there
#
# SP_REPORT_SECONDS (each wrk run, default 5), SP_REPORT_LOADS (wrk connections, "1 16 64"),
# SP_REPORT_OUT (default docs/report), SP_PORT_BASE (default: a free range), SP_BIN_DIR (build/bin).
# Not part of `make test` (tests/report/ runs one scenario at a tiny size there).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
for b in api bridge writer consumer salesctl; do
  [ -x "${SP_BIN_DIR:-build/bin}/$b" ] || { echo "report: ${SP_BIN_DIR:-build/bin}/$b missing: run make" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "report: wrk missing: scripts/deps.sh base" >&2; exit 1; }
exec .venv/bin/python scripts/report/report.py "$@"
