#!/usr/bin/env bash
# istioctl from the same istio.io/istio module version as the upstream istiod oracle
# (istio-upstream.sh picks the version and resolves the dependency pins). Output:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/istio/<label>/bin/istioctl
#
# Serialised by the flock ~/.cache/ambient-mesh/istio/istioctl.lock (parallel setup and e2e runs).
# Builds in its own scratch module seeded from istio-upstream.sh's resolved go.mod/go.sum, so the
# same pins apply; the version is stamped like istio-upstream.sh does (<minor>-dev for a branch build).
# Skips all work when the binary is present. Prints the binary's path as the last line on stdout.
set -euo pipefail

CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[istioctl] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi

mkdir -p "$CACHE_ROOT/istio"
exec 9>"$CACHE_ROOT/istio/istioctl.lock"
flock 9

OUT="$(ISTIO_UPSTREAM_ECHO="${ISTIO_UPSTREAM_ECHO:-1}" bash "$HERE/istio-upstream.sh" | tail -n 1)"
LABEL="$(basename "$OUT")"
if [[ -x "$OUT/bin/istioctl" ]]; then
  log "istioctl $LABEL present (nothing to build)"
  echo "$OUT/bin/istioctl"
  exit 0
fi
if [[ ! -s "$OUT/work/go.mod" ]]; then
  # istio-upstream.sh found everything cached from an older layout without its scratch module.
  log "no resolved module in $OUT/work; remove $OUT/bin/pilot-discovery and rerun to rebuild it"
  exit 1
fi
stamp="$LABEL"
[[ "$LABEL" == *-* ]] && stamp="${LABEL%%-*}-dev"

work="$OUT/istioctl-work"
rm -rf "$work"
mkdir -p "$work"
cp "$OUT/work/go.mod" "$OUT/work/go.sum" "$work/"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
started=$(date +%s)
log "go build istio.io/istio/istioctl/cmd/istioctl ($LABEL) with $(go version)"
(
  cd "$work"
  CGO_ENABLED=0 go build -trimpath -tags=vtprotobuf,disable_pgv \
    -ldflags "-X istio.io/istio/pkg/version.buildVersion=$stamp" -o "$work/istioctl" \
    istio.io/istio/istioctl/cmd/istioctl
)
mv "$work/istioctl" "$OUT/bin/istioctl"
build_s=$(( $(date +%s) - started ))
echo "istioctl_build_seconds=$build_s" >>"$OUT/build-info.txt"
log "done in ${build_s}s ($(( $(stat -c %s "$OUT/bin/istioctl") / 1048576 ))MB)"
echo "$OUT/bin/istioctl"
