#!/usr/bin/env bash
# Builds tools/kubelet-stream: the local cluster's kubelet streaming server (exec, attach,
# port-forward, run), built on k8s.io/kubelet/pkg/cri/streaming at the Kubernetes version
# tools/build-k8s.sh builds (docs/local-cluster.md, "Streaming"). Needs Go and the Go module proxy.
# The binary is cached outside the clone, keyed by a hash of its sources:
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/kubelet-stream/<hash>/kubelet-stream
# and the build is skipped when that file exists. Prints the binary's path as the last line. The kubelet computes the same hash
# (e2e/src/kubelet/stream-server.ts) or takes KUBELET_STREAM_BIN.
set -euo pipefail
src="$(cd "$(dirname "$0")/../kubelet-stream" && pwd)"
cache="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}/kubelet-stream"
hash="$(cd "$src" && cat go.mod go.sum $(ls *.go | LC_ALL=C sort) | sha256sum | cut -c1-16)"
bin="$cache/$hash/kubelet-stream"
if [ -x "$bin" ]; then
  echo "kubelet-stream: cached at $bin" >&2
  echo "$bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -x "$candidate" ]; then PATH="$(dirname "$candidate"):$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "kubelet-stream: Go is not installed; install Go $(sed -n 's/^go //p' "$src/go.mod") or newer" >&2
  exit 1
fi
mkdir -p "$cache/$hash"
tmp="$cache/$hash/kubelet-stream.tmp.$$"
(cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-mod=readonly -buildvcs=false" \
  go build -trimpath -ldflags "-s -w" -o "$tmp" .)
mv "$tmp" "$bin"
echo "kubelet-stream: built $bin" >&2
echo "$bin"
