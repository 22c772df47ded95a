#!/usr/bin/env bash
# make e2e-k8s: the pipeline for real on a local node (tests/e2e/test_e2e_k8s.py, the same test
# `make test` runs): a cluster with its node, the local registry with the images, the operator
# installed from manifests/, the sample SalesPipeline on the local stack's Kafka and Valkey,
# 3,000 sales with faults, every 2xx counted once; then everything is torn down. Exits non-zero
# with pytest's report of the reason on any failure.
#   scripts/e2e-k8s.sh [pytest args...]
# One node per machine: it fails at once if another runs (scripts/cluster.sh says whose).
# SP_TEST_NODE_DIR=<state folder of a node that is up> uses that one and leaves it up.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export SP_BIN_DIR=${SP_BIN_DIR:-$top/build/bin}
start=$SECONDS
status=0
.venv/bin/python -m pytest -p no:cacheprovider -s -o log_cli=false tests/e2e "$@" || status=$?
if [ "$status" = 0 ]; then
  echo "[e2e-k8s] passed in $((SECONDS - start)) s"
else
  echo "[e2e-k8s] FAILED ($status) after $((SECONDS - start)) s: see the report above" >&2
fi
exit "$status"
