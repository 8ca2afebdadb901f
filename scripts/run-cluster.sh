#!/usr/bin/env bash
# Starts a local cluster of quorumd nodes on loopback (broadcast 127.255.255.255, so nothing
# leaves this machine), shows who is master, then follows the nodes' logs until Ctrl+C.
#
#   scripts/run-cluster.sh [NODES]        (default 3, at most 9)
#
# While it runs, in another terminal:  .build/release/quorumctl --socket /tmp/quorum-cluster/A.sock status
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

nodes=${1:-3}
[[ "$nodes" =~ ^[1-9]$ ]] || { echo "usage: $0 [NODES 1-9]" >&2; exit 64; }

swift build -c release --product quorumd >/dev/null
swift build -c release --product quorumctl >/dev/null
bin=.build/release
dir=/tmp/quorum-cluster
rm -rf "$dir"
mkdir -p "$dir"

pids=()
cleanup() {
    trap - EXIT INT TERM  # once: Ctrl+C would otherwise run it again on the way out
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "cluster stopped; logs were in $dir"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

names=(A B C D E F G H I)
for ((i = 0; i < nodes; i++)); do
    n=${names[$i]}
    "$bin/quorumd" 127.0.0.1 $((6170 + i)) 127.255.255.255 5595 -n "$n" -d \
        --state-dir "$dir/$n" --control-socket "$dir/$n.sock" >"$dir/$n.log" 2>&1 &
    pids+=($!)
    # One after another, as the original's nodes were started: the next once this one answers.
    for _ in $(seq 1 50); do
        "$bin/quorumctl" --socket "$dir/$n.sock" status --json >/dev/null 2>&1 && break
        [ $? -eq 2 ] && break
        sleep 0.02
    done
done

# Wait (bounded) until every node answers and names a master.
for _ in $(seq 1 100); do
    ready=0
    for ((i = 0; i < nodes; i++)); do
        n=${names[$i]}
        "$bin/quorumctl" --socket "$dir/$n.sock" status --json 2>/dev/null | grep -q '"master" : "' && ready=$((ready + 1))
    done
    [ "$ready" -eq "$nodes" ] && break
    sleep 0.1
done

for ((i = 0; i < nodes; i++)); do
    n=${names[$i]}
    echo "--- node $n"
    "$bin/quorumctl" --socket "$dir/$n.sock" status || true
done
echo "--- peers of A"
"$bin/quorumctl" --socket "$dir/A.sock" peers || true
echo
echo "Cluster running. Try: $bin/quorumctl --socket $dir/A.sock status   (Ctrl+C here stops every node)"
tail -n +1 -f "$dir"/*.log
