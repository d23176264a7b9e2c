#!/usr/bin/env bash
# The local cluster (e2e/): Debian packages it runs, then the Kubernetes 1.33 control-plane
# binaries and etcd 3.6 built from the Go module proxy into ~/.cache/ambient-mesh/k8s/ (a cold
# build takes about 6.5 minutes on 2 cores; later runs find the cache and return at once).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

pkgs=(
  containernetworking-plugins # bridge, host-local, loopback CNI plugins (/usr/lib/cni)
  iproute2                    # ip netns / link / route
  nftables                    # nft: node masquerade rule; kube-proxy's nftables mode uses netlink itself
  util-linux                  # nsenter, unshare, mount
  openssl                     # cluster PKI
  conntrack                   # debugging kube-proxy's NAT (conntrack -L inside a node netns)
)
if declare -F apt_install >/dev/null; then
  apt_install "${pkgs[@]}"
else
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

bash "$here/../build-k8s.sh" >/dev/null
