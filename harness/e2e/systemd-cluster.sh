#!/usr/bin/env bash
# harness/e2e/systemd-cluster.sh [PATH/TO/quorum_*.deb]
#
# End-to-end test of the Debian package under a real systemd: three systemd-nspawn
# containers (real PID 1 systemd, journald, systemctl), each in a network namespace of its
# own on a private bridge (198.18.0.1-3/24, broadcast 198.18.0.255: nothing reaches the
# host's network), run quorum@A, quorum@B and quorum@C from the installed package. Checks,
# with the real tools (systemctl, journalctl, quorumctl): one master agreed on; the STATUS=
# line; the journal's lines and fields; failover on SIGKILL and the restart by systemd;
# a graceful stop seen as "dispatched"; quorumctl refused to non-members of group quorum;
# the watchdog restarting a frozen node.
#
# Without an argument the package is built first (packaging/build-deb.sh into a temporary
# directory). The package is installed on this host (apt-get), because the containers
# share the host's /usr read-only. Needs root; without root, or where network namespaces
# or bridges cannot be made, it prints "skipped: ..." and exits 0.
#
# Output: one "PASS: ..." or "FAIL: ..." line per check, then "N passed, M failed". Exit 0
# only when nothing failed; on failure (or with VERBOSE=1) the units' journals are printed.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
NODES=(A B C)            # node names, started in this order (A is the oldest)
BRIDGE=qebr0
NET=198.18.0             # RFC 2544 benchmarking range, only inside our namespaces
BROADCAST=198.18.0.255
PEER_PORT=6170
DISCOVERY_PORT=5595
T0=$(date +%s)

skip() { echo "skipped: $*"; exit 0; }
log() { printf '[%3ds] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, a bridge, systemd-nspawn, apt-get)"
[ -d /sys/fs/cgroup ] || skip "no /sys/fs/cgroup: systemd-nspawn cannot boot a container here"

# --- state for cleanup -----------------------------------------------------------------
declare -A NSPAWN_PID=() INIT_PID=()
WORK=""
CLEANED=0
PASSED=0
FAILED=0

cleanup() {
    local rc=${1:-$?}
    [ "$CLEANED" -eq 1 ] && return
    CLEANED=1
    trap - EXIT INT TERM
    set +e
    local i pid deadline
    # SIGTERM makes systemd-nspawn shut the container down; SIGKILL whatever is left.
    for i in "${!NSPAWN_PID[@]}"; do
        pid=${NSPAWN_PID[$i]}
        kill -TERM "$pid" 2>/dev/null
    done
    deadline=$(( $(date +%s) + 15 ))
    for i in "${!NSPAWN_PID[@]}"; do
        pid=${NSPAWN_PID[$i]}
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
            [ -n "${INIT_PID[$i]:-}" ] && kill -KILL "${INIT_PID[$i]}" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    for i in 1 2 3; do
        ip netns del "qe$i" 2>/dev/null
        ip link del "qev$i" 2>/dev/null
        rm -rf "/run/systemd/nspawn/propagate/qe$i" 2>/dev/null
    done
    ip link del "$BRIDGE" 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'cleanup 130' INT
trap 'cleanup 143' TERM

WORK=$(mktemp -d /tmp/quorum-e2e.XXXXXX)

# --- tools -------------------------------------------------------------------------------
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v jq >/dev/null || need+=(jq)
command -v nsenter >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Can we make namespaces and a bridge at all (a container without CAP_NET_ADMIN cannot)?
for i in 1 2 3; do ip netns del "qe$i" 2>/dev/null || true; done   # leftovers of a killed run
ip link del "$BRIDGE" 2>/dev/null || true
ip link add "$BRIDGE" type bridge 2>"$WORK/probe.err" \
    || skip "cannot create a bridge ($(head -n1 "$WORK/probe.err"))"
ip netns add qe1 2>"$WORK/probe.err" \
    || skip "cannot create a network namespace ($(head -n1 "$WORK/probe.err"))"

# --- the package -------------------------------------------------------------------------
deb=${1:-}
if [ -z "$deb" ]; then
    log "building the package (packaging/build-deb.sh)"
    "$top/packaging/build-deb.sh" "$WORK/dist" > "$WORK/build-deb.log" 2>&1 \
        || { tail -n 40 "$WORK/build-deb.log"; echo "FAIL: packaging/build-deb.sh"; exit 1; }
    deb=$(ls "$WORK"/dist/quorum_*_*.deb | grep -v dbgsym | head -n1)
fi
deb=$(realpath "$deb")
[ -f "$deb" ] || { echo "FAIL: no package at $deb"; exit 1; }
log "installing $(basename "$deb") on the host (the containers share its /usr)"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$deb" > "$WORK/apt.log" 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$deb" > "$WORK/apt.log" 2>&1 \
        || { cat "$WORK/apt.log"; echo "FAIL: apt-get install $deb"; exit 1; }
fi
for f in /usr/sbin/quorumd /usr/bin/quorumctl /usr/lib/quorum/quorumd-start \
         /usr/lib/systemd/system/quorum@.service /usr/lib/sysusers.d/quorum.conf; do
    [ -e "$f" ] || { echo "FAIL: the package did not install $f (under /usr, as the containers need)"; exit 1; }
done
WATCHDOG_SEC=$(sed -n 's/^WatchdogSec=\([0-9]*\)s\{0,1\}$/\1/p' /usr/lib/systemd/system/quorum@.service)
WATCHDOG_SEC=${WATCHDOG_SEC:-5}

# --- checks --------------------------------------------------------------------------------
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }

# container index of node A/B/C
idx() { case $1 in A) echo 1 ;; B) echo 2 ;; C) echo 3 ;; esac; }
# run a command inside node X's container (all its namespaces), bounded
in_node() { local n=$1; shift; timeout 20 nsenter -t "${INIT_PID[$(idx "$n")]}" -a "$@"; }
ctl() { local n=$1; shift; in_node "$n" quorumctl -n "$n" "$@"; }
status_json() { ctl "$1" status --json 2>/dev/null || true; }
peers_json() { ctl "$1" peers --json 2>/dev/null || true; }
field() { jq -r "$2" <<<"$1" 2>/dev/null || true; }
prop() { in_node "$1" systemctl show -p "$2" --value "quorum@$1" 2>/dev/null || true; }
# wait_for DEADLINE_SECONDS FUNCTION ARGS...: polls FUNCTION every 0.2 s until it succeeds
wait_for() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) + limit * 1000000000 ))
    while :; do
        "$@" && return 0
        [ "$(date +%s%N)" -ge "$end" ] && return 1
        sleep 0.2
    done
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# --- network: bridge, three namespaces ---------------------------------------------------------
ip link set "$BRIDGE" up
for i in 1 2 3; do
    ip netns list | grep -qw "qe$i" || ip netns add "qe$i"
    ip link add "qev$i" type veth peer name eth0 netns "qe$i"
    ip link set "qev$i" master "$BRIDGE" up
    ip -n "qe$i" addr add "$NET.$i/24" brd "$BROADCAST" dev eth0
    ip -n "qe$i" link set eth0 up
    ip -n "qe$i" link set lo up
done

cat > "$WORK/quorum.conf" <<EOF
# written by harness/e2e/systemd-cluster.sh
cluster = e2e
address = 0.0.0.0
port = $PEER_PORT
broadcast-address = $BROADCAST
broadcast-port = $DISCOVERY_PORT
EOF
chmod 0644 "$WORK/quorum.conf"

# --- containers --------------------------------------------------------------------------------
log "booting 3 containers (systemd-nspawn --volatile=yes -D /)"
for i in 1 2 3; do
    systemd-nspawn --keep-unit --register=no --volatile=yes -D / --machine="qe$i" \
        --network-namespace-path="/run/netns/qe$i" \
        --bind-ro="$WORK/quorum.conf:/etc/quorum/quorum.conf" \
        --boot systemd.firstboot=off </dev/null >"$WORK/nspawn-qe$i.log" 2>&1 &
    NSPAWN_PID[$i]=$!
done
# The container's init is the child of systemd-nspawn that runs systemd (nspawn first forks
# an intermediate child, which exits once init is started: look again until it is systemd).
find_init() {
    local p
    for p in $(pgrep -P "${NSPAWN_PID[$1]}"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && { INIT_PID[$1]=$p; return 0; }
    done
    return 1
}
booted() {
    local s
    find_init "$1" || return 1
    s=$(timeout 10 nsenter -t "${INIT_PID[$1]}" -a systemctl is-system-running --wait 2>/dev/null || true)
    case $s in running|degraded) return 0 ;; *) return 1 ;; esac
}
boot_ok=1
for i in 1 2 3; do
    if wait_for 60 booted "$i"; then :; else
        boot_ok=0
        echo "--- nspawn qe$i ---"; tail -n 30 "$WORK/nspawn-qe$i.log"
    fi
done
if [ "$boot_ok" -eq 1 ]; then
    pass "3 containers booted systemd (is-system-running: running or degraded)"
else
    fail "containers did not boot"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# The containers see the package through the host's /usr; the user comes from sysusers.
setup_ok=1
for n in "${NODES[@]}"; do
    in_node "$n" test -f /usr/lib/systemd/system/quorum@.service || { setup_ok=0; echo "  $n: no unit file"; }
    in_node "$n" test -f /etc/quorum/quorum.conf || { setup_ok=0; echo "  $n: no /etc/quorum/quorum.conf"; }
    if ! in_node "$n" getent passwd quorum >/dev/null; then
        echo "  $n: no user quorum after boot: running systemd-sysusers"
        in_node "$n" systemd-sysusers
        in_node "$n" getent passwd quorum >/dev/null || { setup_ok=0; echo "  $n: still no user quorum"; }
    fi
done
[ "$setup_ok" -eq 1 ] && pass "unit, sysusers user 'quorum' and /etc/quorum/quorum.conf present in every container" \
                      || fail "package files, user or configuration missing in a container"

# --- start A, B, C one after another ----------------------------------------------------------------
start_ok=1
for n in "${NODES[@]}"; do
    t=$(date +%s%N)
    if in_node "$n" systemctl start "quorum@$n"; then
        log "systemctl start quorum@$n returned after $(ms_since "$t") ms (Type=notify: READY=1 received)"
    else
        start_ok=0; echo "  systemctl start quorum@$n failed"
    fi
done
[ "$start_ok" -eq 1 ] && pass "systemctl start quorum@A, @B, @C (Type=notify, READY=1)" \
                      || fail "systemctl start of a unit failed"

# --- one master ------------------------------------------------------------------------------------
MASTER=""
EPOCH=""
agree() {
    local n j m="" e="" first=1
    for n in "${NODES[@]}"; do
        j=$(status_json "$n")
        [ "$(field "$j" .quorate)" = true ] || return 1
        [ "$(field "$j" .clusterSize)" = 3 ] || return 1
        [ "$(field "$j" .connected)" = 2 ] || return 1
        if [ $first -eq 1 ]; then m=$(field "$j" .master); e=$(field "$j" .epoch); first=0
        else [ "$(field "$j" .master)" = "$m" ] && [ "$(field "$j" .epoch)" = "$e" ] || return 1; fi
    done
    [ -n "$m" ] && [ "$m" != null ] || return 1
    [ "$(field "$(status_json "$m")" .role)" = master ] || return 1
    for n in "${NODES[@]}"; do
        [ "$n" = "$m" ] || [ "$(field "$(status_json "$n")" .role)" = slave ] || return 1
    done
    MASTER=$m; EPOCH=$e
}
t=$(date +%s%N)
if wait_for 20 agree; then
    if [ "$MASTER" = A ]; then
        pass "all three agree on master $MASTER (the oldest), epoch $EPOCH, the others slaves ($(ms_since "$t") ms after the last start)"
        echo "  quorumctl status on B:"; ctl B status 2>&1 | sed 's/^/    /' || true
    else
        fail "all three agree on master $MASTER, but the oldest node is A"
    fi
else
    fail "no agreement on one master within 20 s"
    for n in "${NODES[@]}"; do echo "  $n: $(status_json "$n" | tr -d '\n')"; done
    MASTER=A
fi

# --- STATUS= in systemctl status -------------------------------------------------------------------
status_line_ok() {
    local n=$1 out
    out=$(in_node "$n" systemctl status --no-pager "quorum@$n" 2>/dev/null || true)
    grep -Eq "Status: \"(master|slave); master $MASTER \(epoch [0-9]+\); 3/3 members up, 0 lost\"" <<<"$out"
}
st_ok=1
for n in "${NODES[@]}"; do wait_for 10 status_line_ok "$n" || st_ok=0; done
if [ "$st_ok" -eq 1 ]; then
    pass "systemctl status shows the STATUS= line: $(in_node B systemctl status --no-pager quorum@B | grep -o 'Status: .*')"
else
    fail "systemctl status does not show the expected STATUS= line"
    for n in "${NODES[@]}"; do in_node "$n" systemctl status --no-pager "quorum@$n" 2>&1 | sed 's/^/  /' | head -n 6; done
fi

# --- the journal -----------------------------------------------------------------------------------
journal_ok() {
    local n=$1 other=$2 js
    js=$(in_node "$n" journalctl -u "quorum@$n" -o json --no-pager 2>/dev/null || true)
    # the master change: original-style text, structured fields, a MESSAGE_ID
    jq -se --arg n "$n" --arg m "$MASTER" '
        any(.[]; (.MESSAGE | type == "string")
                 and (.MESSAGE | startswith($n + " set " + $m + " as new master"))
                 and .QUORUM_NODE == $n and .QUORUM_MASTER == $m
                 and (.QUORUM_EPOCH | type == "string") and (.MESSAGE_ID | type == "string"))' \
        <<<"$js" >/dev/null || return 1
    # the handshake line, with the node's fields
    jq -se --arg n "$n" --arg o "$other" '
        any(.[]; (.MESSAGE | type == "string")
                 and (.MESSAGE | test("^" + $n + " add " + $o + " to connected by handshake\\. Now are [0-9]+ nodes connected"))
                 and .QUORUM_NODE == $n)' <<<"$js" >/dev/null
}
j_ok=1
for n in "${NODES[@]}"; do
    other=C; [ "$n" = C ] && other=A
    wait_for 5 journal_ok "$n" "$other" || { j_ok=0; echo "  $n: expected journal entries missing"; }
done
if [ "$j_ok" -eq 1 ]; then
    ex=$(in_node B journalctl -u quorum@B -o json --no-pager | jq -c --arg m "$MASTER" \
        'select((.MESSAGE|type=="string") and (.MESSAGE|contains("as new master"))) | {MESSAGE, MESSAGE_ID, QUORUM_NODE, QUORUM_MASTER, QUORUM_EPOCH}' | head -n1)
    pass "journalctl -u quorum@X -o json: '… set $MASTER as new master', '… add … to connected by handshake. Now are … nodes connected', QUORUM_NODE/QUORUM_MASTER/QUORUM_EPOCH, MESSAGE_ID: $ex"
else
    fail "journal entries or fields missing"
fi

# --- SIGKILL the master: failover, restart by systemd, re-entry ----------------------------------------
OLD=$MASTER
# the next oldest: the first node after the master in start order
NEXT=""; for n in "${NODES[@]}"; do [ "$n" != "$OLD" ] && { NEXT=$n; break; }; done
OTHERS=(); for n in "${NODES[@]}"; do [ "$n" != "$OLD" ] && OTHERS+=("$n"); done
old_pid=$(prop "$OLD" MainPID)
old_restarts=$(prop "$OLD" NRestarts)
new_master() {
    local n j
    for n in "${OTHERS[@]}"; do
        j=$(status_json "$n")
        [ "$(field "$j" .master)" = "$NEXT" ] && [ "$(field "$j" .quorate)" = true ] || return 1
        [ "$(field "$j" .epoch)" -gt "$EPOCH" ] 2>/dev/null || return 1
    done
}
t=$(date +%s%N)
in_node "$OLD" systemctl kill -s KILL "quorum@$OLD" || true
if wait_for 10 new_master; then
    EPOCH=$(field "$(status_json "$NEXT")" .epoch)
    pass "SIGKILL of master $OLD: ${OTHERS[*]} elect $NEXT (next oldest), epoch $EPOCH, in $(ms_since "$t") ms"
    MASTER=$NEXT
else
    fail "after SIGKILL of master $OLD, ${OTHERS[*]} did not agree on $NEXT within 10 s"
    for n in "${OTHERS[@]}"; do echo "  $n: $(status_json "$n" | tr -d '\n')"; done
    MASTER=$NEXT
fi

# $1 re-entered: active, a slave of $MASTER, and listed once, connected, by every other node
reentered() {
    local n=$1 o j
    [ "$(prop "$n" ActiveState)" = active ] || return 1
    j=$(status_json "$n")
    [ "$(field "$j" .role)" = slave ] && [ "$(field "$j" .master)" = "$MASTER" ] || return 1
    [ "$(field "$j" .connected)" = 2 ] || return 1
    for o in "${NODES[@]}"; do
        [ "$o" = "$n" ] && continue
        [ "$(field "$(peers_json "$o")" "[.[] | select(.name == \"$n\")] | length")" = 1 ] || return 1
        [ "$(field "$(peers_json "$o")" ".[] | select(.name == \"$n\") | .state")" = connected ] || return 1
    done
}
restarted() {
    local p r
    p=$(prop "$1" MainPID); r=$(prop "$1" NRestarts)
    [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$2" ] && [ "${r:-0}" -gt "$3" ]
}
if wait_for 15 restarted "$OLD" "$old_pid" "$old_restarts" && wait_for 10 reentered "$OLD"; then
    pass "systemd restarted quorum@$OLD (Restart=on-failure, NRestarts $old_restarts -> $(prop "$OLD" NRestarts), MainPID $old_pid -> $(prop "$OLD" MainPID)); it re-entered as slave of $MASTER, listed once and connected on the others ($(ms_since "$t") ms after the kill)"
else
    fail "quorum@$OLD was not restarted or did not re-enter (NRestarts $(prop "$OLD" NRestarts), state $(prop "$OLD" ActiveState))"
    echo "  $OLD: $(status_json "$OLD" | tr -d '\n')"
    for o in "${OTHERS[@]}"; do echo "  peers of $o: $(peers_json "$o" | tr -d '\n')"; done
fi

# --- systemctl stop a slave: dispatched on the others; start it again -------------------------------------
SLAVE=""; for n in "${NODES[@]}"; do [ "$n" != "$MASTER" ] && [ "$n" != "$OLD" ] && SLAVE=$n; done
[ -n "$SLAVE" ] || SLAVE=$OLD
dispatched_on_others() {
    local o
    for o in "${NODES[@]}"; do
        [ "$o" = "$SLAVE" ] && continue
        [ "$(field "$(peers_json "$o")" ".[] | select(.name == \"$SLAVE\") | .state")" = dispatched ] || return 1
    done
}
t=$(date +%s%N)
stop_rc=0; in_node "$SLAVE" systemctl stop "quorum@$SLAVE" || stop_rc=$?
res=$(prop "$SLAVE" Result)
if [ "$stop_rc" -eq 0 ] && wait_for 10 dispatched_on_others; then
    pass "systemctl stop quorum@$SLAVE ($(ms_since "$t") ms, Result=$res): the others list it as dispatched"
else
    fail "systemctl stop quorum@$SLAVE (rc $stop_rc, Result=$res): not dispatched on the others"
    for o in "${NODES[@]}"; do [ "$o" != "$SLAVE" ] && echo "  peers of $o: $(peers_json "$o" | tr -d '\n')"; done
fi
t=$(date +%s%N)
if in_node "$SLAVE" systemctl start "quorum@$SLAVE" && wait_for 10 reentered "$SLAVE"; then
    pass "systemctl start quorum@$SLAVE again: slave of $MASTER, connected on the others ($(ms_since "$t") ms)"
else
    fail "quorum@$SLAVE did not re-enter after start"
fi

# --- quorumctl refused to a non-member of group quorum; allowed to a member ----------------------------------
n=$MASTER
out=$(in_node "$n" setpriv --reuid nobody --regid nogroup --clear-groups quorumctl -n "$n" leave 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -qi 'permission denied' <<<"$out" \
   && [ "$(prop "$n" ActiveState)" = active ] && [ "$(field "$(status_json "$n")" .role)" = master ]; then
    pass "quorumctl leave as nobody on $n: exit $rc, '$out'; $n still running as master"
else
    fail "quorumctl leave as nobody on $n: exit $rc, output '$out', unit $(prop "$n" ActiveState)"
fi
out=$(in_node "$n" setpriv --reuid nobody --regid nogroup --groups quorum quorumctl -n "$n" status --json 2>&1) && rc=0 || rc=$?
if [ "$rc" -eq 0 ] && [ "$(field "$out" .name)" = "$n" ]; then
    pass "quorumctl status as a member of group quorum (nobody + group quorum) on $n: exit 0"
else
    fail "quorumctl status as a member of group quorum on $n: exit $rc, output '$out'"
fi

# --- reload: systemctl reload (ExecReload= waits for quorumctl reload) and kill -HUP ---------------------------
n=$SLAVE
old_pid=$(prop "$n" MainPID)
old_epoch=$(field "$(status_json "$n")" .epoch)
in_node "$n" sh -c "echo 'log-level = debug' >> /etc/quorum/$n.conf"
out=$(in_node "$n" systemctl reload "quorum@$n" 2>&1) && rc=0 || rc=$?
reloaded=$(in_node "$n" journalctl -u "quorum@$n" --no-pager -o cat 2>/dev/null | grep 'configuration reloaded (quorumctl reload): log-level info -> debug' | tail -n1 || true)
if [ "$rc" -eq 0 ] && [ -n "$reloaded" ] && [ "$(prop "$n" MainPID)" = "$old_pid" ] \
   && [ "$(field "$(status_json "$n")" .role)" = slave ] && [ "$(field "$(status_json "$n")" .epoch)" = "$old_epoch" ]; then
    pass "systemctl reload quorum@$n: exit 0, '$reloaded', same MainPID $old_pid, still slave in epoch $old_epoch"
else
    fail "systemctl reload quorum@$n: exit $rc ('$out'), journal '$reloaded', MainPID $old_pid -> $(prop "$n" MainPID)"
fi
in_node "$n" sh -c "echo 'cluster = elsewhere' >> /etc/quorum/$n.conf"
out=$(in_node "$n" systemctl reload "quorum@$n" 2>&1) && rc=0 || rc=$?
in_node "$n" sed -i '/^cluster = elsewhere$/d' "/etc/quorum/$n.conf"
if [ "$rc" -ne 0 ] && [ "$(prop "$n" ActiveState)" = active ] && [ "$(prop "$n" MainPID)" = "$old_pid" ]; then
    pass "systemctl reload with a setting that needs a restart fails (exit $rc) and the node runs on unchanged"
else
    fail "systemctl reload with cluster changed: exit $rc ('$out'), unit $(prop "$n" ActiveState), MainPID $(prop "$n" MainPID)"
fi
hup_logged() { in_node "$1" journalctl -u "quorum@$1" --no-pager -o cat 2>/dev/null | grep -q 'configuration reloaded (SIGHUP)'; }
in_node "$n" kill -HUP "$old_pid" || true
wait_for 10 hup_logged "$n" || true
hup=$(in_node "$n" journalctl -u "quorum@$n" --no-pager -o cat 2>/dev/null | grep 'configuration reloaded (SIGHUP)' | tail -n1 || true)
if [ -n "$hup" ] && [ "$(prop "$n" ActiveState)" = active ] && [ "$(prop "$n" MainPID)" = "$old_pid" ] \
   && [ "$(field "$(status_json "$n")" .role)" = slave ]; then
    pass "kill -HUP of quorum@$n reloads ('$hup') and never stops the node (MainPID $old_pid, still slave)"
else
    fail "kill -HUP of quorum@$n: journal '$hup', unit $(prop "$n" ActiveState), MainPID $old_pid -> $(prop "$n" MainPID)"
fi

# --- the watchdog: freeze a slave with SIGSTOP ---------------------------------------------------------------
FROZEN=$SLAVE
old_pid=$(prop "$FROZEN" MainPID)
old_restarts=$(prop "$FROZEN" NRestarts)
t=$(date +%s%N)
in_node "$FROZEN" systemctl kill -s STOP "quorum@$FROZEN" || true
limit=$(( WATCHDOG_SEC * 3 + 5 ))
if wait_for "$limit" restarted "$FROZEN" "$old_pid" "$old_restarts"; then
    took=$(ms_since "$t")
    wd=$(in_node "$FROZEN" journalctl -u "quorum@$FROZEN" --no-pager -o cat 2>/dev/null | grep -i 'watchdog timeout' | tail -n1 || true)
    if [ -n "$wd" ] && wait_for 10 reentered "$FROZEN"; then
        pass "SIGSTOP of quorum@$FROZEN: watchdog (WatchdogSec=${WATCHDOG_SEC}s) restarted it after $took ms ('$wd'; MainPID $old_pid -> $(prop "$FROZEN" MainPID)); it re-entered as slave"
    else
        fail "quorum@$FROZEN restarted after SIGSTOP, but no 'Watchdog timeout' in its journal or no re-entry"
    fi
else
    fail "SIGSTOP of quorum@$FROZEN: not restarted within $limit s (NRestarts $(prop "$FROZEN" NRestarts), MainPID $(prop "$FROZEN" MainPID))"
    in_node "$FROZEN" kill -CONT "$old_pid" 2>/dev/null || true
fi

# --- the end ------------------------------------------------------------------------------------------------
if wait_for 10 agree; then
    pass "at the end all three agree again on master $MASTER (epoch $EPOCH)"
else
    fail "at the end the three nodes do not agree on one master"
fi

if [ "$FAILED" -gt 0 ] || [ "${VERBOSE:-0}" = 1 ]; then
    for n in "${NODES[@]}"; do
        echo "===== journalctl -u quorum@$n (container qe$(idx "$n")) ====="
        in_node "$n" journalctl -u "quorum@$n" --no-pager -o short-monotonic 2>&1 | tail -n 150 || true
    done
fi
log "done"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
