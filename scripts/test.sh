#!/usr/bin/env bash
# Runs every test of quorum from a clean checkout: installs what is missing, builds,
# runs the unit, simulator and multi-process tests, then 2,000 simulated fault schedules.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== build (debug) =="
swift build --build-tests

echo "== swift test =="
swift test --skip-build

echo "== simulator: 2000 fault schedules (release build) =="
swift build -c release --product quorum-sim
.build/release/quorum-sim --schedules 2000 --seed 1

# The next two need root, network namespaces and (for the second) systemd-nspawn; as
# another user they say "skipped" and succeed. CI runs as root.
echo "== fault injection on real hosts: 5 nodes in network namespaces (short pass) =="
if [ "$(id -u)" -eq 0 ]; then
    harness/faults/run.sh --ci
else
    echo "skipped: fault injection needs root (network namespaces, nftables)"
fi

echo "== networks without broadcast, and IPv6: 3 nodes in network namespaces =="
if [ "$(id -u)" -eq 0 ]; then
    harness/networks/run.sh
else
    echo "skipped: the network tests need root (network namespaces, nftables)"
fi

echo "== a floating address that follows the master: 3 nodes and a client in network namespaces =="
if [ "$(id -u)" -eq 0 ]; then
    harness/floating-address/run.sh
else
    echo "skipped: the floating-address test needs root (network namespaces, ip address)"
fi

echo "== end to end under systemd: the Debian package in 3 containers =="
harness/e2e/systemd-cluster.sh
