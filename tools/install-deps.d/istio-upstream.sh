#!/usr/bin/env bash
# Upstream istiod, the oracle for istiod's differential check (docs/compatibility.md).
# Builds from the Go module proxy (local-cluster-recipe.md, Recipe B) into a cache outside the
# clone, keyed by the version label:
#
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/istio/<label>/bin/pilot-discovery   (istiod)
#                                                            bin/echo-server, bin/echo-client
#                                                            bin/extauthz (samples/extauthz ext-authz server)
#                                                            crds/crd-all.gen.yaml, crds/gateway-api-crd.yaml
#                                                            build-info.txt (version, cold build time, sizes)
#
# Wanted: Istio 1.27.3 (the tag commit df538c2279a6). The Go module proxy this project reaches
# refuses that pseudo-version ("This module version is not available"), so the script falls back
# to the release-1.30 branch commit 9739e10eb9d7 (label 1.30-9739e10eb9d7), which it serves.
# Some of that commit's own dependency versions are refused too, so the fallback pins the nearest
# served ones (see candidate_pins below). docs/compatibility.md says what the fallback changes.
#
# Method: a throw-away main module (in the cache dir) that requires istio.io/istio at the chosen
# pseudo-version plus the pins, with the go directive of istio's go.mod (so GODEBUG defaults match
# an upstream build); then `go build` of the main packages. Flags are the ones Istio's own build
# uses: CGO_ENABLED=0, -trimpath, tags vtprotobuf,disable_pgv, version stamped through
# istio.io/istio/pkg/version.buildVersion. The CRD files come from the same module in the Go
# module cache and are copied next to the binaries so `go clean -modcache` does not lose them.
#
# Skips all work when everything is present. Prints the version dir as the last line on stdout.
# Env: ISTIO_UPSTREAM_CANDIDATES  space-separated label=pseudo-version list, tried in order
#      ISTIO_UPSTREAM_ECHO=0      skip the echo binaries
#      ISTIO_UPSTREAM_EXTAUTHZ=0  skip Istio's sample ext-authz server (samples/extauthz/cmd/extauthz:
#                                 allows requests carrying `x-ext-authz: allow`; HTTP on -http, gRPC
#                                 v2/v3 Authorization on -grpc), used by the waypoint's ext_authz tests
#      AMBIENT_MESH_CACHE
set -euo pipefail

CANDIDATES="${ISTIO_UPSTREAM_CANDIDATES:-1.27.3=v0.0.0-20251017121353-df538c2279a6 1.30-9739e10eb9d7=v0.0.0-20260826214018-9739e10eb9d7}"
MODULE=istio.io/istio
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
WITH_ECHO="${ISTIO_UPSTREAM_ECHO:-1}"
WITH_EXTAUTHZ="${ISTIO_UPSTREAM_EXTAUTHZ:-1}"

log() { printf '[istio-upstream] %s\n' "$*" >&2; }

# Dependency versions to require on top of istio's own (only raises versions: MVS picks the max).
candidate_pins() {
  case "$1" in
    # istio.io/api, client-go and go-control-plane pseudo-versions of that commit are refused by the
    # proxy; the next served releases on the same lines are used.
    1.30-9739e10eb9d7) echo "istio.io/api@v1.30.8 istio.io/client-go@v1.30.8" \
      "github.com/envoyproxy/go-control-plane/envoy@v1.38.0" \
      "github.com/envoyproxy/go-control-plane/contrib@v1.36.1-0.20260713214202-ca8ce173c36f" ;;
  esac
}
# Replacements in the throw-away module (a lower version than istio requires needs a replace).
candidate_replaces() {
  case "$1" in
    # agentgateway/api v0.0.0-20260506232448-6ae4ab07bb06 is refused; the served 2026-05-01 commit
    # compiles with it (used only by istiod's agentgateway controller, not by ambient WDS).
    1.30-9739e10eb9d7) echo "github.com/agentgateway/agentgateway/api=github.com/agentgateway/agentgateway/api@v0.0.0-20260501213430-773586679f1c" ;;
  esac
}

wanted=(pilot-discovery)
[[ "$WITH_ECHO" == "1" ]] && wanted+=(echo-server echo-client)
[[ "$WITH_EXTAUTHZ" == "1" ]] && wanted+=(extauthz)
complete() { # <out dir>: everything present?
  local b
  for b in "${wanted[@]}"; do [[ -x "$1/bin/$b" ]] || return 1; done
  [[ -s "$1/crds/crd-all.gen.yaml" && -s "$1/crds/gateway-api-crd.yaml" ]]
}

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi

# Pick the first candidate that is cached, or that the module proxy serves.
VERSION="" PSEUDO="" moddir=""
for c in $CANDIDATES; do
  label="${c%%=*}" pseudo="${c#*=}"
  if complete "$CACHE_ROOT/istio/$label"; then
    log "istio $label present in $CACHE_ROOT/istio/$label (nothing to build)"
    echo "$CACHE_ROOT/istio/$label"
    exit 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    log "the Go toolchain (1.25 or newer) is needed to build istio $label; install Go"
    exit 1
  fi
  json="$(GOFLAGS=-mod=mod go mod download -json "$MODULE@$pseudo" 2>&1 || true)"
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -n "$dir" && -d "$dir" ]]; then
    VERSION="$label" PSEUDO="$pseudo" moddir="$dir"
    break
  fi
  log "istio $label ($MODULE@$pseudo) is not available from the module proxy: $(printf '%s' "$json" | sed -n 's/.*"Error": "\(.*\)".*/\1/p' | head -c 300)"
done
if [[ -z "$VERSION" ]]; then
  log "none of the candidates ($CANDIDATES) could be downloaded; check GOPROXY and network access"
  exit 1
fi
OUT="$CACHE_ROOT/istio/$VERSION"
BIN="$OUT/bin"
CRDS="$OUT/crds"

missing=()
for b in "${wanted[@]}"; do [[ -x "$BIN/$b" ]] || missing+=("$b"); done
# An exact release label is stamped as is; a branch-commit label as <minor>-dev, like Istio's Makefile.
stamp="$VERSION"
[[ "$VERSION" == *-* ]] && stamp="${VERSION%%-*}-dev"

log "building istio $VERSION ($MODULE@$PSEUDO) with $(go version)"
mkdir -p "$BIN" "$CRDS"
# A scratch GOBIN so `go install` output (named server/client) never half-lands in $BIN.
stage="$OUT/stage.$$"
mkdir -p "$stage"
trap 'rm -rf "$stage"' EXIT

started=$(date +%s)
if [[ ${#missing[@]} -gt 0 ]]; then
  pkgs=()
  for b in "${missing[@]}"; do
    case "$b" in
      pilot-discovery) pkgs+=("$MODULE/pilot/cmd/pilot-discovery") ;;
      echo-server) pkgs+=("$MODULE/pkg/test/echo/cmd/server") ;;
      echo-client) pkgs+=("$MODULE/pkg/test/echo/cmd/client") ;;
      extauthz) pkgs+=("$MODULE/samples/extauthz/cmd/extauthz") ;;
    esac
  done
  work="$OUT/work"
  rm -rf "$work"
  mkdir -p "$work"
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local
  (
    cd "$work"
    go mod init local/istio-upstream >/dev/null 2>&1
    go mod edit -go="$(sed -n 's/^go //p' "$moddir/go.mod")"
    for r in $(candidate_replaces "$VERSION"); do go mod edit -replace "$r"; done
    gets=()
    for p in "${pkgs[@]}"; do gets+=("$p@$PSEUDO"); done
    # shellcheck disable=SC2046 # the pins are whitespace-separated module@version words
    log "go get ${gets[*]} $(candidate_pins "$VERSION")"
    if ! go get "${gets[@]}" $(candidate_pins "$VERSION") 2>"$work/go-get.log"; then
      grep -v '^go: downloading' "$work/go-get.log" >&2
      log "go get failed; the module proxy may have stopped serving a pinned version"
      exit 1
    fi
    log "go build ${pkgs[*]} (a cold build takes about 15 minutes on 2 shared cores)"
    CGO_ENABLED=0 go build -trimpath -tags=vtprotobuf,disable_pgv \
      -ldflags "-X istio.io/istio/pkg/version.buildVersion=$stamp" -o "$stage/" "${pkgs[@]}"
  )
  for b in "${missing[@]}"; do
    case "$b" in
      pilot-discovery) src="$stage/pilot-discovery" ;;
      echo-server) src="$stage/server" ;;
      echo-client) src="$stage/client" ;;
      extauthz) src="$stage/extauthz" ;;
    esac
    mv "$src" "$BIN/$b"
  done
fi
build_s=$(( $(date +%s) - started ))

install -m 0644 "$moddir/manifests/charts/base/files/crd-all.gen.yaml" "$CRDS/crd-all.gen.yaml"
install -m 0644 "$moddir/tests/integration/pilot/testdata/gateway-api-crd.yaml" "$CRDS/gateway-api-crd.yaml"
log "CRDs copied from $moddir"

{
  echo "version=$VERSION"
  echo "module=$MODULE@$PSEUDO"
  echo "go=$(go env GOVERSION)"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$build_s"
  echo "built=${missing[*]}"
  echo "pins=$(candidate_pins "$VERSION" | tr '\n' ' ')"
  echo "replaces=$(candidate_replaces "$VERSION" | tr '\n' ' ')"
  for b in "${wanted[@]}"; do echo "size_bytes.$b=$(stat -c %s "$BIN/$b")"; done
} >"$OUT/build-info.txt"
log "done in ${build_s}s: $(for b in "${wanted[@]}"; do printf '%s=%sMB ' "$b" $(( $(stat -c %s "$BIN/$b") / 1048576 )); done)"
"$BIN/pilot-discovery" version --short >&2 2>/dev/null || true
echo "$OUT"
