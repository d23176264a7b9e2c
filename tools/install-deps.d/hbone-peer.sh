#!/usr/bin/env bash
# Builds tools/hbone-peer (Go's crypto/tls + golang.org/x/net/http2 CONNECT peer) for the
# @ambient-mesh/hbone interop tests. Needs Go (>= the version in tools/hbone-peer/go.mod) and the
# Go module proxy. The binary is cached outside the clone, keyed by a hash of its sources:
#   ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}/hbone-peer/<hash>/hbone-peer
# and the build is skipped when that file already exists. The tests compute the same hash
# (packages/hbone/src/testing/hbone-peer.ts), or take HBONE_PEER_BIN.
set -euo pipefail
src="$(cd "$(dirname "$0")/../hbone-peer" && pwd)"
cache="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}/hbone-peer"
hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
bin="$cache/$hash/hbone-peer"
if [ -x "$bin" ]; then
  echo "hbone-peer: cached at $bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "hbone-peer: Go is not installed; install Go $(sed -n 's/^go //p' "$src/go.mod") or newer" >&2
  exit 1
fi
mkdir -p "$cache/$hash"
tmp="$cache/$hash/hbone-peer.tmp.$$"
(cd "$src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$tmp" .)
mv "$tmp" "$bin"
echo "hbone-peer: built $bin"
