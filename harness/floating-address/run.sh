#!/usr/bin/env bash
# The floating-address example hooks on 3 quorumd nodes in network namespaces, with a client
# that keeps connecting to the address: prints the outage the client sees when the master's
# host dies and on a planned handover, and checks the address is never on two hosts during
# the handover. See harness/floating-address/floating.py.
#
#   harness/floating-address/run.sh              # builds the release quorumd first
#   harness/floating-address/run.sh --bin DIR    # DIR/quorumd, no build
#
# Needs root. Installs iproute2 and iputils-arping when missing. About 20 seconds. The last
# line is "N checks, F failed".
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

BIN=""
while (($#)); do
    case $1 in
        --bin) BIN=$(cd "$2" && pwd); shift ;;
        --bin=*) BIN=$(cd "${1#--bin=}" && pwd) ;;
        *) echo "usage: $0 [--bin DIR]" >&2; exit 2 ;;
    esac
    shift
done

source "$HERE/../needs-root-net.sh" arping
if [[ -z $BIN ]]; then
    (cd "$ROOT" && swift build -c release --product quorumd) >&2
    BIN="$ROOT/.build/release"
fi
exec python3 "$HERE/floating.py" --bin "$BIN"
