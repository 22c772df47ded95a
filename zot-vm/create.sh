#!/usr/bin/env bash
# Creates the Zot registry VM on GCP (step 2 of README.md): a static internal IP, a persistent
# disk for the images, a firewall rule that lets only the GKE cluster's nodes and pods reach
# port ZOT_PORT, and the VM itself booting the kit's cloud-init user data. Each piece that
# already exists is left as it is, so the script can be run again.
#
#   ZOT_IP=10.128.0.5 CLUSTER=blackfriday zot-vm/create.sh
#   DRY_RUN=1 ...   prints the gcloud commands instead of running them
#
# Environment (defaults in brackets):
#   PROJECT [gcloud's]  REGION [us-central1]  ZONE [us-central1-a]
#   NETWORK [default]   SUBNET [default]      VM [zot]   MACHINE [e2-small]   DISK_SIZE [30GB]
#   ZOT_IP              the static internal address, inside SUBNET's range (required)
#   ZOT_PORT [5000]
#   CLUSTER             the GKE cluster, to read its node and pod ranges, or give them directly:
#   NODE_RANGE POD_RANGE  (e.g. 10.128.0.0/20 and 10.4.0.0/14)
#   EXTRA_RANGES        more sources for the registry port, comma-separated (the machine that
#                       runs `make push`, if it is in the VPC)
#   ALLOW_IAP [0]       1: also admit Google's IAP range (35.235.240.0/20) on 22 and ZOT_PORT,
#                       for `gcloud compute ssh --tunnel-through-iap` and an IAP tunnel to push
#   NO_EXTERNAL_IP [0]  1: no external address (the VM then needs Cloud NAT to download Zot)
#   KIT [build/zot-vm]  the folder render.sh made (made now if missing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

log() { printf '[zot-vm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

run() { # the command, or with DRY_RUN its text
  if [ "${DRY_RUN:-0}" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}
exists() { # gcloud describe ...: whether it is there (with DRY_RUN: never)
  [ "${DRY_RUN:-0}" = 1 ] && return 1
  "$@" > /dev/null 2>&1
}

PROJECT=${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}
REGION=${REGION:-us-central1}
ZONE=${ZONE:-us-central1-a}
NETWORK=${NETWORK:-default}
SUBNET=${SUBNET:-default}
VM=${VM:-zot}
MACHINE=${MACHINE:-e2-small}
DISK_SIZE=${DISK_SIZE:-30GB}
ZOT_PORT=${ZOT_PORT:-5000}
KIT=${KIT:-$here/../build/zot-vm}

[ -n "$PROJECT" ] || die "set PROJECT (or gcloud config set project ...)"
[ -n "${ZOT_IP:-}" ] || die "set ZOT_IP to a free address of subnet $SUBNET (e.g. 10.128.0.5)"

# The sources the firewall rule admits: the cluster's node subnet and pod range.
if [ -z "${NODE_RANGE:-}" ] || [ -z "${POD_RANGE:-}" ]; then
  [ -n "${CLUSTER:-}" ] || die "set CLUSTER (a GKE cluster) or NODE_RANGE and POD_RANGE"
  node_subnet=$(gcloud container clusters describe "$CLUSTER" --project "$PROJECT" \
    --location "${CLUSTER_LOCATION:-$ZONE}" --format 'value(subnetwork)')
  NODE_RANGE=${NODE_RANGE:-$(gcloud compute networks subnets describe "$node_subnet" \
    --project "$PROJECT" --region "$REGION" --format 'value(ipCidrRange)')}
  POD_RANGE=${POD_RANGE:-$(gcloud container clusters describe "$CLUSTER" --project "$PROJECT" \
    --location "${CLUSTER_LOCATION:-$ZONE}" --format 'value(clusterIpv4Cidr)')}
fi
[[ $NODE_RANGE =~ ^[0-9.]+/[0-9]+$ && $POD_RANGE =~ ^[0-9.]+/[0-9]+$ ]] ||
  die "node range '$NODE_RANGE' or pod range '$POD_RANGE' is not a CIDR"

[ -f "$KIT/user-data.yaml" ] || ZOT_IP=$ZOT_IP ZOT_PORT=$ZOT_PORT PROJECT=$PROJECT "$here/render.sh" "$KIT"
grep -q "IP:$ZOT_IP" "$KIT/server.san" || die "$KIT was rendered for another address: ZOT_IP=$ZOT_IP $here/render.sh $KIT"

g=(--project "$PROJECT")

log "static internal address $VM-ip = $ZOT_IP in $SUBNET"
exists gcloud compute addresses describe "$VM-ip" "${g[@]}" --region "$REGION" ||
  run gcloud compute addresses create "$VM-ip" "${g[@]}" --region "$REGION" --subnet "$SUBNET" \
    --addresses "$ZOT_IP"

log "persistent disk $VM-data ($DISK_SIZE): the images outlive the VM"
exists gcloud compute disks describe "$VM-data" "${g[@]}" --zone "$ZONE" ||
  run gcloud compute disks create "$VM-data" "${g[@]}" --zone "$ZONE" --size "$DISK_SIZE" \
    --type pd-balanced

sources=$NODE_RANGE,$POD_RANGE${EXTRA_RANGES:+,$EXTRA_RANGES}
log "firewall rule $VM-from-gke: tcp:$ZOT_PORT from $sources only"
exists gcloud compute firewall-rules describe "$VM-from-gke" "${g[@]}" ||
  run gcloud compute firewall-rules create "$VM-from-gke" "${g[@]}" --network "$NETWORK" \
    --direction INGRESS --action ALLOW --rules "tcp:$ZOT_PORT" \
    --source-ranges "$sources" --target-tags "$VM"
if [ "${ALLOW_IAP:-0}" = 1 ]; then
  log "firewall rule $VM-from-iap: tcp:22,$ZOT_PORT from IAP's range (IAM decides who may tunnel)"
  exists gcloud compute firewall-rules describe "$VM-from-iap" "${g[@]}" ||
    run gcloud compute firewall-rules create "$VM-from-iap" "${g[@]}" --network "$NETWORK" \
      --direction INGRESS --action ALLOW --rules "tcp:22,tcp:$ZOT_PORT" \
      --source-ranges 35.235.240.0/20 --target-tags "$VM"
fi

address=()
[ "${NO_EXTERNAL_IP:-0}" = 1 ] && address=(--no-address)
log "VM $VM ($MACHINE, Debian 12) with the kit's user data"
exists gcloud compute instances describe "$VM" "${g[@]}" --zone "$ZONE" ||
  run gcloud compute instances create "$VM" "${g[@]}" --zone "$ZONE" --machine-type "$MACHINE" \
    --image-family debian-12 --image-project debian-cloud --subnet "$SUBNET" \
    --private-network-ip "$VM-ip" "${address[@]}" --tags "$VM" \
    --disk "name=$VM-data,device-name=zot-data,mode=rw,auto-delete=no" \
    --shielded-secure-boot --metadata-from-file "user-data=$KIT/user-data.yaml"

log "done. From a machine in the VPC (or a pod): curl --cacert $KIT/ca.crt https://$ZOT_IP:$ZOT_PORT/v2/ (401 = up)"
