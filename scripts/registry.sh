#!/usr/bin/env bash
# A local OCI registry configured as the Zot VM is: TLS with a CA made here, htpasswd (bcrypt)
# basic auth. It is Debian's docker-registry (CNCF distribution 2.8, the reference
# implementation of the OCI Distribution Spec that Zot implements too), on 127.0.0.1 (or
# SP_REGISTRY_ADDRESS: the test node's pods pull from the host's bridge address, 10.244.0.1).
#
#   scripts/registry.sh up     start it (idempotent); writes build/registry/env
#   scripts/registry.sh stop   stop it by its pid, keep its state (a later `up` serves the same
#                              images with the same CA and password)
#   scripts/registry.sh down   stop it and remove its state (images included)
#   scripts/registry.sh status
#
# build/registry/env (shell, exported): REGISTRY (host:port/blackfriday), REGISTRY_USER,
# REGISTRY_PASSWORD, REGISTRY_CA (the CA certificate), REGISTRY_AUTH_FILE (a docker
# config.json with the credentials, the form Kubernetes pull Secrets, podman and the api read).
#
# Environment: SP_REGISTRY_PORT (15000), SP_REGISTRY_ADDRESS (127.0.0.1: the IPv4 address it
# listens on, in its certificate and in REGISTRY), SP_REGISTRY_DIR (build/registry), SP_REGISTRY_USER
# (salespipeline), SP_REGISTRY_PREFIX (blackfriday), SP_REGISTRY_AUTH (htpasswd | token: the
# tests' Bearer-token mode, with SP_REGISTRY_TOKEN_REALM, SP_REGISTRY_TOKEN_CERT).
# To serve with the Zot VM kit's own TLS and users (zot-vm/render.sh's folder):
# SP_REGISTRY_PKI_DIR (its ca.crt, server.crt, server.key), SP_REGISTRY_HTPASSWD, and the user
# and password to write into env as SP_REGISTRY_USER and SP_REGISTRY_PASSWORD.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

log() { printf '[registry] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

state=${SP_REGISTRY_DIR:-build/registry}
case $state in /*) ;; *) state=$top/$state ;; esac
# A registry brought up again keeps its port (the references pushed to it name it).
port=${SP_REGISTRY_PORT:-$(cat "$state/port" 2>/dev/null || echo 15000)}
user=${SP_REGISTRY_USER:-salespipeline}
prefix=${SP_REGISTRY_PREFIX:-blackfriday}
auth=${SP_REGISTRY_AUTH:-htpasswd}
address=${SP_REGISTRY_ADDRESS:-$(cat "$state/address" 2>/dev/null || echo 127.0.0.1)}
host=$address:$port
pidfile=$state/registry.pid

running_pid() {
  local pid
  [ -f "$pidfile" ] && pid=$(cat "$pidfile") && [ -n "$pid" ] || return 1
  # ours: its command line names our config file (a recycled pid is never taken for it)
  [[ "$(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline")" == *"$state/config.yml"* ]] || return 1
  echo "$pid"
}

# A CA and a server certificate for the address, 127.0.0.1 and localhost (EC P-256, like the
# Zot VM's kit), or the ones given. A later `up` on another address gets a new server
# certificate from the same CA.
make_pki() {
  local pki=$state/pki
  [ -f "$pki/server.crt" ] && [ "$(cat "$state/address" 2>/dev/null)" = "$address" ] && return
  mkdir -p "$pki"
  if [ -n "${SP_REGISTRY_PKI_DIR:-}" ]; then
    cp "$SP_REGISTRY_PKI_DIR"/{ca.crt,server.crt,server.key} "$pki/"
    return
  fi
  [ -f "$pki/ca.key" ] || openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650 \
    -subj "/CN=salespipeline local registry CA" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$address" \
    -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
    "$address" > "$pki/server.ext"
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 825 -extfile "$pki/server.ext" -out "$pki/server.crt" 2>/dev/null
  chmod 600 "$pki"/*.key
}

auth_section() {
  case $auth in
    htpasswd) printf '  htpasswd:\n    realm: salespipeline\n    path: %s/htpasswd\n' "$state" ;;
    token)
      [ -n "${SP_REGISTRY_TOKEN_REALM:-}" ] && [ -n "${SP_REGISTRY_TOKEN_CERT:-}" ] \
        || die "token auth needs SP_REGISTRY_TOKEN_REALM and SP_REGISTRY_TOKEN_CERT"
      printf '  token:\n    realm: %s\n    service: %s\n    issuer: salespipeline-test-token-issuer\n    rootcertbundle: %s\n' \
        "$SP_REGISTRY_TOKEN_REALM" "$host" "$SP_REGISTRY_TOKEN_CERT" ;;
    *) die "SP_REGISTRY_AUTH must be htpasswd or token" ;;
  esac
}

write_config() {
  local password
  if [ -n "${SP_REGISTRY_PASSWORD:-}" ]; then password=$SP_REGISTRY_PASSWORD
  elif [ -f "$state/password" ]; then password=$(cat "$state/password"); else
    password=$(openssl rand -hex 16)
    (umask 077 && echo "$password" > "$state/password")
  fi
  if [ -n "${SP_REGISTRY_HTPASSWD:-}" ]; then
    cp "$SP_REGISTRY_HTPASSWD" "$state/htpasswd"
  else
    # bcrypt, as Zot's htpasswd requires (and distribution accepts only bcrypt).
    htpasswd -Bbn "$user" "$password" > "$state/htpasswd" 2>/dev/null
  fi
  cat > "$state/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields: {service: registry}
storage:
  filesystem: {rootdirectory: $state/data}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: $host
  secret: $(openssl rand -hex 16)
  headers:
    X-Content-Type-Options: [nosniff]
  tls:
    certificate: $state/pki/server.crt
    key: $state/pki/server.key
auth:
$(auth_section)
EOF
  local auth_b64; auth_b64=$(printf '%s:%s' "$user" "$password" | base64 -w0)
  (umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$auth_b64" > "$state/auth.json")
  cat > "$state/env" <<EOF
export REGISTRY=$host/$prefix
export REGISTRY_USER=$user
export REGISTRY_PASSWORD=$password
export REGISTRY_CA=$state/pki/ca.crt
export REGISTRY_AUTH_FILE=$state/auth.json
EOF
}

answering() { # the /v2/ base endpoint answers with our TLS (401 without credentials is fine)
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$state/pki/ca.crt" "https://$host/v2/") || return 1
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

up() {
  if running_pid > /dev/null; then log "already running on $host"; return; fi
  command -v docker-registry > /dev/null || die "docker-registry is not installed (scripts/deps.sh images)"
  mkdir -p "$state/data"
  echo "$port" > "$state/port"
  make_pki
  echo "$address" > "$state/address"
  write_config
  # setsid: survives the caller's Ctrl-C; 8>&- 9>&-: holds none of the callers' lock files.
  setsid docker-registry serve "$state/config.yml" > "$state/registry.log" 2>&1 < /dev/null 8>&- 9>&- &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + ${SP_REGISTRY_TIMEOUT:-30}))
  until answering; do
    if ! running_pid > /dev/null; then tail -n 20 "$state/registry.log" >&2; die "docker-registry exited"; fi
    [ $SECONDS -lt $deadline ] || die "no answer on https://$host/v2/ (see $state/registry.log)"
    sleep 0.1
  done
  log "up on https://$host (auth $auth, CA $state/pki/ca.crt); . $state/env"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    local i
    for i in $(seq 100); do running_pid > /dev/null || break; sleep 0.1; done
    if running_pid > /dev/null; then kill -9 "$pid"; fi
    log "stopped (pid $pid)"
  fi
}

down() {
  stop
  rm -rf "$state"
}

case "${1:-}" in
  up) up ;;
  stop) stop ;;
  down) down ;;
  status) if pid=$(running_pid); then echo "running (pid $pid) on https://$host"; else echo "not running"; exit 1; fi ;;
  *) sed -n '2,23p' "$0" >&2; exit 2 ;;
esac
