#!/usr/bin/env bash
# make hpa-demo: the api's HPA for real on a local node under Locust (tests/e2e/hpa_demo.py):
# 1 -> 3 api pods under the load, back to 1 after it; writes docs/report/hpa.csv, hpa.png,
# hpa.md, hpa.json and hpa_pods.csv (SP_HPA_OUT to write elsewhere). About 6 to 7 minutes. Not
# part of `make test` (README.md, "make hpa-demo"). Settings: SP_HPA_PEAK_USERS (30 users,
# 10 sales/s each at most), SP_HPA_RAMP_SECONDS (60), SP_HPA_PLATEAU_SECONDS (150),
# SP_HPA_COOLDOWN_SECONDS (240: the longest wait for the way back to 1 pod),
# SP_HPA_SAMPLE_SECONDS (5). One node per machine: it fails at once if another runs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export SP_BIN_DIR=${SP_BIN_DIR:-$top/build/bin}
state=$top/build/hpa-demo/node

# The demo brings its node down itself, also on SIGTERM/SIGINT; this catches a demo that was
# killed outright: if the machine's node is still this demo's, it goes down here.
node_down() {
  if [ "$(scripts/cluster.sh owner)" = "$state" ]; then
    echo "[hpa-demo] bringing the demo's node down" >&2
    SP_CLUSTER_DIR=$state scripts/cluster.sh down > /dev/null || true
  fi
}
trap node_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

status=0
.venv/bin/python tests/e2e/hpa_demo.py "$@" || status=$?
exit "$status"
