#!/usr/bin/env bash
# The GKE side of the Zot VM kit (step 4 of README.md).
#
#   zot-vm/gke.sh nodes CLUSTER        the nodes trust the kit's CA for the registry: the CA
#                                      goes to Secret Manager (secret zot-ca), the nodes'
#                                      service account may read it, and the cluster's
#                                      containerd configuration names it for ZOT_IP:ZOT_PORT
#   zot-vm/gke.sh namespace NS...      in each namespace: Secret zot-pull (the puller's
#                                      credentials, kubernetes.io/dockerconfigjson) and
#                                      ConfigMap zot-ca (ca.crt), which a SalesPipeline names
#                                      as spec.imagePullSecret and spec.catalog.caConfigMap
#   DRY_RUN=1 ...                      prints the gcloud commands, and the Kubernetes objects
#                                      as YAML instead of applying them
#
# Environment: KIT [build/zot-vm] (render.sh's folder), PROJECT [gcloud's], CLUSTER_LOCATION
# [us-central1-a], KUBECTL [kubectl], NODE_SERVICE_ACCOUNT [the project's default compute one].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KIT=${KIT:-$here/../build/zot-vm}
KUBECTL=${KUBECTL:-kubectl}

log() { printf '[zot-vm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
run() { if [ "${DRY_RUN:-0}" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi; }

[ -f "$KIT/env" ] || die "no kit in $KIT: run zot-vm/render.sh first"
host=$(sed -n 's|^export REGISTRY=\([^/]*\)/.*|\1|p' "$KIT/env")

nodes() {
  local cluster=${1:?usage: gke.sh nodes CLUSTER}
  local project=${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}
  [ -n "$project" ] || die "set PROJECT"
  grep -q "projects/$project/" "$KIT/containerd-config.yaml" ||
    die "$KIT/containerd-config.yaml names another project: PROJECT=$project zot-vm/render.sh"
  local sa=${NODE_SERVICE_ACCOUNT:-}
  if [ -z "$sa" ]; then
    local number
    number=$(gcloud projects describe "$project" --format 'value(projectNumber)' 2>/dev/null || echo PROJECT_NUMBER)
    sa=$number-compute@developer.gserviceaccount.com
  fi
  log "the CA in Secret Manager as zot-ca (a new version if it exists)"
  if [ "${DRY_RUN:-0}" != 1 ] && gcloud secrets describe zot-ca --project "$project" > /dev/null 2>&1; then
    run gcloud secrets versions add zot-ca --project "$project" --data-file "$KIT/ca.crt"
  else
    run gcloud secrets create zot-ca --project "$project" --replication-policy automatic \
      --data-file "$KIT/ca.crt"
  fi
  log "the nodes' service account $sa may read it"
  run gcloud secrets add-iam-policy-binding zot-ca --project "$project" \
    --member "serviceAccount:$sa" --role roles/secretmanager.secretAccessor
  log "containerd on every node trusts it for $host (nodes pick it up as they are re-created)"
  run gcloud container clusters update "$cluster" --project "$project" \
    --location "${CLUSTER_LOCATION:-us-central1-a}" \
    --containerd-config-from-file "$KIT/containerd-config.yaml"
}

namespace_objects() { # ns: the Secret and the ConfigMap as YAML
  local ns=$1
  "$KUBECTL" create secret generic zot-pull --namespace "$ns" \
    --type kubernetes.io/dockerconfigjson \
    --from-file ".dockerconfigjson=$KIT/auth-puller.json" --dry-run=client -o yaml
  echo ---
  "$KUBECTL" create configmap zot-ca --namespace "$ns" --from-file "ca.crt=$KIT/ca.crt" \
    --dry-run=client -o yaml
}

namespaces() {
  [ $# -gt 0 ] || die "usage: gke.sh namespace NS..."
  local ns
  for ns in "$@"; do
    if [ "${DRY_RUN:-0}" = 1 ]; then
      namespace_objects "$ns"
      echo ---
    else
      log "namespace $ns: Secret zot-pull (puller) and ConfigMap zot-ca"
      namespace_objects "$ns" | "$KUBECTL" apply -f -
    fi
  done
}

case "${1:-}" in
  nodes) shift; nodes "$@" ;;
  namespace) shift; namespaces "$@" ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
