#!/usr/bin/env bash
# The Gateway API conformance suite and the backends its manifests run, for `npm run conformance`
# (docs/conformance.md). Same version as the CRDs of gateway-api.sh (v1.4.1), built from the
# sigs.k8s.io/gateway-api module that the Go module proxy serves. Output:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/gateway-conformance/v1.4.1/
#     bin/conformance.test          `go test -c` of sigs.k8s.io/gateway-api/conformance (the suite)
#     bin/echo-basic                sigs.k8s.io/gateway-api/conformance/echo-basic (image echo-basic)
#     echo-advanced/bin/server      Istio's echo server  } what the echo-advanced image holds
#     echo-advanced/bin/client      Istio's echo client  } (`kubectl exec ... client <url>`)
#     echo-advanced/cert.crt, .key  the image's /cert.crt and /cert.key (Istio's test certificate)
#     manifests/mesh.yaml, base.yaml  the suite's own base manifests (the runner applies them ahead)
#     build-info.txt
#
# The echo-advanced image is Istio's echo app (pkg/test/echo/docker/Dockerfile.app); its server and
# client are the ones istio-upstream.sh builds, linked here, and the certificate is the file that
# Dockerfile copies, from the same istio.io/istio module.
#
# Serialised by the flock ~/.cache/ambient-mesh/gateway-conformance/build.lock. Skips all work when
# everything is present. Prints the version's folder as the last line on stdout.
set -euo pipefail

VERSION="${GATEWAY_API_VERSION:-v1.4.1}"
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$CACHE_ROOT/gateway-conformance/$VERSION"
log() { printf '[gateway-conformance] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi

mkdir -p "$CACHE_ROOT/gateway-conformance"
exec 9>"$CACHE_ROOT/gateway-conformance/build.lock"
flock 9

complete() {
  [[ -x "$OUT/bin/conformance.test" && -x "$OUT/bin/echo-basic" && -x "$OUT/echo-advanced/bin/server" &&
    -x "$OUT/echo-advanced/bin/client" && -s "$OUT/echo-advanced/cert.crt" && -s "$OUT/echo-advanced/cert.key" &&
    -s "$OUT/manifests/mesh.yaml" && -s "$OUT/manifests/base.yaml" ]]
}
if complete; then
  log "conformance suite $VERSION present (nothing to build)"
  echo "$OUT"
  exit 0
fi
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$OUT/bin" "$OUT/echo-advanced/bin"
started=$(date +%s)

log "go mod download sigs.k8s.io/gateway-api@$VERSION"
dir="$(go mod download -json "sigs.k8s.io/gateway-api@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$dir" || ! -d "$dir/conformance/echo-basic" ]]; then
  log "the module has no conformance/echo-basic folder (dir: '${dir}')"
  exit 1
fi
mkdir -p "$OUT/manifests"
install -m 0644 "$dir/conformance/mesh/manifests.yaml" "$OUT/manifests/mesh.yaml"
install -m 0644 "$dir/conformance/base/manifests.yaml" "$OUT/manifests/base.yaml"
if [[ ! -x "$OUT/bin/conformance.test" || ! -x "$OUT/bin/echo-basic" ]]; then
  # Built inside the downloaded module, so its own go.mod/go.sum pins apply.
  log "go test -c sigs.k8s.io/gateway-api/conformance ($VERSION) with $(go version) (a few minutes cold)"
  (cd "$dir" && CGO_ENABLED=0 go test -c -trimpath -o "$OUT/bin/conformance.test.tmp" ./conformance)
  mv "$OUT/bin/conformance.test.tmp" "$OUT/bin/conformance.test"
  log "go build sigs.k8s.io/gateway-api/conformance/echo-basic"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$OUT/bin/echo-basic.tmp" ./conformance/echo-basic)
  mv "$OUT/bin/echo-basic.tmp" "$OUT/bin/echo-basic"
fi

# Istio's echo server and client (istio-upstream.sh builds them with its istiod oracle).
istio="$(ISTIO_UPSTREAM_ECHO=1 bash "$HERE/istio-upstream.sh" | tail -n 1)"
if [[ ! -x "$istio/bin/echo-server" || ! -x "$istio/bin/echo-client" ]]; then
  log "istio-upstream.sh gave no echo-server/echo-client in '$istio'"
  exit 1
fi
ln -sfn "$istio/bin/echo-server" "$OUT/echo-advanced/bin/server"
ln -sfn "$istio/bin/echo-client" "$OUT/echo-advanced/bin/client"
module="$(sed -n 's/^module=//p' "$istio/build-info.txt")"
idir="$(go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
certs="$idir/tests/testdata/certs/dns"
if [[ ! -s "$certs/cert-chain.pem" || ! -s "$certs/key.pem" ]]; then
  log "no echo certificate in '$certs' (module '$module')"
  exit 1
fi
install -m 0644 "$certs/cert-chain.pem" "$OUT/echo-advanced/cert.crt"
install -m 0600 "$certs/key.pem" "$OUT/echo-advanced/cert.key"

build_s=$(( $(date +%s) - started ))
{
  echo "version=$VERSION"
  echo "go=$(go env GOVERSION)"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$build_s"
  echo "echo_advanced_from=$istio"
  echo "size_bytes.conformance.test=$(stat -c %s "$OUT/bin/conformance.test")"
  echo "size_bytes.echo-basic=$(stat -c %s "$OUT/bin/echo-basic")"
} >"$OUT/build-info.txt"
log "done in ${build_s}s"
echo "$OUT"
