#!/usr/bin/env bash
# Makes the Zot VM kit's secrets and files (see README.md), on your machine, into one folder:
#
#   ZOT_IP=10.128.0.5 zot-vm/render.sh [OUT]        (OUT: build/zot-vm)
#
#   ca.crt ca.key          the kit's CA (EC P-256, 10 years; ca.key never leaves this folder)
#   server.crt server.key  Zot's TLS certificate for ZOT_IP (and ZOT_HOSTNAME, if set)
#   pusher.password puller.password, htpasswd (bcrypt)
#                          two users: pusher may push (make push), puller may only read (GKE)
#   config.json            Zot's configuration (from config.json.in)
#   user-data.yaml         the VM's cloud-init user data (from cloud-init.yaml), files inlined
#   env                    what `make push` needs: REGISTRY, REGISTRY_USER (pusher), ...
#   auth-pusher.json auth-puller.json   docker config.json of each user
#   containerd-config.yaml GKE node pools: trust ca.crt for ZOT_IP:ZOT_PORT (gke.sh uses it)
#
# A second run keeps the CA, the passwords and a still-valid certificate for the same address,
# and renders the files again. Needs openssl and htpasswd (apache2-utils).
#
# Environment: ZOT_IP (required), ZOT_PORT (5000), ZOT_HOSTNAME, ZOT_PREFIX (blackfriday),
# ZOT_VERSION and ZOT_SHA256 (the pinned release below), PROJECT (for the Secret Manager
# reference in containerd-config.yaml; default: gcloud's project, else PROJECT_ID).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../build/zot-vm}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Zot's release, pinned. The sha256 of zot-linux-amd64 v2.1.21 as published in the release's
# checksums.sha256.txt; it was taken from several public pins of this asset that agree, not
# downloaded here (our machines reach no download site). The VM refuses any other binary.
ZOT_VERSION=${ZOT_VERSION:-2.1.21}
ZOT_SHA256=${ZOT_SHA256:-8751cc0daf739634835a3bd8206e3094c84d552e2c462e4a4baf80f40dd92685}
ZOT_PORT=${ZOT_PORT:-5000}
ZOT_PREFIX=${ZOT_PREFIX:-blackfriday}
PUSH_USER=pusher
PULL_USER=puller

log() { printf '[zot-vm] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -n "${ZOT_IP:-}" ] || die "set ZOT_IP to the VM's static internal address (e.g. 10.128.0.5)"
[[ $ZOT_IP =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "ZOT_IP '$ZOT_IP' is not an IPv4 address"
[[ $ZOT_SHA256 =~ ^[0-9a-f]{64}$ ]] || die "ZOT_SHA256 must be 64 hex digits"
command -v openssl > /dev/null || die "openssl is needed"
command -v htpasswd > /dev/null || die "htpasswd is needed (Debian/Ubuntu: apt-get install apache2-utils)"

cd "$out"
umask 077

if [ ! -f ca.crt ]; then
  log "making the kit's CA"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650 \
    -subj "/CN=salespipeline Zot CA" -keyout ca.key -out ca.crt 2>/dev/null
fi

san="IP:$ZOT_IP${ZOT_HOSTNAME:+,DNS:$ZOT_HOSTNAME}"
# A new server certificate when there is none, it names another address, or it ends within 30 days.
if [ ! -f server.crt ] || [ "$(cat server.san 2>/dev/null)" != "$san" ] ||
   ! openssl x509 -checkend $((30 * 86400)) -noout -in server.crt > /dev/null; then
  log "making Zot's TLS certificate for $san"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$ZOT_IP" \
    -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile server.ext -out server.crt 2>/dev/null
  echo "$san" > server.san
  rm -f server.csr server.ext
fi

for user in "$PUSH_USER" "$PULL_USER"; do
  [ -s "$user.password" ] || openssl rand -hex 20 > "$user.password"
done
: > htpasswd
for user in "$PUSH_USER" "$PULL_USER"; do
  htpasswd -bBC 10 htpasswd "$user" "$(cat "$user.password")" 2>/dev/null
done

host=$ZOT_IP:$ZOT_PORT
for user in "$PUSH_USER" "$PULL_USER"; do
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" \
    "$(printf '%s:%s' "$user" "$(cat "$user.password")" | base64 -w0)" > "auth-$user.json"
done

subst() { # the @NAME@ values
  sed -e "s|@ZOT_PORT@|$ZOT_PORT|g" -e "s|@ZOT_VERSION@|$ZOT_VERSION|g" \
      -e "s|@ZOT_SHA256@|$ZOT_SHA256|g" -e "s|@PUSH_USER@|$PUSH_USER|g" \
      -e "s|@PULL_USER@|$PULL_USER|g"
}
subst < "$here/config.json.in" > config.json

# Each line that is only "@FILE:name@" becomes that file, indented as the placeholder was.
awk -v dir="$out" '
  match($0, /^ *@FILE:[^@]+@$/) {
    indent = $0; sub(/@.*/, "", indent)
    name = $0; sub(/^ *@FILE:/, "", name); sub(/@$/, "", name)
    path = dir "/" name
    while ((getline line < path) > 0) print indent line
    close(path)
    next
  }
  {print}' "$here/cloud-init.yaml" | subst > user-data.yaml
! grep -n '@[A-Z_]*[:@]' user-data.yaml config.json || die "a placeholder was left unrendered"

project=${PROJECT:-$(gcloud config get-value project 2>/dev/null || true)}
project=${project:-PROJECT_ID}
cat > containerd-config.yaml <<EOF
# GKE node pools: containerd trusts the kit's CA for $host (the CA is read from Secret
# Manager at node start). zot-vm/gke.sh applies it with
#   gcloud container clusters update CLUSTER --containerd-config-from-file=this-file
privateRegistryAccessConfig:
  enabled: true
  certificateAuthorityDomainConfig:
  - gcpSecretManagerCertificateConfig:
      secretURI: "projects/$project/secrets/zot-ca/versions/latest"
    fqdns:
    - "$host"
EOF

cat > env <<EOF
# make push against the Zot VM:  . $out/env && make push
export REGISTRY=$host/$ZOT_PREFIX
export REGISTRY_USER=$PUSH_USER
export REGISTRY_PASSWORD=$(cat "$PUSH_USER.password")
export REGISTRY_CA=$out/ca.crt
export REGISTRY_AUTH_FILE=$out/auth-$PUSH_USER.json
EOF
chmod 644 ca.crt server.crt config.json containerd-config.yaml
log "rendered into $out (Zot $ZOT_VERSION on https://$host)"
