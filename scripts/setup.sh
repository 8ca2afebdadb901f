#!/usr/bin/env bash
# Installs what building and testing quorum needs on a fresh Debian 12 machine that has the
# Swift toolchain (swift on PATH, or in /opt/swift/usr/bin). Safe to run again.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || { echo "setup: the Swift toolchain is not installed (swift not on PATH)" >&2; exit 1; }

# C libraries and tools from Debian: libsystemd for sd_notify and the journal, pkg-config to
# find it, python3 for the original's .py hooks, iproute2/nftables for namespace tests,
# python3-prometheus-client to parse /metrics the way Prometheus does.
packages=(libsystemd-dev pkg-config python3 iproute2 nftables procps util-linux tcpdump python3-prometheus-client)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
