#!/usr/bin/env bash
# Installs what a fresh machine lacks for the whole test suite, then builds the external tools the
# tests run against. Every step is idempotent; expensive builds are cached outside the clone under
# ${AMBIENT_MESH_CACHE:-~/.cache/ambient-mesh}, so a second run is quick.
#
# Each script in tools/install-deps.d/ installs one area's needs (Debian packages, Go builds). This
# script runs them in name order and stops at the first failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export AMBIENT_MESH_CACHE="${AMBIENT_MESH_CACHE:-$HOME/.cache/ambient-mesh}"
mkdir -p "$AMBIENT_MESH_CACHE"

# apt_install PKG...: installs the Debian packages that are missing, refreshing the index once.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "install-deps: apt-get install ${missing[*]}"
  if [ ! -f /var/lib/apt/periodic/ambient-mesh-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/ambient-mesh-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
export -f apt_install

# Tools every area uses: iproute2 for netns, openssl for certificate checks, git for generated-code checks.
apt_install iproute2 openssl git ca-certificates

shopt -s nullglob
for script in "$here"/install-deps.d/*.sh; do
  echo "install-deps: $(basename "$script")"
  start=$(date +%s)
  bash "$script"
  echo "install-deps: $(basename "$script") done in $(( $(date +%s) - start )) s"
done
