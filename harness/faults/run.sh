#!/usr/bin/env bash
# Fault injection on real hosts: 5 quorumd nodes in network namespaces, seeded random fault
# schedules, safety and liveness checked. See harness/faults/README.md.
#
#   harness/faults/run.sh --ci                          # the short CI pass (6 fixed schedules, a few minutes)
#   harness/faults/run.sh --schedules 200 --seed 1000   # a longer run (about 20 s per schedule of 4 faults)
#   harness/faults/run.sh --schedules 1 --seed S --faults-per-schedule K   # replay one schedule
#   harness/faults/run.sh --bin DIR ...                 # test other quorumd/quorumctl binaries (no build)
#
# Needs root. Builds the release binaries unless --bin is given (one swift build at a time; SwiftPM
# waits on its lock if another build runs), installs iproute2 and nftables when missing, then
# runs harness/faults/faults.py with the remaining arguments.
# The last line printed is "N schedules, V violations"; the exit status is non-zero on violations.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

ARGS=()
BIN=""
while (($#)); do
    case $1 in
        --ci) ARGS+=(--schedules 6 --seed 12 --faults-per-schedule 4 --max-minutes 8) ;;  # seeds 12..17 cover all 11 kinds
        --bin) BIN=$(cd "$2" && pwd); ARGS+=(--bin "$BIN"); shift ;;
        --bin=*) BIN=$(cd "${1#--bin=}" && pwd); ARGS+=(--bin "$BIN") ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done

source "$HERE/../needs-root-net.sh" gcc

if [[ -z $BIN ]]; then
    (cd "$ROOT" && swift build -c release --product quorumd && swift build -c release --product quorumctl) >&2
fi

# faults.py compiles the clock helper into its own temporary directory and removes its namespaces,
# bridge, processes and files itself, also on SIGINT/SIGTERM (exec: signals reach it directly).
exec python3 "$HERE/faults.py" "${ARGS[@]}"
