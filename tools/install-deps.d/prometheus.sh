#!/usr/bin/env bash
# Debian's Prometheus server, which the Kiali cluster test runs (scraping the mesh's pods) and Kiali
# queries. Only the binary is used: the test runs it with its own configuration and data folder, the
# packaged service is left as the package installs it.
set -euo pipefail

if ! declare -F apt_install >/dev/null; then
  apt_install() {
    local missing=()
    for p in "$@"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "prometheus.sh: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi

apt_install prometheus
prometheus --version 2>&1 | head -n 1
