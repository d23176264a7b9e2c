#!/usr/bin/env bash
# Kiali's server (its API; the frontend is only needed for the UI and is not built), from the
# github.com/kiali/kiali module that the Go module proxy serves. v1.82.0 is the newest version the
# proxy serves. Output:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/kiali/<version>/bin/kiali
#
# Serialised by the flock ~/.cache/ambient-mesh/kiali/kiali.lock (parallel setup and e2e runs).
# Built inside the downloaded module so its own go.mod (replace directives, pins) applies; the version
# is stamped into main.version as Kiali's Makefile does. Skips all work when the binary is present.
# Prints the version's folder as the last line on stdout.
set -euo pipefail

VERSION="${KIALI_VERSION:-v1.82.0}"
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
OUT="$CACHE_ROOT/kiali/$VERSION"
log() { printf '[kiali] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi

mkdir -p "$CACHE_ROOT/kiali"
exec 9>"$CACHE_ROOT/kiali/kiali.lock"
flock 9

if [[ -x "$OUT/bin/kiali" ]]; then
  log "kiali $VERSION present (nothing to build)"
  echo "$OUT"
  exit 0
fi
export GOTOOLCHAIN=local
log "go mod download github.com/kiali/kiali@$VERSION"
dir="$(GOFLAGS=-mod=mod go mod download -json "github.com/kiali/kiali@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  log "the module download gave no folder with a go.mod (dir: '${dir}')"
  exit 1
fi
mkdir -p "$OUT/bin"
started=$(date +%s)
log "go build github.com/kiali/kiali ($VERSION) with $(go version)"
(
  cd "$dir"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-X main.version=$VERSION -X main.commitHash=module-proxy" \
    -o "$OUT/bin/kiali.tmp" .
)
mv "$OUT/bin/kiali.tmp" "$OUT/bin/kiali"
build_s=$(( $(date +%s) - started ))
echo "kiali_build_seconds=$build_s" >"$OUT/build-info.txt"
log "done in ${build_s}s ($(( $(stat -c %s "$OUT/bin/kiali") / 1048576 ))MB)"
echo "$OUT"
