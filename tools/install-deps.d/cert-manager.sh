#!/usr/bin/env bash
# cert-manager's CertificateSigningRequest CA signer (the real signer of the Kubernetes CSR path),
# built from the Go module proxy: the root module github.com/cert-manager/cert-manager at
# CERT_MANAGER_VERSION and the small main in tools/cert-manager (its go.mod/go.sum pin the graph).
# Output:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/cert-manager/<version>/bin/cert-manager-signer
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/cert-manager/<version>/crds/cert-manager.io_*.yaml
#
# Serialised by the flock <output>/build.lock. Skips all work when the binary was built from the
# same main.go/go.mod/go.sum (their SHA-256 is kept in <output>/main.sha256). Prints the output
# folder as the last line on stdout.
set -euo pipefail

VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/../cert-manager"
OUT="$CACHE_ROOT/cert-manager/$VERSION"
log() { printf '[cert-manager] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi

mkdir -p "$OUT/bin" "$OUT/crds"
exec 9>"$OUT/build.lock"
flock 9

want="$(cat "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" | sha256sum | cut -d' ' -f1)"
have="$(cat "$OUT/sources.sha256" 2>/dev/null || true)"
if [[ -x "$OUT/bin/cert-manager-signer" && "$want" == "$have" && -s "$OUT/crds/cert-manager.io_clusterissuers.yaml" ]]; then
  log "cert-manager-signer $VERSION present (nothing to build)"
  echo "$OUT"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  log "go not found: install Go (tools/install-deps.d) to build cert-manager-signer"
  exit 1
fi
if ! grep -q "github.com/cert-manager/cert-manager $VERSION\$" "$SRC/go.mod"; then
  log "tools/cert-manager/go.mod does not require cert-manager $VERSION; update it (go get) first"
  exit 1
fi

work="$OUT/work"
rm -rf "$work"
mkdir -p "$work"
cp "$SRC/main.go" "$SRC/go.mod" "$SRC/go.sum" "$work/"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
started=$(date +%s)
log "go build cert-manager-signer (cert-manager $VERSION) with $(go version)"
(
  cd "$work"
  CGO_ENABLED=0 go build -trimpath -o "$work/cert-manager-signer" .
)
mv "$work/cert-manager-signer" "$OUT/bin/cert-manager-signer"
moddir="$(cd "$work" && go list -m -f '{{.Dir}}' "github.com/cert-manager/cert-manager")"
cp "$moddir"/deploy/crds/cert-manager.io_*.yaml "$OUT/crds/"
chmod u+w "$OUT"/crds/*.yaml
echo "$want" >"$OUT/sources.sha256"
build_s=$(( $(date +%s) - started ))
echo "cert_manager_signer_build_seconds=$build_s" >>"$OUT/build-info.txt"
log "done in ${build_s}s"
echo "$OUT"
