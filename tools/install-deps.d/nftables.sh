#!/usr/bin/env bash
# Debian packages for @ambient-mesh/nft-rules and @ambient-mesh/netns:
#   nftables     nft, which renders/applies/diffs the in-pod and host rulesets (tests: nft -c, apply, list)
#   iproute2     ip netns / ip rule / ip route (test namespaces, policy routing table 100)
#   conntrack    conntrack -L inside a pod netns when debugging redirection
#   util-linux   nsenter (executor for netns paths) and setpriv (missing-capability test)
#   procps       sysctl (the in-pod net.ipv4.tcp_migrate_req setting)
#   make g++ python3 nodejs
#                node-gyp compiles the netns addon at `npm ci`; npm's nodedir (/usr) points at the
#                Node headers the nodejs package ships, so nothing is downloaded
# Idempotent: installs only what is missing.
set -euo pipefail

if ! declare -F apt_install >/dev/null; then
  apt_install() {
    local missing=()
    for p in "$@"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "nftables.sh: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi

apt_install nftables iproute2 conntrack util-linux procps make g++ python3 nodejs
nft --version
