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
