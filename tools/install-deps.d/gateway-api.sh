#!/usr/bin/env bash
# Gateway API CRDs, v1.4.1 experimental channel, from the sigs.k8s.io/gateway-api module that the Go
# module proxy serves (never copied into the repo). Output:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/gateway-api/v1.4.1/crds/*.yaml
#
# Serialised by the flock ~/.cache/ambient-mesh/gateway-api/gateway-api.lock. Skips all work when the
# CRDs are present. Prints the CRD folder as the last line on stdout.
set -euo pipefail

VERSION="${GATEWAY_API_VERSION:-v1.4.1}"
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
OUT="$CACHE_ROOT/gateway-api/$VERSION"
log() { printf '[gateway-api] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi

mkdir -p "$CACHE_ROOT/gateway-api"
exec 9>"$CACHE_ROOT/gateway-api/gateway-api.lock"
flock 9

if compgen -G "$OUT/crds/gateway.networking.k8s.io_httproutes.yaml" >/dev/null; then
  log "CRDs $VERSION present"
  echo "$OUT/crds"
  exit 0
fi
log "go mod download sigs.k8s.io/gateway-api@$VERSION"
dir="$(GOFLAGS=-mod=mod GOTOOLCHAIN=local go mod download -json "sigs.k8s.io/gateway-api@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$dir" || ! -d "$dir/config/crd/experimental" ]]; then
  log "the module has no config/crd/experimental folder (dir: '${dir}')"
  exit 1
fi
rm -rf "$OUT/crds.tmp"
mkdir -p "$OUT/crds.tmp"
cp "$dir"/config/crd/experimental/*.yaml "$OUT/crds.tmp/"
rm -f "$OUT/crds.tmp/kustomization.yaml"
chmod u+w "$OUT"/crds.tmp/*.yaml
rm -rf "$OUT/crds"
mv "$OUT/crds.tmp" "$OUT/crds"
log "$(ls "$OUT/crds" | wc -l) CRDs in $OUT/crds"
echo "$OUT/crds"
