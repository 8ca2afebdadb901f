#!/usr/bin/env bash
# Failover and footprint figures for quorumd: a local cluster of 5 release-built nodes on
# loopback (127.0.0.1, discovery on 127.255.255.255 — never the real network), measured with
# CLOCK_MONOTONIC through a small C helper (bench/qbench.c, compiled here with cc) that is also
# the role hook, so no shell start-up is measured.
#
#   (a) SIGKILL of the master  -> the new master's hook starts   (RUNS times; the killed node is
#       restarted under its name and the bench waits until all 5 agree again before the next run)
#   (b) SIGTERM of the master (graceful leave) -> the new master's hook starts (same)
#   (e) `quorumctl step-down` asked of a slave -> the new master's hook starts, and the old
#       master's slave hook start -> the new master's hook start (the handover itself; the bench
#       fails if the new master's hook ever starts before the old master's slave hook)
#   (c) a new node's exec -> its slave hook starts, and -> `quorumctl status` on it first names
#       the agreed master (the node then leaves with SIGTERM and re-enters in the next run)
#   (d) idle CPU (% of one core) and RSS (MB) of each of the 5 nodes over IDLE_SECONDS
#
# Usage: swift build -c release && bench/failover.sh
# Environment: RUNS (20), IDLE_SECONDS (30), QUORUMD / QUORUMCTL (the release binaries),
#              BENCH_TIMEOUT (total seconds allowed, 900), SAMPLES=1 (print every sample),
#              KEEP=1 (keep the temporary directory with logs and hooks.log),
#              STEP_DOWN=0 (skip (e), to compare with a build that has no step-down),
#              METRICS=1 (every node serves --metrics-listen on 127.0.0.1, scraped once a
#              second during the idle measurement, as a Prometheus would).
# Every process and the temporary directory are removed on exit, whatever happens.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUORUMD=${QUORUMD:-$ROOT/.build/release/quorumd}
QUORUMCTL=${QUORUMCTL:-$ROOT/.build/release/quorumctl}
RUNS=${RUNS:-20}
IDLE_SECONDS=${IDLE_SECONDS:-30}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
BCAST=127.255.255.255
NODES=(n1 n2 n3 n4 n5)
JOINER=j1

for binary in "$QUORUMD" "$QUORUMCTL"; do
    [[ -x $binary ]] || { echo "failover.sh: $binary not found; run: swift build -c release" >&2; exit 1; }
done
command -v cc >/dev/null || { echo "failover.sh: needs a C compiler (cc)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/qb-XXXXXX)
declare -A PID=() PORT=()
cleanup() {
    local name
    for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null || true; done
    { wait; } 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -Wall -o "$DIR/qbench" "$ROOT/bench/qbench.c"
cp "$DIR/qbench" "$DIR/master-hook"
cp "$DIR/qbench" "$DIR/slave-hook"
QB=$DIR/qbench
HOOKS=$DIR/hooks.log
: >"$HOOKS"

now_s() { printf '%s' "${EPOCHREALTIME%.*}"; }
BENCH_END=$(( $(now_s) + BENCH_TIMEOUT ))

fail() {
    echo "failover.sh: $*" >&2
    local name
    for name in "${NODES[@]}" "$JOINER"; do
        [[ -f $DIR/$name.log ]] || continue
        echo "----- last lines of $name's log -----" >&2
        tail -n 25 "$DIR/$name.log" >&2
    done
    exit 1
}

# Ports: a discovery port and one TCP port per node, below the ephemeral range, all free.
port_free() { ! ss -Htaun "( sport = :$1 )" 2>/dev/null | grep -q .; }
for attempt in $(seq 1 100); do
    base=$(( 20000 + RANDOM % 10000 ))
    ok=1
    for p in $(seq "$base" $(( base + ${#NODES[@]} + 1 ))); do port_free "$p" || { ok=0; break; }; done
    (( ok )) && break
done
(( ok )) || fail "no free port range found"
BPORT=$base
i=1
for name in "${NODES[@]}" "$JOINER"; do PORT[$name]=$(( base + i )); i=$(( i + 1 )); done

start_node() {
    local name=$1
    METRICS_ARGS=()
    [ "${METRICS:-0}" = 1 ] && METRICS_ARGS=(--metrics-listen "127.0.0.1:$(( ${PORT[$name]} + 1000 ))")
    # qbench exec records the spawn time, then becomes quorumd (same pid).
    "$QB" exec "$DIR/$name.spawn" "$QUORUMD" 127.0.0.1 "${PORT[$name]}" "$BCAST" "$BPORT" -n "$name" \
        --state-dir "$DIR/state-$name" --control-socket "$DIR/$name.sock" \
        -m "$DIR/master-hook" -s "$DIR/slave-hook" "${METRICS_ARGS[@]}" >>"$DIR/$name.log" 2>&1 </dev/null &
    PID[$name]=$!
}

# "master role clusterSize lost quorate" of a node, or nothing if it does not answer.
status_of() {
    local json
    json=$("$QUORUMCTL" --socket "$DIR/$1.sock" status --json 2>/dev/null) || [[ $? -eq 2 ]] || return 1
    [[ -n $json ]] || return 1
    if command -v jq >/dev/null; then
        jq -r '[.master // "null", .role, .clusterSize, .lost, .quorate] | join(" ")' <<<"$json"
    else
        local key out=""
        for key in master role clusterSize lost quorate; do
            out+="$(sed -nE "s/^ *\"$key\" *: *\"?([^\",]*)\"?,?\$/\\1/p" <<<"$json" | head -n 1) "
        done
        printf '%s\n' "${out% }"
    fi
}

# True when every node named agrees on one master, quorate, with cluster size $1 and nobody lost.
AGREED=""
all_agree() {
    local size=$1; shift
    local name master="" masters=0 line m role cs lost q
    for name in "$@"; do
        line=$(status_of "$name") || return 1
        read -r m role cs lost q <<<"$line"
        [[ $m != null && $q == true && $cs == "$size" && $lost == 0 ]] || return 1
        [[ -z $master || $master == "$m" ]] || return 1
        master=$m
        if [[ $role == master ]]; then
            [[ $name == "$m" ]] || return 1
            masters=$(( masters + 1 ))
        elif [[ $role != slave ]]; then
            return 1
        fi
    done
    (( masters == 1 )) || return 1
    AGREED=$master
}

# wait_until SECONDS COMMAND...: poll every 10 ms.
wait_until() {
    local limit=$1; shift
    local end=$(( $(now_s) + limit ))
    (( end > BENCH_END )) && end=$BENCH_END
    while (( $(now_s) < end )); do
        "$@" && return 0
        sleep 0.01
    done
    "$@"
}

# The first master-hook run by a node other than $2 among hook-log lines after line $1.
HOOK_T=""
new_master_hook() {
    HOOK_T=$(tail -n +"$(( $1 + 1 ))" "$HOOKS" | awk -v old="$2" '$5 == "master" && $2 != old { print $1; exit }')
    [[ -n $HOOK_T ]]
}

# The first slave-hook run by node $2 after line $1.
slave_hook_of() {
    HOOK_T=$(tail -n +"$(( $1 + 1 ))" "$HOOKS" | awk -v who="$2" '$5 == "slave" && $2 == who { print $1; exit }')
    [[ -n $HOOK_T ]]
}

stop_and_reap() {  # $1 name: wait for its exit (bounded: 10 s), SIGKILL if it hangs
    local name=$1 i state
    for i in $(seq 1 1000); do
        state=$(awk '{ print $3 }' "/proc/${PID[$name]}/stat" 2>/dev/null || true)
        [[ -z $state || $state == Z ]] && break   # gone, or a zombie waiting for `wait`
        sleep 0.01
    done
    kill -KILL "${PID[$name]}" 2>/dev/null || true
    { wait "${PID[$name]}"; } 2>/dev/null || true
}

echo "quorumd failover bench: ${#NODES[@]} nodes on 127.0.0.1, discovery $BCAST:$BPORT, $RUNS runs, $DIR" >&2
started=()
for name in "${NODES[@]}"; do   # one after another, so n1 is the oldest
    start_node "$name"
    started+=("$name")
    wait_until 20 all_agree ${#started[@]} "${started[@]}" || fail "${started[*]} did not agree on a master"
done

# (a) and (b): stop the master with a signal, time until another node's master hook starts.
failover() {  # $1 signal number, $2 output file
    local signal=$1 out=$2 run master lines t0
    for run in $(seq 1 "$RUNS"); do
        wait_until 20 all_agree ${#NODES[@]} "${NODES[@]}" || fail "run $run: the cluster did not settle"
        master=$AGREED
        lines=$(wc -l <"$HOOKS")
        t0=$("$QB" kill "$signal" "${PID[$master]}")
        wait_until 20 new_master_hook "$lines" "$master" || fail "run $run: no new master after signal $signal to $master"
        echo $(( HOOK_T - t0 )) >>"$out"
        echo "$t0 $master signal $signal run $run -> $(( (HOOK_T - t0) / 1000000 )) ms" >>"$DIR/runs.log"
        stop_and_reap "$master"
        start_node "$master"
        printf '.' >&2
    done
    echo >&2
}
echo "(a) SIGKILL of the master" >&2
failover 9 "$DIR/a.txt"
echo "(b) SIGTERM of the master" >&2
failover 15 "$DIR/b.txt"

# (e): a planned step-down asked of a slave (forwarded to the master, as an operator's would be).
echo "(e) quorumctl step-down" >&2
: >"$DIR/e.txt"
: >"$DIR/e2.txt"
for run in $(seq 1 "$(( ${STEP_DOWN:-1} == 1 ? RUNS : 0 ))"); do
    wait_until 20 all_agree ${#NODES[@]} "${NODES[@]}" || fail "step-down run $run: the cluster did not settle"
    master=$AGREED
    asker=""
    for name in "${NODES[@]}"; do [[ $name != "$master" ]] && { asker=$name; break; }; done
    lines=$(wc -l <"$HOOKS")
    t0=$("$QB" now)
    "$QUORUMCTL" --socket "$DIR/$asker.sock" step-down --timeout 5s >>"$DIR/step-down.log" 2>&1 \
        || fail "step-down run $run: quorumctl step-down on $asker failed ($(tail -n 1 "$DIR/step-down.log"))"
    wait_until 20 new_master_hook "$lines" "$master" || fail "step-down run $run: no new master's hook"
    t_new=$HOOK_T
    slave_hook_of "$lines" "$master" || fail "step-down run $run: $master ran no slave hook"
    t_old=$HOOK_T
    (( t_old < t_new )) || fail "step-down run $run: the new master's hook started before $master's slave hook"
    echo $(( t_new - t0 )) >>"$DIR/e.txt"
    echo $(( t_new - t_old )) >>"$DIR/e2.txt"
    echo "$t0 $master step-down asked of $asker run $run -> $(( (t_new - t0) / 1000000 )) ms" >>"$DIR/runs.log"
    printf '.' >&2
done
echo >&2

# (c): a new node joins; time from its exec to its slave hook and to quorumctl naming the master.
echo "(c) a new node joins" >&2
ctl_names_master() {
    local line m role
    line=$(status_of "$JOINER") || return 1
    read -r m role _ <<<"$line"
    [[ $m == "$1" && $role == slave ]]
}
for run in $(seq 1 "$RUNS"); do
    wait_until 20 all_agree ${#NODES[@]} "${NODES[@]}" || fail "join run $run: the cluster did not settle"
    master=$AGREED
    lines=$(wc -l <"$HOOKS")
    start_node "$JOINER"
    # Poll quorumctl as fast as it answers (bounded: 10 s).
    t_ctl=""
    end=$(( $(now_s) + 10 ))
    while (( $(now_s) < end )); do
        if ctl_names_master "$master"; then t_ctl=$("$QB" now); break; fi
    done
    [[ -n $t_ctl ]] || fail "join run $run: $JOINER never reported master $master"
    wait_until 10 slave_hook_of "$lines" "$JOINER" || fail "join run $run: no slave hook from $JOINER"
    t_spawn=$(tail -n 1 "$DIR/$JOINER.spawn")
    echo $(( HOOK_T - t_spawn )) >>"$DIR/c.txt"
    echo $(( t_ctl - t_spawn )) >>"$DIR/c2.txt"
    kill -TERM "${PID[$JOINER]}"
    stop_and_reap "$JOINER"
    printf '.' >&2
done
echo >&2

# (d): idle footprint.
echo "(d) idle for $IDLE_SECONDS s" >&2
wait_until 20 all_agree ${#NODES[@]} "${NODES[@]}" || fail "the cluster did not settle before the idle measurement"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A T0=()
for name in "${NODES[@]}"; do T0[$name]=$(ticks "${PID[$name]}"); done
if [ "${METRICS:-0}" = 1 ]; then
    # A scrape of every node once a second, as Prometheus would (more often than its default).
    end=$(( $(date +%s) + IDLE_SECONDS ))
    scrapes=0
    while [ "$(date +%s)" -lt "$end" ]; do
        for name in "${NODES[@]}"; do
            curl -sf -o /dev/null "http://127.0.0.1:$(( ${PORT[$name]} + 1000 ))/metrics" && scrapes=$(( scrapes + 1 ))
        done
        sleep 1
    done
    echo "(d) $scrapes scrapes of /metrics answered" >&2
else
    sleep "$IDLE_SECONDS"   # the measurement window itself
fi
hz=$(getconf CLK_TCK)
for name in "${NODES[@]}"; do
    pid=${PID[$name]}
    awk -v d=$(( $(ticks "$pid") - T0[$name] )) -v hz="$hz" -v s="$IDLE_SECONDS" 'BEGIN { printf "%.3f\n", 100 * d / hz / s }' >>"$DIR/cpu.txt"
    awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$pid/status" >>"$DIR/rss.txt"
done
wait_until 5 all_agree ${#NODES[@]} "${NODES[@]}" || fail "the cluster was not settled after the idle measurement"

# Report: n, median, p99 (nearest rank), min, max.
summary() {  # $1 file, $2 divisor (1e6 for ns -> ms, 1 for raw)
    sort -g "$1" | awk -v div="$2" '
        { v[NR] = $1 / div }
        END {
            n = NR; if (n == 0) { print "0 - - - -"; exit }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            r = int(0.99 * n); if (r < 0.99 * n) r++; if (r < 1) r = 1
            printf "%d %.1f %.1f %.1f %.1f\n", n, m, v[r], v[1], v[n]
        }'
}
row() {  # label unit file divisor
    local n med p99 min max
    read -r n med p99 min max <<<"$(summary "$3" "$4")"
    printf '%-50s %4s %10s %10s %10s %10s  %s\n' "$1" "$n" "$med" "$p99" "$min" "$max" "$2"
    if [[ ${SAMPLES:-0} == 1 ]]; then
        awk -v div="$4" '{ printf "%s%.1f", (NR > 1 ? " " : "    samples: "), $1 / div } END { print "" }' "$3"
    fi
}
echo
echo "quorumd failover bench — ${#NODES[@]} nodes on loopback, $QUORUMD, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-50s %4s %10s %10s %10s %10s  %s\n' "measure" "n" "median" "p99" "min" "max" "unit"
row "(a) SIGKILL master -> new master's hook starts" ms "$DIR/a.txt" 1000000
row "(b) SIGTERM master -> new master's hook starts" ms "$DIR/b.txt" 1000000
row "(e) quorumctl step-down -> new master's hook starts" ms "$DIR/e.txt" 1000000
row "(e) old master's slave hook -> new master's hook" ms "$DIR/e2.txt" 1000000
row "(c) new node exec -> its slave hook starts" ms "$DIR/c.txt" 1000000
row "(c) new node exec -> quorumctl names the master" ms "$DIR/c2.txt" 1000000
row "(d) idle CPU per node over ${IDLE_SECONDS} s" "% core" "$DIR/cpu.txt" 1
row "(d) RSS per node" MB "$DIR/rss.txt" 1
