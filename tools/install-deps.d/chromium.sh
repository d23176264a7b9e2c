#!/usr/bin/env bash
# Debian's Chromium, which the console's browser tests drive through playwright-core's
# `executablePath` (Playwright never downloads a browser here). playwright-core 1.65 speaks the
# Chrome DevTools Protocol of this Chromium (156 in bookworm's security updates).
#   fonts-liberation  a metric-compatible sans font, so pages lay out as they would on a desktop
set -euo pipefail

if ! declare -F apt_install >/dev/null; then
  apt_install() {
    local missing=()
    for p in "$@"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "chromium.sh: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi

apt_install chromium fonts-liberation
chromium --version 2>/dev/null | head -n 1
