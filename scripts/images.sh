#!/usr/bin/env bash
# Container images of salespipeline, built here without a daemon and without any pull.
#
#   scripts/images.sh build [NAME...]  the images (default: all of IMAGES below), printing sizes
#   scripts/images.sh push [NAME...]   the images and the catalog artifact to $REGISTRY
#   scripts/images.sh bases            only the two base images
#   scripts/images.sh list             the image names, one a line
#   scripts/images.sh ref NAME         the local reference of an image (what `build` tags)
#   scripts/images.sh env              the environment every buildah/podman/skopeo call here uses
#   scripts/images.sh podman|buildah|skopeo ARGS...   that tool on the project's image store
#
# How (see ARCHITECTURE.md, "Images"):
# - Two base images are made from Debian packages with mmdebstrap, never pulled: the build base
#   (minbase + the compiler and the -dev packages of scripts/apt-packages.txt) and the runtime
#   base (only the shared libraries the programs link, extracted without dpkg and pruned to
#   their ELF dependency closure, no docs or locales). Each is kept as a tarball in
#   ~/.cache/salespipeline/images/, keyed by its package list, and imported into the store under
#   localhost/salespipeline/base-{build,runtime}:<key>; the Dockerfile names them by build-arg.
# - Each image is a target of the one Dockerfile, built with `buildah bud --isolation chroot
#   --pull=never --layers` (the build stage runs once for all targets); the labels that change
#   per build are set after it (buildah's layer cache ignores --label). An image carries the label
#   dev.salespipeline.content, a digest of every input (Dockerfile, sources, base keys, this
#   script): an image whose label matches is not built again.
# - valkey-vm is the Valkey VMs' KubeVirt containerDisk (scripts/valkey-disk.sh: a qcow2 under
#   /disk/, FROM scratch, no user or entrypoint: KubeVirt only copies the disk out of it).
# - The store is the checkout's own (build/containers, overlay driver), so checkouts and the
#   host's own images never step on each other; podman runs with runc and cgroupfs (crun fails
#   here, see CONTAINERS.md).
#
# Environment: REGISTRY (host:port/prefix; default: build/registry/env's, else none), IMAGE_VERSION
# (default: the programs' SP_VERSION), IMAGE_SOURCE (the source label; default: git remote
# origin), for push REGISTRY_AUTH_FILE (a docker config.json) or REGISTRY_USER +
# REGISTRY_PASSWORD, and REGISTRY_CA (the registry's CA certificate), SP_CACHE.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The images, in build order. Each is a target of the Dockerfile unless a function
# build_<name> KEY exists: then that builds it and ends with label_and_tag, and inputs_<name>
# lists the files its content key hashes (paths in the checkout).
IMAGES=(api bridge writer consumer operator valkey-vm)

LOCAL_PREFIX=localhost/blackfriday
BASE_PREFIX=localhost/salespipeline
SUITE=bookworm
RUNTIME_PACKAGES=$top/scripts/images/runtime-packages.txt

version=${IMAGE_VERSION:-$(sed -n 's/^#define SP_VERSION "\(.*\)"/\1/p' common/config.h)}
[ -n "$version" ] || die "cannot read SP_VERSION from common/config.h (set IMAGE_VERSION)"
if [ -z "${REGISTRY:-}" ] && [ -f build/registry/env ]; then
  # shellcheck disable=SC1091
  . build/registry/env
fi

# ---------------------------------------------------------------- the project's image store

store=$top/build/containers
export CONTAINERS_STORAGE_CONF=$store/storage.conf CONTAINERS_CONF=$store/containers.conf
export BUILDAH_ISOLATION=chroot
# Inside the store directory, so a second checkout gets its own (the path of its socket and
# locks must stay short: it is under build/).
setup_store() {
  mkdir -p "$store"
  local want
  want=$(printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$store" "$store")
  [ "$(cat "$CONTAINERS_STORAGE_CONF" 2>/dev/null)" = "$want" ] || echo "$want" > "$CONTAINERS_STORAGE_CONF"
  # runc + cgroupfs: crun and systemd cgroups fail here. Limits inside the host's (root lacks
  # CAP_SYS_RESOURCE to raise them). No journald: events and logs go to files.
  cat > "$CONTAINERS_CONF.tmp" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$store/events.log"
EOF
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
}

# ---------------------------------------------------------------- base images

# Debian mirror lines of this machine's own apt sources (bookworm, -updates, -security), so no
# mirror host is written in our files.
debian_mirrors() {
  {
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      awk 'BEGIN {RS = ""} /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
             u = ""; s = ""
             n = split($0, l, "\n")
             for (i = 1; i <= n; i++) {
               if (l[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", l[i]); u = l[i] }
               if (l[i] ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", l[i]); s = l[i] }
             }
             split(u, us, /[ \t]+/); k = split(s, ss, /[ \t]+/)
             for (j = 1; j <= k; j++) print "deb " us[1] " " ss[j] " main"
           }' /etc/apt/sources.list.d/debian.sources
    fi
    [ -f /etc/apt/sources.list ] && awk '$1 == "deb" {print "deb " $2 " " $3 " main"}' /etc/apt/sources.list
  } | awk -v suite="$SUITE" '$3 == suite || $3 == suite "-updates" || $3 == suite "-security"' | sort -u
}

# The build base: what the Dockerfile's build stage compiles with. Its packages are the build
# section of scripts/apt-packages.txt (compiler, pkg-config, protoc-c, the -dev libraries).
build_packages() {
  grep -E '^(build-essential|pkg-config|protobuf-c-compiler|lib[a-z0-9.+-]+-dev)$' scripts/apt-packages.txt \
    | grep -v '^libcmocka-dev$' | sort
}
runtime_packages() { grep -v '^#' "$RUNTIME_PACKAGES" | grep . | sort; }

# What makes each base: its package list and these functions.
recipe_build=(make_tar_base_build)
recipe_runtime=(make_tar_base_runtime prune_to_closure soname_of)
base_key() { # kind -> digest of what makes that base
  local -n recipe=recipe_$1
  { echo "$SUITE"; "${1}_packages"; declare -f "${recipe[@]}"; } \
    | sha256sum | cut -c1-16
}

make_tar_base_build() { # out.tar
  local pkgs; pkgs=$(build_packages | paste -sd, -)
  local -a mirrors; mapfile -t mirrors < <(debian_mirrors)
  mmdebstrap --quiet --mode=root --variant=minbase --format=tar --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "$SUITE" "$1" "${mirrors[@]}"
}

make_tar_base_runtime() { # out.tar
  local pkgs root; pkgs=$(runtime_packages | paste -sd, -)
  local -a mirrors; mapfile -t mirrors < <(debian_mirrors)
  root=$1.d   # beside the tarball, under its lock; import_base removes both on failure
  rm -rf "$root" && mkdir -p "$root"
  # extract: the packages' files only, no dpkg, no shell, no maintainer scripts.
  mmdebstrap --quiet --mode=root --variant=extract --include="$pkgs" "$SUITE" "$root" "${mirrors[@]}"
  prune_to_closure "$root"
  # The container runtime provides /dev, resolv.conf and hostname; no docs, apt or dpkg state.
  rm -rf "$root"/usr/share "$root"/var/cache "$root"/var/lib/apt "$root"/var/lib/dpkg \
    "$root"/var/log "$root"/etc/apt "$root"/etc/dpkg "$root"/dev/* "$root"/etc/resolv.conf \
    "$root"/etc/hostname "$root"/etc/fstab
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
  mkdir -p "$root/tmp" "$root/home/nonroot" && chmod 1777 "$root/tmp" && chown 65532:65532 "$root/home/nonroot"
  tar --sort=name --numeric-owner -C "$root" -cf "$1" .
  rm -rf "$root"
}

soname_of() { readelf -d "$(readlink -f "$1")" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'; }

# Keeps, of the shared objects under lib/ and usr/lib/, only the ELF dependency closure of the
# libraries the programs link (the -l flags of the Makefile's PKGS, as sonames of this machine's
# -dev packages: the same Debian release), plus the dynamic loader.
prune_to_closure() { # root
  local root=$1 pkgs lib name flag
  pkgs=$(make -s --no-print-directory print-PKGS)
  local -A keep=()
  local -a todo=()
  for flag in $(pkg-config --libs-only-l $pkgs) -lm; do
    lib=$(${CC:-cc} -print-file-name="lib${flag#-l}.so")
    if [ ! -e "$lib" ]; then
      # only a static archive (librt, libatomic): nothing to load at run time
      [ -e "$(${CC:-cc} -print-file-name="lib${flag#-l}.a")" ] && continue
      die "runtime base: no lib${flag#-l}.so here (scripts/deps.sh installs the -dev packages)"
    fi
    if name=$(soname_of "$lib" 2>/dev/null) && [ -n "$name" ]; then
      todo+=("$name")
    else # a linker script (libm.so): the libraries it names
      todo+=($(grep -o '/[^ ()]*\.so\.[0-9]*' "$lib" | xargs -n1 basename))
    fi
  done
  while [ ${#todo[@]} -gt 0 ]; do
    name=${todo[-1]}; unset 'todo[-1]'
    [ -n "${keep[$name]:-}" ] && continue
    lib=$(find "$root/lib" "$root/usr/lib" -name "$name" \( -type f -o -type l \) 2>/dev/null | head -n1)
    [ -n "$lib" ] || die "runtime base: no $name in the packages of $RUNTIME_PACKAGES"
    keep[$name]=$lib
    local needed
    for needed in $(readelf -d "$(readlink -f "$lib")" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      todo+=("$needed")
    done
  done
  local -A files=()
  for lib in "${keep[@]}"; do
    files[$(readlink -f "$lib")]=1
  done
  local f
  while IFS= read -r -d '' f; do
    case ${f##*/} in ld-linux*) continue ;; esac
    if [ -L "$f" ]; then
      [ -n "${files[$(readlink -f "$f")]:-}" ] || rm -f "$f"
    elif [ -z "${files[$f]:-}" ]; then
      rm -f "$f"
    fi
  done < <(find "$root/lib" "$root/usr/lib" \( -type f -o -type l \) -print0)
  find "$root/lib" "$root/usr/lib" -depth -type d -empty -delete
}

base_ref() { echo "$BASE_PREFIX/base-$1:$(base_key "$1")"; }

ensure_base() { # kind
  local kind=$1 ref
  ref=$(base_ref "$kind")
  buildah inspect --type image "$ref" > /dev/null 2>&1 || import_base "$kind" "$ref"
  buildah tag "$ref" "$BASE_PREFIX/base-$kind:$SUITE"
  # Bases of older package lists leave the store (their tarballs stay in the shared cache).
  local old
  for old in $(buildah images --format '{{.Name}}:{{.Tag}}' | grep "^$BASE_PREFIX/base-$kind:"); do
    [ "$old" = "$ref" ] || [ "${old##*:}" = "$SUITE" ] || buildah rmi "$old" > /dev/null 2>&1 || true
  done
}

import_base() { # kind ref
  local kind=$1 ref=$2 key=${2##*:} tar
  mkdir -p "$cache/images"
  tar=$cache/images/base-$kind-$key.tar
  exec 8>"$tar.lock"
  flock 8   # checkouts share the tarball cache
  if [ ! -s "$tar" ]; then
    local start=$SECONDS
    log "making the $kind base from Debian packages (mmdebstrap; once per package list)"
    trap 'rm -rf "$tar.tmp" "$tar.tmp.d"' EXIT   # a failed step leaves nothing half made
    "make_tar_base_$kind" "$tar.tmp"
    mv "$tar.tmp" "$tar"
    trap - EXIT
    log "$kind base: $(du -h "$tar" | cut -f1) in $((SECONDS - start)) s -> $tar"
  fi
  exec 8>&-
  local c
  c=$(buildah from scratch)
  buildah add --quiet "$c" "$tar" / > /dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label "dev.salespipeline.base=$kind" --label "dev.salespipeline.base-key=$key" "$c"
  buildah commit --quiet --rm "$c" "$ref" > /dev/null
  log "imported $ref"
}

# ---------------------------------------------------------------- the images

local_ref() { echo "$LOCAL_PREFIX/$1:$version"; }

# What the Dockerfile's build copies, as listed in it, plus the recipe.
dockerfile_inputs() {
  # Paths relative to the checkout: the digest lists them, whichever way the script was called.
  echo Dockerfile .dockerignore scripts/images.sh
  sed -n 's/^COPY \([^-][^ ]*\) .*/\1/p' Dockerfile
}

content_key() { # image
  local inputs=dockerfile_inputs
  declare -F "inputs_$1" > /dev/null && inputs=inputs_$1
  {
    echo "$1 $version $(base_key build) $(base_key runtime)"
    # shellcheck disable=SC2046
    find $("$inputs") -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-32
}

image_content() { buildah inspect --type image --format '{{index .ImageAnnotations "dev.salespipeline.content"}}{{index .OCIv1.Config.Labels "dev.salespipeline.content"}}' "$1" 2>/dev/null || true; }

source_url() {
  if [ -n "${IMAGE_SOURCE:-}" ]; then echo "$IMAGE_SOURCE"; return; fi
  git config --get remote.origin.url 2>/dev/null || echo "file://$top"
}

revision() {
  local rev; rev=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  [ -z "$(git status --porcelain 2>/dev/null)" ] || rev+=-dirty
  echo "$rev"
}

inputs_valkey-vm() { echo scripts/valkey-disk.sh valkey-vm; }

# The disk is built (or taken from its cache) by valkey-disk.sh as an OCI archive.
build_valkey-vm() { # key
  local built
  scripts/valkey-disk.sh build
  built=$(buildah pull --quiet "oci-archive:$top/build/vm/valkey-vm.oci.tar")
  label_and_tag "$built" valkey-vm "$1"
}

build_from_dockerfile() { # image key
  local name=$1 key=$2 built
  built=$(buildah bud --quiet --isolation chroot --pull=never --layers --target "$name" \
    --build-arg "BUILD_BASE=$(base_ref build)" --build-arg "RUNTIME_BASE=$(base_ref runtime)" \
    -f Dockerfile .)
  label_and_tag "$built" "$name" "$key"
}

# Gives a built image (id) the labels of this build and its local name. Every builder ends
# with it. Outside the layer cache (which ignores --label and ARG values in LABEL): one commit
# more, adding an empty layer.
label_and_tag() { # image-id name key
  local built=$1 name=$2 key=$3 c
  c=$(buildah from --pull=never "$built")
  buildah config --label "org.opencontainers.image.source=$(source_url)" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$(revision)" \
    --label "org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --label "dev.salespipeline.content=$key" "$c"
  buildah commit --quiet --rm "$c" "$(local_ref "$name")" > /dev/null
}

build_images() {
  local names=("$@") name key start
  [ ${#names[@]} -gt 0 ] || names=("${IMAGES[@]}")
  ensure_base build
  ensure_base runtime
  for name in "${names[@]}"; do
    key=$(content_key "$name")
    if [ "$(image_content "$(local_ref "$name")")" = "$key" ]; then
      log "$(local_ref "$name"): up to date"
    else
      start=$SECONDS
      log "building $(local_ref "$name")"
      if declare -F "build_$name" > /dev/null; then "build_$name" "$key"; else build_from_dockerfile "$name" "$key"; fi
      log "built $(local_ref "$name") in $((SECONDS - start)) s"
    fi
    [ -z "${REGISTRY:-}" ] || buildah tag "$(local_ref "$name")" "$REGISTRY/$name:$version"
  done
  # Untagged leftovers of earlier builds (the layer cache of older sources) would pile up.
  buildah rmi --prune > /dev/null 2>&1 || true
  print_sizes "${names[@]}"
}

print_sizes() {
  local name ref runtime_size
  runtime_size=$(podman image inspect --format '{{.Size}}' "$(base_ref runtime)")
  printf '%-40s %10s %14s\n' image size "own (- base)"
  for name in "$@"; do
    ref=$(local_ref "$name")
    local size; size=$(podman image inspect --format '{{.Size}}' "$ref")
    printf '%-40s %9.1fM %13.1fM\n' "$ref" "$(echo "$size / 1048576" | bc -l)" \
      "$(echo "($size - $runtime_size) / 1048576" | bc -l)"
  done
  printf '%-40s %9.1fM   (shared by every image: one copy per registry and node)\n' \
    "$(base_ref runtime)" "$(echo "$runtime_size / 1048576" | bc -l)"
}

# ---------------------------------------------------------------- push

# Credentials for the registry host, in the docker config.json format that buildah, skopeo,
# ORAS and the api (REGISTRY_AUTH_FILE) all read.
auth_file() {
  if [ -n "${REGISTRY_AUTH_FILE:-}" ]; then echo "$REGISTRY_AUTH_FILE"; return; fi
  local host=${REGISTRY%%/*} f=$store/auth.json
  [ -n "${REGISTRY_USER:-}" ] || die "REGISTRY_USER / REGISTRY_PASSWORD are not set"
  local token; token=$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASSWORD" | base64 -w0)
  umask 077
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$token" > "$f"
  echo "$f"
}

# A directory holding the CA as ca.crt: the form containers/image takes for --cert-dir.
cert_dir() {
  local d=$store/certs
  rm -rf "$d" && mkdir -p "$d"
  [ -z "${REGISTRY_CA:-}" ] || cp "$REGISTRY_CA" "$d/ca.crt"
  echo "$d"
}

push_images() {
  local names=("$@") name auth certs
  [ -n "${REGISTRY:-}" ] || die "REGISTRY is not set (make registry-up writes build/registry/env)"
  [ ${#names[@]} -gt 0 ] || names=("${IMAGES[@]}" catalog)
  auth=$(auth_file); certs=$(cert_dir)
  for name in "${names[@]}"; do
    if [ "$name" = catalog ]; then push_catalog "$auth"; continue; fi
    buildah inspect --type image "$(local_ref "$name")" > /dev/null 2>&1 \
      || die "$(local_ref "$name") is not built (make images)"
    log "pushing $REGISTRY/$name:$version"
    buildah push --quiet --authfile "$auth" --cert-dir "$certs" --format oci \
      "$(local_ref "$name")" "docker://$REGISTRY/$name:$version"
  done
}

# The product catalog as an OCI artifact (see locust/CATALOG.md): one layer, the file as it is.
CATALOG_ARTIFACT_TYPE=application/vnd.salespipeline.catalog.v1
CATALOG_MEDIA_TYPE=application/vnd.salespipeline.catalog.v1+json
push_catalog() { # auth-file
  local oras ref=$REGISTRY/catalog:$version
  oras=$("$top/scripts/gotool.sh" oras)
  local -a tls=()
  [ -z "${REGISTRY_CA:-}" ] || tls=(--ca-file "$REGISTRY_CA")
  log "pushing $ref (artifact $CATALOG_ARTIFACT_TYPE)"
  # From inside locust/ so that the layer's title is the bare file name.
  (cd locust && "$oras" push --no-tty --registry-config "$1" "${tls[@]}" \
    --artifact-type "$CATALOG_ARTIFACT_TYPE" \
    --annotation "org.opencontainers.image.source=$(source_url)" \
    --annotation "org.opencontainers.image.revision=$(revision)" \
    "$ref" "catalog.json:$CATALOG_MEDIA_TYPE" > /dev/null)
}

# ---------------------------------------------------------------- main

setup_store
case "${1:-build}" in
  build) shift || true; build_images "$@" ;;
  push) shift; push_images "$@" ;;
  bases) ensure_base build; ensure_base runtime ;;
  list) printf '%s\n' "${IMAGES[@]}" ;;
  ref) local_ref "$2" ;;
  env) printf 'export CONTAINERS_STORAGE_CONF=%q CONTAINERS_CONF=%q BUILDAH_ISOLATION=chroot\n' \
         "$CONTAINERS_STORAGE_CONF" "$CONTAINERS_CONF" ;;
  podman|buildah|skopeo) tool=$1; shift; exec "$tool" "$@" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
