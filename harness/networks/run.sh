#!/usr/bin/env bash
# Networks without broadcast, and IPv6: 3 quorumd nodes in network namespaces (seeds over IPv4
# with discovery dropped, multicast discovery over IPv6 only, seeds over IPv6 only, a rolling
# upgrade, a packet capture), and two nodes with a witness (crash of the master, of the slave,
# the link between the two cut, the witness down). See harness/networks/networks.py.
#
#   harness/networks/run.sh                    # every scenario (CI), about 30 s
#   harness/networks/run.sh --scenarios seeds-v4
#   harness/networks/run.sh --scenarios witness-crash-master,witness-crash-slave,witness-cut-link,witness-down
#   harness/networks/run.sh --bench 20         # failover medians, broadcast vs seeds only
#   harness/networks/run.sh --bin DIR ...      # other binaries (DIR/quorumd), no build
#
# Needs root. Builds the release quorumd unless --bin is given, installs iproute2 and nftables
# when missing. The last line is "N scenarios, F failed" (or the benchmark's figures).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

BIN=""
ARGS=()
while (($#)); do
    case $1 in
        --bin) BIN=$(cd "$2" && pwd); shift ;;
        --bin=*) BIN=$(cd "${1#--bin=}" && pwd) ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done

source "$HERE/../needs-root-net.sh" tcpdump
if [[ -z $BIN ]]; then
    (cd "$ROOT" && swift build -c release --product quorumd) >&2
    BIN="$ROOT/.build/release"
fi
exec python3 "$HERE/networks.py" --bin "$BIN" "${ARGS[@]}"
