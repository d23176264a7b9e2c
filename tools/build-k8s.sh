#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the local cluster runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy) and etcd from the Go module proxy,
# into a cache outside the clone:
#
#   ~/.cache/ambient-mesh/k8s/<k8s version>-etcd<etcd version>/bin/
#
# Method (docs/local-cluster.md, "Binaries"): k8s.io/kubernetes cannot be `go install`ed because
# its go.mod replaces every staging module with a local directory. A throw-away main module
# requires k8s.io/kubernetes and replaces each staging module (read from that exact go.mod) with
# its published v0.<minor>.<patch>; then it builds the cmd/ main packages of the dependency.
# etcd gets its own throw-away module so its dependency versions do not move Kubernetes' ones.
#
# Skips all work when the binaries are already in the cache. Prints the bin dir as the last line.
#
# Honoured overrides (the names envtest uses, so setup-envtest output works unchanged):
#   TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD   paths to single binaries
#   KUBEBUILDER_ASSETS                           a dir holding kube-apiserver and/or etcd
# Overridden binaries are symlinked into the cache dir instead of being built; the other
# components are still built.
#
# Env: K8S_VERSION (default below), ETCD_VERSION, AMBIENT_MESH_CACHE (default ~/.cache/ambient-mesh).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
OUT="$CACHE_ROOT/k8s/${K8S_VERSION#v}-etcd${ETCD_VERSION#v}"
BIN="$OUT/bin"
K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl)

log() { printf '[build-k8s] %s\n' "$*" >&2; }

mkdir -p "$BIN"

# --- overrides ---------------------------------------------------------------------------------
link_override() { # <name> <path>
  if [[ ! -x "$2" ]]; then
    log "override for $1 points at '$2', which is not an executable file; check the variable"
    exit 1
  fi
  ln -sf "$(realpath "$2")" "$BIN/$1"
  log "$1: using $2"
}
apiserver_override="${TEST_ASSET_KUBE_APISERVER:-}"
etcd_override="${TEST_ASSET_ETCD:-}"
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  [[ -z "$apiserver_override" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]] &&
    apiserver_override="$KUBEBUILDER_ASSETS/kube-apiserver"
  [[ -z "$etcd_override" && -x "$KUBEBUILDER_ASSETS/etcd" ]] && etcd_override="$KUBEBUILDER_ASSETS/etcd"
fi
[[ -n "$apiserver_override" ]] && link_override kube-apiserver "$apiserver_override"
[[ -n "$etcd_override" ]] && link_override etcd "$etcd_override"

missing_k8s=()
for c in "${K8S_COMPONENTS[@]}"; do
  [[ -x "$BIN/$c" ]] || missing_k8s+=("$c")
done
need_etcd=0
[[ -x "$BIN/etcd" ]] || need_etcd=1

if [[ ${#missing_k8s[@]} -eq 0 && $need_etcd -eq 0 ]]; then
  log "binaries present in $BIN (nothing to build)"
  echo "$BIN"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [[ -x "$candidate" ]]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  log "the Go toolchain (1.24 or newer) is needed to build $K8S_VERSION; install it or set KUBEBUILDER_ASSETS"
  exit 1
fi
log "using $(go version)"

started=$(date +%s)
WORK="$OUT/work"
mkdir -p "$WORK"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- Kubernetes ----------------------------------------------------------------------------------
if [[ ${#missing_k8s[@]} -gt 0 ]]; then
  minor_patch="${K8S_VERSION#v1.}" # 33.13
  staging_version="v0.${minor_patch}"
  major=1
  minor="${minor_patch%%.*}"
  mod="$WORK/k8s"
  rm -rf "$mod"
  mkdir -p "$mod"
  cd "$mod"
  log "downloading k8s.io/kubernetes@$K8S_VERSION metadata"
  gomod_file="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$gomod_file" ]] || { log "could not locate go.mod of k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  go_line="$(awk '$1=="go"{print $2; exit}' "$gomod_file")"
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\1#p' "$gomod_file")
  log "k8s.io/kubernetes $K8S_VERSION: go $go_line, ${#staging[@]} staging modules -> $staging_version"
  go mod init local/k8sbin >/dev/null 2>&1
  go mod edit -go="$go_line"
  for m in "${staging[@]}"; do
    go mod edit -replace "$m=$m@$staging_version"
  done
  go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
  cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  log "resolving modules (go mod tidy; downloads a few hundred MB on a cold cache)"
  go mod tidy -e >/dev/null
  vpkg=k8s.io/component-base/version
  cpkg=k8s.io/client-go/pkg/version
  ldflags="-s -w"
  for p in "$vpkg" "$cpkg"; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date -X $p.gitCommit=module-proxy"
  done
  for c in "${missing_k8s[@]}"; do
    t0=$(date +%s)
    log "building $c $K8S_VERSION"
    go build -trimpath -tags=grpcnotrace -ldflags "$ldflags" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$BIN/$c.tmp" "$BIN/$c"
    log "built $c in $(($(date +%s) - t0)) s ($(du -h "$BIN/$c" | cut -f1))"
  done
fi

# --- etcd ------------------------------------------------------------------------------------------
if [[ $need_etcd -eq 1 ]]; then
  mod="$WORK/etcd"
  rm -rf "$mod"
  mkdir -p "$mod"
  cd "$mod"
  go mod init local/etcdbin >/dev/null 2>&1
  cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy -e >/dev/null
  t0=$(date +%s)
  log "building etcd $ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  log "built etcd in $(($(date +%s) - t0)) s ($(du -h "$BIN/etcd" | cut -f1))"
fi

rm -rf "$WORK"
log "done in $(($(date +%s) - started)) s; binaries in $BIN"
echo "$BIN"
