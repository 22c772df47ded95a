#!/usr/bin/env bash
# Installs what a SalesPipeline runs on, into a GKE cluster (the current kubectl context):
# NGINX Ingress, Strimzi, KubeVirt (on a node pool with nested virtualization), Prometheus
# and Grafana, then the salespipeline operator. Runs on the user's machine against their cloud,
# so it downloads charts and manifests. Idempotent: every step is an upgrade-or-install.
#
#   CLUSTER=blackfriday ZONE=us-central1-a manifests/install/gke.sh
#
# Variables (defaults in brackets): CLUSTER [blackfriday], ZONE [us-central1-a],
# KUBEVIRT_VERSION [v1.7.1], STRIMZI_VERSION [1.2.0], VM_POOL_MACHINE [n2-standard-4],
# VM_POOL_NODES [2], SKIP_POOL [unset: create the KubeVirt node pool].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CLUSTER=${CLUSTER:-blackfriday}
ZONE=${ZONE:-us-central1-a}
KUBEVIRT_VERSION=${KUBEVIRT_VERSION:-v1.7.1}
STRIMZI_VERSION=${STRIMZI_VERSION:-1.2.0}
VM_POOL_MACHINE=${VM_POOL_MACHINE:-n2-standard-4}
VM_POOL_NODES=${VM_POOL_NODES:-2}

step() { printf '\n== %s\n' "$*"; }

step "Helm repositories"
helm repo add ingress-nginx https://kubernetes.github.io/ingress-nginx >/dev/null
helm repo add grafana https://grafana.github.io/helm-charts >/dev/null
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update >/dev/null

step "NGINX Ingress Controller"
helm upgrade --install ingress-nginx ingress-nginx/ingress-nginx -n ingress-nginx \
  --create-namespace -f "$here/../helm/ingress-nginx-values.yaml" --wait

step "Strimzi $STRIMZI_VERSION (kafka.strimzi.io/v1)"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" -n strimzi --create-namespace \
  -f "$here/../helm/strimzi-values.yaml" --wait

step "KubeVirt $KUBEVIRT_VERSION"
# The Valkey VMs want /dev/kvm: a node pool of Intel N2 machines with nested virtualization on
# Ubuntu nodes. Without it (SKIP_POOL=1 and no such nodes) KubeVirt falls back to emulation.
emulation=false
if [ -z "${SKIP_POOL:-}" ]; then
  if ! gcloud container node-pools describe kubevirt --cluster "$CLUSTER" --zone "$ZONE" >/dev/null 2>&1; then
    gcloud container node-pools create kubevirt --cluster "$CLUSTER" --zone "$ZONE" \
      --machine-type "$VM_POOL_MACHINE" --num-nodes "$VM_POOL_NODES" \
      --image-type UBUNTU_CONTAINERD --enable-nested-virtualization \
      --node-labels kubevirt.io/schedulable=true
  fi
else
  emulation=true
fi
kubectl apply -f "https://github.com/kubevirt/kubevirt/releases/download/${KUBEVIRT_VERSION}/kubevirt-operator.yaml"
sed "s/useEmulation: false/useEmulation: ${emulation}/" "$here/kubevirt-cr.yaml" | kubectl apply -f -
kubectl -n kubevirt wait kv kubevirt --for condition=Available --timeout=15m

step "Prometheus and Grafana (namespace monitoring)"
helm upgrade --install prometheus prometheus-community/prometheus -n monitoring \
  --create-namespace -f "$here/../helm/prometheus-values.yaml" --wait
helm upgrade --install grafana grafana/grafana -n monitoring \
  -f "$here/../helm/grafana-values.yaml" --wait

step "The salespipeline operator (CRD, RBAC, Deployment)"
kubectl apply -k "$top/manifests"
kubectl -n salespipeline-system rollout status deploy/salespipeline-operator --timeout=5m

cat <<MSG

Done. Next:
  kubectl apply -f $top/manifests/sample-salespipeline.yaml
  kubectl get sp -n blackfriday -w            # Ready, API (the Ingress address), Age
  kubectl get kafka,kafkanodepool,kafkatopic,vm,vmi -n blackfriday
Grafana: http://<ingress address>/grafana (user admin; password:
  kubectl -n monitoring get secret grafana -o jsonpath='{.data.admin-password}' | base64 -d)
MSG
