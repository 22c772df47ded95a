#!/usr/bin/env bash
# Runs a small Go tool of ours, building it first if needed:
#
#   scripts/gotool.sh NAME [ARGS...]
#
# tools/NAME is a Go module (go.mod + go.sum pin every dependency, -mod=readonly); it is built
# once into $SP_CACHE/NAME-VERSION/NAME, VERSION being the version its go.mod requires of its
# first dependency. A changed go.mod, go.sum or source file rebuilds it. Modules come from the
# Go module proxy only.
#   SP_CACHE (${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline); GO (go on PATH, else /usr/local/go/bin/go)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: gotool.sh NAME [ARGS...]}
shift
src=$top/tools/$name
[ -f "$src/go.mod" ] || { echo "gotool: no Go module in $src" >&2; exit 2; }
cache=${SP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/salespipeline}
version=$(awk '/^require/ { if ($2 == "(") { getline; print $2 } else print $3; exit }' "$src/go.mod")
dir=$cache/$name-${version:-dev}
bin=$dir/$name
stamp=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-16)

if [ ! -x "$bin" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9   # one build at a time (several checkouts share the cache)
  if [ ! -x "$bin" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
    start=$SECONDS
    (cd "$src" && CGO_ENABLED=0 GOPROXY=${GOPROXY:-https://proxy.golang.org} \
      GOFLAGS="-mod=readonly -buildvcs=false -trimpath" \
      "$go" build -p "${SP_BUILD_JOBS:-2}" -o "$bin.tmp" .)
    mv "$bin.tmp" "$bin"
    echo "$stamp" > "$dir/.stamp"
    echo "[gotool] built $name ($version) into $dir in $((SECONDS - start)) s" >&2
  fi
  exec 9>&-
fi
exec "$bin" "$@"
