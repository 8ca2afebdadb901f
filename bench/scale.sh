#!/usr/bin/env bash
# Scale figures (issue 16): 5, 25, 50 and 100 quorumd nodes on loopback, all started in the
# same second; see bench/scale.py for what is measured. Release builds only.
#
#   swift build -c release && bench/scale.sh
#   bench/scale.sh --sizes 5,25 --runs 10 --idle 10
#
# Environment: QUORUMD (the release binary). Arguments go to scale.py (--sizes, --runs,
# --idle, --deadline, --keep). A 100-node run takes a few minutes and saturates 2 cores with
# today's full mesh: keep it out of CI (CI runs `--sizes 5 --runs 3` at most).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUORUMD=${QUORUMD:-$ROOT/.build/release/quorumd}
[[ -x $QUORUMD ]] || { echo "scale.sh: $QUORUMD not found; run: swift build -c release" >&2; exit 1; }
command -v cc >/dev/null || { echo "scale.sh: needs a C compiler (cc)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/qscale-bin-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -Wall -o "$TMP/qbench" "$ROOT/bench/qbench.c"
# Up to 100 nodes and their links: raise the soft limit on open files if it is low.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
python3 "$ROOT/bench/scale.py" --quorumd "$QUORUMD" --qbench "$TMP/qbench" "$@"
