#!/usr/bin/env bash
# `make run`: the main job on one machine. Starts the pipeline (local.sh up), runs a headless
# Locust Black Friday scenario against the api, waits for the consumer to catch up, prints the
# Locust summary and the dashboard, and stops everything.
#   SP_RUN_SECONDS   length of the scenario (default 60)
#   SP_PEAK_USERS    Locust users at the spike (default 60)
#   SP_INVALID_SHARE share of invalid sales mixed in (default 0.02)
#   CARNET           student id; its last digit picks the dashboard's assigned category
#   CATALOG_ARTIFACT the product catalog's OCI artifact: the api and Locust pull it from the
#                    registry (with REGISTRY_AUTH_FILE, REGISTRY_CA: `. build/registry/env`)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export SP_LOCAL_DIR=${SP_LOCAL_DIR:-$top/build/local}
bin=${SP_BIN_DIR:-$top/build/bin}
seconds=${SP_RUN_SECONDS:-60}

log() { printf '\n[run] %s\n' "$*" >&2; }

scripts/local.sh up
trap 'scripts/local.sh down' EXIT
# shellcheck disable=SC1091
. "$SP_LOCAL_DIR/env"

if [ -n "${CATALOG_ARTIFACT:-}" ]; then
  log "catalog $CATALOG_ARTIFACT from the registry: the api has $(grep -o '[0-9]* products, layer sha256:[0-9a-f]*' "$SP_LOCAL_DIR/api.log" | head -n1); Locust pulls it too"
fi
summary=$SP_LOCAL_DIR/locust-summary.json
log "Black Friday scenario for ${seconds}s against $API_URL (Locust, headless)"
SP_SCENARIO=blackfriday SP_DURATION=$seconds SP_SUMMARY=$summary \
SP_INVALID_SHARE=${SP_INVALID_SHARE:-0.02} SP_PEAK_USERS=${SP_PEAK_USERS:-60} \
  .venv/bin/locust -f locust/locustfile.py --headless --host "$API_URL" \
  --csv "$SP_LOCAL_DIR/locust" --stop-timeout 30 --loglevel WARNING || true

accepted=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["accepted"])' "$summary")
log "Locust: $(cat "$summary"); waiting for the consumer to count all $accepted accepted sales"
deadline=$((SECONDS + 120))
total=0
while [ $SECONDS -lt $deadline ]; do
  total=$("$bin/salesctl" dashboard --json --valkey-url "$VALKEY_URL" |
    .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["total_sales"])')
  [ "$total" -ge "$accepted" ] && break
  sleep 0.5
done
log "dashboard (accepted by the api: $accepted, counted: $total)"
"$bin/salesctl" dashboard --valkey-url "$VALKEY_URL"
if [ "$total" != "$accepted" ]; then
  log "MISMATCH: $accepted sales accepted, $total counted"
  exit 1
fi
