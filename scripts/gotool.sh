#!/usr/bin/env bash
# Builds a Go tool pinned by a module of ours once into the shared cache and prints its path.
#   scripts/gotool.sh NAME      tools/NAME/go.mod (+ go.sum) is either
#     - a wrapper: a `tool <package>` line names the tool, whose module is pinned by a require
#       line (tools/oras); the version is that module's;
#     - or a program of ours: package main in tools/NAME/*.go (tools/dashcheck); the version is
#       that of the first module it requires.
# The binary lands in ~/.cache/salespipeline/<name>-<version>/<binary>; a second call costs a
# stat. Builds are CGO-free, -trimpath, from the committed go.sum only (-mod=readonly); a changed
# go.mod, go.sum or source file rebuilds. Run it as "$(scripts/gotool.sh NAME)" ARGS...
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}

log() { printf '[gotool] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# = 1 ] || die "usage: $0 NAME (a Go module under tools/NAME)"
name=$1
dir=$top/tools/$name
[ -f "$dir/go.mod" ] && [ -f "$dir/go.sum" ] || die "$dir has no go.mod + go.sum"

package=$(awk '$1 == "tool" && NF == 2 {print $2; exit}' "$dir/go.mod")
# The required module whose path is the longest prefix of the package (none: the first one).
read -r module version < <(awk -v pkg="$package" '
  /^require[ \t]*\(/ {inblock = 1; next} inblock && /^\)/ {inblock = 0; next}
  {line = $0; sub(/^require[ \t]+/, "", line); sub(/^[ \t]+/, "", line); split(line, f, /[ \t]+/)}
  (inblock || /^require[ \t]+[^(]/) && f[2] != "" {
    if (!first) first = f[1] " " f[2]
    if (pkg != "" && (pkg == f[1] || index(pkg, f[1] "/") == 1) && length(f[1]) > best) {
      best = length(f[1]); m = f[1] " " f[2] } }
  END {if (m) print m; else if (pkg == "" && first) print first}' "$dir/go.mod") || true
[ -n "${version:-}" ] || die "cannot find the pinned module of ${package:-$name} in $dir/go.mod"

out=$cache/$name-$version
if [ -n "$package" ]; then binary=$out/${package##*/} target=$package; else binary=$out/$name target=.; fi
stamp=$(cat "$dir/go.mod" "$dir/go.sum" $(ls "$dir"/*.go 2>/dev/null) | sha256sum | cut -c1-16)
built() { [ -x "$binary" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; }

if ! built; then
  go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
  [ -x "$go" ] || die "no go toolchain (install Go >= 1.26)"
  mkdir -p "$cache"
  exec 9>"$cache/$name-$version.lock"
  flock 9   # one build per version when several checkouts ask at once
  if ! built; then
    start=$SECONDS tmp=$out.tmp
    rm -rf "$tmp" && mkdir -p "$tmp"
    log "building $name ($module $version) with $("$go" env GOVERSION) (first run only)"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath" \
      "$go" build -p "${SP_BUILD_JOBS:-2}" -ldflags "-s -w" -o "$tmp/${binary##*/}" "$target")
    echo "$stamp" > "$tmp/.stamp"
    rm -rf "$out" && mv "$tmp" "$out"   # whole or nothing
    log "built $binary in $((SECONDS - start)) s"
  fi
  exec 9>&-
fi
echo "$binary"
