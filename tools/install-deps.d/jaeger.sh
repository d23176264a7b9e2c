#!/usr/bin/env bash
# Jaeger v2 (the OpenTelemetry-collector based `jaeger` binary: OTLP receiver on 4317/4318, query
# API on 16686), from the github.com/jaegertracing/jaeger module that the Go module proxy serves. The
# waypoint tracing tests export spans to it and read them back through its query API, as the console
# does (TRACING_URL). v1.75.0 is the newest approved release the proxy serves. Output:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/jaeger/<version>/bin/jaeger
#
# Serialised by the flock ~/.cache/ambient-mesh/jaeger/jaeger.lock (parallel setup and e2e runs).
# Built inside the downloaded module so its own go.mod (replace directives, pins) applies. The UI
# assets are not built (the query API is all the tests and the console use). Skips all work when the
# binary is present. Prints the version's folder as the last line on stdout.
set -euo pipefail

VERSION="${JAEGER_VERSION:-v1.75.0}"
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
OUT="$CACHE_ROOT/jaeger/$VERSION"
log() { printf '[jaeger] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  log "Go is not installed; install Go (see tools/install-deps.d/kiali.sh for the same requirement)"
  exit 1
fi

mkdir -p "$CACHE_ROOT/jaeger"
exec 9>"$CACHE_ROOT/jaeger/jaeger.lock"
flock 9

if [[ -x "$OUT/bin/jaeger" ]]; then
  log "jaeger $VERSION present (nothing to build)"
  echo "$OUT"
  exit 0
fi
export GOTOOLCHAIN=local
log "go mod download github.com/jaegertracing/jaeger@$VERSION"
dir="$(GOFLAGS=-mod=mod go mod download -json "github.com/jaegertracing/jaeger@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
  log "the module download gave no folder with a go.mod (dir: '${dir}')"
  exit 1
fi
mkdir -p "$OUT/bin"
started=$(date +%s)
log "go build github.com/jaegertracing/jaeger/cmd/jaeger ($VERSION) with $(go version) (several minutes)"
(
  cd "$dir"
  CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$VERSION" \
    -o "$OUT/bin/jaeger.tmp" ./cmd/jaeger
)
mv "$OUT/bin/jaeger.tmp" "$OUT/bin/jaeger"
build_s=$(( $(date +%s) - started ))
echo "jaeger_build_seconds=$build_s" >"$OUT/build-info.txt"
log "done in ${build_s}s ($(( $(stat -c %s "$OUT/bin/jaeger") / 1048576 ))MB)"
echo "$OUT"
