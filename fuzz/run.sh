#!/usr/bin/env bash
# Builds the libFuzzer targets and runs one of them (or all, one after another).
#
#   fuzz/run.sh [TARGET|all] [SECONDS]      TARGET: FuzzWire FuzzSealed FuzzControl FuzzKeyFile FuzzConfig
#
# Corpora live in fuzz/corpus/TARGET (kept out of git); crashing inputs land in
# fuzz/artifacts/TARGET. Inputs that once crashed are copied to fuzz/regressions/TARGET and
# are replayed by `fuzz/run.sh replay` (each file run once through its target).
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-all}
seconds=${2:-60}
targets=(FuzzWire FuzzSealed FuzzControl FuzzKeyFile FuzzConfig)

# Build once; FUZZ_NO_BUILD=1 reuses the targets (to run several fuzzers at once).
if [ "${FUZZ_NO_BUILD:-0}" = 1 ] && [ -x .build-fuzz/targets/FuzzWire ]; then
    bin=.build-fuzz/targets
else
    bin=$(./build-targets.sh)
fi

if [ "$target" = replay ]; then
    for t in "${targets[@]}"; do
        [ -d "regressions/$t" ] || continue
        "$bin/$t" -runs=1 regressions/$t/*
    done
    exit 0
fi
[ "$target" = all ] && set -- "${targets[@]}" || set -- "$target"
for t in "$@"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== $t for ${seconds}s" >&2
    "$bin/$t" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 -artifact_prefix="artifacts/$t/" "corpus/$t" 2>&1 | tail -n 5
done
