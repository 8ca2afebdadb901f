#!/usr/bin/env python3
"""Networks without broadcast, and IPv6: three real quorumd processes, each in its own network
namespace on one bridge, in the setups issue 13 is about. Each scenario checks that the nodes
form one cluster, elect one master, fail over when the master is killed, and agree again after
a partition heals; the seed scenarios also that names resolve through the namespaces' own hosts
files and that a node that moves to a new address under its name re-enters.

  seeds-v4     IPv4; every discovery datagram dropped on the bridge (nftables); the nodes find
               each other through `--peer q1 --peer q2 --peer q3` alone (names from
               /etc/netns/qsN/hosts, which `ip netns exec` mounts over /etc/hosts)
  multicast-v6 IPv6 only (unique-local fd00:18:3::N, no IPv4 address): discovery by the
               link-local multicast group ff02::114 on eth0
  seeds-v6     IPv6 only, broadcast discovery off, seeds `[fd00:18:3::N]`
  rolling-upgrade  seeds over IPv4; nodes of protocol 1 replaced one at a time by the current one
  capture      a keyed cluster forms, leaves and fails over while tcpdump records each port: no
               node name and no cluster name appears in any packet; the same run without the key
               must show them (so the check can fail)

With --bench RUNS, it measures instead: RUNS crashes and RUNS leaves of the master, in a
cluster that finds itself by broadcast and in one that uses seeds only (broadcast off), in one
sitting, and prints the medians of the time from the kill (or SIGTERM) until a new master
answers `status` as master.

Only the Python standard library; needs root, iproute2 and nftables (run.sh installs them and
builds the binaries). Nothing leaves the namespaces: addresses are 198.18.2.0/24 (RFC 2544) and
fd00:18:3::/64 on the bridge qsbr0, which has no address and no uplink. Every wait is bounded;
namespaces, bridge, nftables table, hosts files and processes are removed on exit, also on
failure or Ctrl+C. The last line is "N scenarios, F failed".
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from faults import add_namespace, make_bridge, query_status, remove_namespaces, run  # noqa: E402  (shared with the fault harness)

NODES = ["q1", "q2", "q3"]
NETNS = {n: "qs%d" % (i + 1) for i, n in enumerate(NODES)}
VETH = {n: "qsv%d" % (i + 1) for i, n in enumerate(NODES)}
IP4 = {n: "198.18.2.%d" % (i + 1) for i, n in enumerate(NODES)}
IP6 = {n: "fd00:18:3::%d" % (i + 1) for i, n in enumerate(NODES)}
BRIDGE = "qsbr0"
BROADCAST4 = "198.18.2.255"
GROUP6 = "ff02::114"
PORT = 7301
DISCOVERY_PORT = 7399
FORM_LIMIT = 10.0       # seconds: a fresh cluster of three agrees on one master
AGREE_LIMIT = 5.0       # seconds: agreement again after a crash, a heal or a restart
NETNS_ETC = "/etc/netns"


def log(msg):
    print("[%7.2f] %s" % (time.monotonic() - T0, msg), flush=True)


class Failure(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# The test bed

class Bed:
    def __init__(self, workdir):
        self.workdir = workdir

    def teardown(self):
        remove_namespaces([NETNS[n] for n in NODES], BRIDGE)
        for n in NODES:
            shutil.rmtree(os.path.join(NETNS_ETC, NETNS[n]), ignore_errors=True)
        if run(["nft", "list", "table", "bridge", "qs"], check=False).returncode == 0:
            run(["nft", "delete", "table", "bridge", "qs"], check=False)

    def setup(self, family):
        self.teardown()
        make_bridge(BRIDGE)
        for n in NODES:
            ns = NETNS[n]
            add_namespace(ns, VETH[n], BRIDGE)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            if family == 4:
                run(["ip", "-n", ns, "addr", "add", IP4[n] + "/24", "brd", BROADCAST4, "dev", "eth0"])
            else:
                # IPv6 only: no IPv4 address at all; no duplicate address detection delay.
                run(["ip", "-n", ns, "addr", "add", IP6[n] + "/64", "dev", "eth0", "nodad"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        if family == 6:
            self.wait_link_local()
        run(["nft", "-f", "-"], input=(
            "table bridge qs {\n"
            "  chain qsfwd { type filter hook forward priority 0; policy accept; }\n"
            "}\n"))
        self.write_hosts(IP4 if family == 4 else IP6)

    def wait_link_local(self):
        """Multicast needs each eth0's link-local address out of its (short) DAD."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready = all("tentative" not in run(["ip", "-n", NETNS[n], "-6", "addr", "show", "dev", "eth0"]).stdout
                        and "fe80::" in run(["ip", "-n", NETNS[n], "-6", "addr", "show", "dev", "eth0"]).stdout
                        for n in NODES)
            if ready:
                return
            time.sleep(0.05)
        raise Failure("link-local IPv6 addresses did not come up within 10 s")

    def write_hosts(self, addresses):
        """The names q1..q3 in every namespace's own /etc/hosts."""
        text = "127.0.0.1 localhost\n::1 localhost\n" + "".join("%s %s\n" % (addresses[n], n) for n in NODES)
        for n in NODES:
            d = os.path.join(NETNS_ETC, NETNS[n])
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "hosts"), "w") as fh:
                fh.write(text)

    def rules(self, rules):
        script = "flush chain bridge qs qsfwd\n" + "".join("add rule bridge qs qsfwd %s\n" % r for r in rules)
        run(["nft", "-f", "-"], input=script)

    @staticmethod
    def drop_discovery():
        return ["udp dport %d drop" % DISCOVERY_PORT]

    @staticmethod
    def isolate(n):
        return ['iifname "%s" drop' % VETH[n], 'oifname "%s" drop' % VETH[n]]


# ----------------------------------------------------------------------------------------------
# The nodes

class Cluster:
    def __init__(self, opts, workdir, args_for, names=None):
        self.opts = opts
        self.workdir = workdir
        self.args_for = args_for   # node -> extra quorumd arguments (positionals included)
        self.names = names or {}   # node -> the name it runs under (default: the node's own)
        self.procs = {}

    def sock(self, n):
        return os.path.join(self.workdir, n + ".sock")

    def start(self, n, env=None, args=None):
        state = os.path.join(self.workdir, "state-" + n)
        os.makedirs(state, exist_ok=True)
        cmd = ["ip", "netns", "exec", NETNS[n], self.opts.quorumd] + (args if args is not None else self.args_for(n)) + [
            "-n", self.names.get(n, n), "-d", "--state-dir", state, "--control-socket", self.sock(n)]
        logf = open(os.path.join(self.workdir, n + ".log"), "ab")
        logf.write(("----- %s\n" % " ".join(cmd)).encode())
        logf.flush()
        environment = dict(os.environ)
        environment.pop("QUORUM_TEST_PROTOCOL", None)
        environment.update(env or {})
        self.procs[n] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=environment)
        logf.close()

    def kill(self, n):
        p = self.procs.pop(n, None)
        if p:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)

    def stop(self, n):
        p = self.procs.pop(n, None)
        if p:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def teardown(self):
        for n in list(self.procs):
            self.kill(n)

    def status(self, n):
        return query_status(self.sock(n), timeout=0.5)

    def statuses(self, nodes):
        return {n: self.status(n) for n in nodes}

    def masters(self, nodes):
        return sorted(n for n, s in self.statuses(nodes).items() if s and s.get("role") == "master")

    def agreed(self, nodes, size):
        """The master every node in `nodes` names, if they all name the same one, it says it is
        master, all are quorate and see `size` members with none lost."""
        st = self.statuses(nodes)
        if any(s is None for s in st.values()):
            return None
        masters = {s.get("master") for s in st.values()}
        if len(masters) != 1 or None in masters:
            return None
        m = masters.pop()
        by_name = {self.names.get(n, n): n for n in nodes}
        for n, s in st.items():
            if not s["quorate"] or s["clusterSize"] != size or s["lost"] != 0:
                return None
            if s["role"] != ("master" if self.names.get(n, n) == m else "slave"):
                return None
        return by_name.get(m)

    def wait_agree(self, nodes, size, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            two = self.masters(nodes)
            if len(two) > 1:
                raise Failure("two masters at once (%s) while waiting until %s" % (", ".join(two), what))
            m = self.agreed(nodes, size)
            if m:
                return m
            time.sleep(0.02)
        raise Failure("no agreement within %.0f s: %s\n%s" % (limit, what, self.describe(nodes)))

    def wait_new_master(self, nodes, old, limit):
        """Seconds from now until a node of `nodes` other than `old` answers as master."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            for n in nodes:
                s = self.status(n)
                if s and s.get("role") == "master" and n != old:
                    return time.monotonic() - t0
            time.sleep(0.001)
        raise Failure("no new master within %.0f s after %s went away\n%s" % (limit, old, self.describe(nodes)))

    def describe(self, nodes):
        lines = []
        for n, s in self.statuses(nodes).items():
            if s is None:
                lines.append("  %s: no answer" % n)
            else:
                lines.append("  %s: %s, master %s, size %s, lost %s, seeds %s" % (
                    n, s["role"], s["master"], s["clusterSize"], s["lost"],
                    [(x["spec"], x["state"], x["addresses"]) for x in (s.get("seeds") or [])]))
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Scenarios

@contextlib.contextmanager
def bed_and_cluster(opts, workdir, family, args_for, extra=(), names=None):
    """A fresh bed of `family` (4 or 6) with the fault rules `extra` always on, and a cluster
    whose node n runs with `args_for(n)`; both torn down afterwards."""
    bed = Bed(workdir)
    bed.setup(family)
    bed.extra = list(extra)
    bed.rules(bed.extra)
    c = Cluster(opts, workdir, args_for, names)
    try:
        yield bed, c
    finally:
        c.teardown()
        bed.teardown()

def common_checks(c, bed, size=3):
    """Form, fail over a killed master, take it back, heal a partition."""
    for n in NODES:
        c.start(n)
    m = c.wait_agree(NODES, size, FORM_LIMIT, "three fresh nodes agree on a master")
    log("formed: master %s" % m)
    c.kill(m)
    rest = [n for n in NODES if n != m]
    took = c.wait_new_master(rest, m, AGREE_LIMIT)
    log("killed master %s: a new master answered after %.1f ms" % (m, took * 1000))
    c.start(m)
    m2 = c.wait_agree(NODES, size, AGREE_LIMIT, "the restarted %s is back" % m)
    log("%s is back; master %s" % (m, m2))
    lone = [n for n in NODES if n != m2][0]
    bed.rules(bed.extra + Bed.isolate(lone))
    others = [n for n in NODES if n != lone]
    deadline = time.monotonic() + AGREE_LIMIT
    while time.monotonic() < deadline:
        st = c.statuses(others)
        if all(s and s["quorate"] and s["lost"] == 1 for s in st.values()):
            break
        time.sleep(0.02)
    else:
        raise Failure("the majority did not see %s lost\n%s" % (lone, c.describe(NODES)))
    if len(c.masters(NODES)) > 1:
        raise Failure("two masters during the partition: %s" % c.masters(NODES))
    bed.rules(bed.extra)
    m3 = c.wait_agree(NODES, size, AGREE_LIMIT, "the partition of %s healed" % lone)
    log("partition of %s healed; master %s" % (lone, m3))
    return m3


SEED_NAMES = ["--peer", "q1", "--peer", "q2", "--peer", "q3"]


def scenario_seeds_v4(opts, workdir):
    addresses = dict(IP4)
    args = lambda n: ["0.0.0.0", str(PORT), BROADCAST4, str(DISCOVERY_PORT)] + SEED_NAMES
    with bed_and_cluster(opts, workdir, 4, args, extra=Bed.drop_discovery()) as (bed, c):
        common_checks(c, bed)
        # The seeds resolved through the namespace's own hosts file.
        got = {x["spec"]: x for x in c.status("q1")["seeds"]}
        if got["q2"]["addresses"] != ["%s:%d" % (IP4["q2"], PORT)] or got["q1"]["state"] != "self":
            raise Failure("q1's seeds: %s" % list(got.values()))
        # q3 moves to a new address under its name, keeping its state: it is killed, and once
        # its peers have seen its old port refuse (proof that the old process is gone; a node
        # whose old address vanished first is taken back after `quorumctl forget`,
        # docs/protocol.md) it is renumbered, the hosts files say so, and it starts again
        # without seeds of its own: only q1's and q2's seed "q3", resolved again, can find it.
        c.kill("q3")
        deadline = time.monotonic() + AGREE_LIMIT
        while time.monotonic() < deadline:
            st = c.statuses(["q1", "q2"])
            if all(x and x["lost"] == 1 for x in st.values()):
                break
            time.sleep(0.01)
        else:
            raise Failure("q1 and q2 did not see q3 lost\n%s" % c.describe(NODES))
        run(["ip", "-n", NETNS["q3"], "addr", "del", IP4["q3"] + "/24", "dev", "eth0"])
        addresses["q3"] = "198.18.2.33"
        run(["ip", "-n", NETNS["q3"], "addr", "add", addresses["q3"] + "/24", "brd", BROADCAST4, "dev", "eth0"])
        bed.write_hosts(addresses)
        c.start("q3", args=["0.0.0.0", str(PORT), BROADCAST4, str(DISCOVERY_PORT)])
        m = c.wait_agree(NODES, 3, 15, "q3 re-enters from its new address")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            seed = {x["spec"]: x for x in c.status("q1")["seeds"]}["q3"]
            if seed["addresses"] == ["198.18.2.33:%d" % PORT] and seed["state"] == "connected":
                break
            time.sleep(0.1)
        else:
            raise Failure("q1's seed q3 did not follow the new address: %s" % c.status("q1")["seeds"])
        log("q3 re-entered from 198.18.2.33 (master %s); q1's seed q3 resolves to the new address" % m)


def scenario_ipv6(opts, workdir, args, checked):
    """IPv6 only: the common checks, then node `checked` advertises its unique-local address."""
    with bed_and_cluster(opts, workdir, 6, args) as (bed, c):
        common_checks(c, bed)
        advertised = c.status(checked)["address"]
        if advertised != IP6[checked]:
            raise Failure("%s advertises %s, not its unique-local address" % (checked, advertised))


def scenario_multicast_v6(opts, workdir):
    scenario_ipv6(opts, workdir, lambda n: [IP6[n], str(PORT), GROUP6, str(DISCOVERY_PORT), "--discovery-interface", "eth0"], "q1")


def scenario_seeds_v6(opts, workdir):
    seeds = [x for n in NODES for x in ("--peer", "[%s]" % IP6[n])]
    seeds += ["--peer", "q1"]  # a name with only an AAAA record (the hosts file)
    # Bound to ::, each must still advertise its unique-local address.
    scenario_ipv6(opts, workdir, lambda n: ["::", str(PORT), "--broadcast-address", "none"] + seeds, "q2")


def scenario_rolling_upgrade(opts, workdir):
    """Seeds over IPv4; the nodes start as the older protocol (QUORUM_TEST_PROTOCOL=1) and are
    replaced one at a time, slaves first; never two masters, and the master changes only when
    the master itself is replaced."""
    args = lambda n: [IP4[n], str(PORT), "--broadcast-address", "none"] + SEED_NAMES
    with bed_and_cluster(opts, workdir, 4, args) as (bed, c):
        for n in NODES:
            c.start(n, env={"QUORUM_TEST_PROTOCOL": "1"})
        m = c.wait_agree(NODES, 3, FORM_LIMIT, "three nodes of protocol 1 agree")
        masters = [m]
        order = [n for n in NODES if n != m] + [m]
        for n in order:
            c.stop(n)
            c.start(n)
            m2 = c.wait_agree(NODES, 3, AGREE_LIMIT, "%s is back on the current protocol" % n)
            if m2 != masters[-1]:
                if masters[-1] != n:
                    raise Failure("the master changed from %s to %s while %s was replaced" % (masters[-1], m2, n))
                masters.append(m2)
        current = c.statuses(["q1"])["q1"]["protocolVersion"]
        if current < 2:
            raise Failure("the upgraded build says it speaks protocol %s" % current)
        for n, st in c.statuses(NODES).items():
            if st["protocolVersion"] != current or st["clusterProtocolVersion"] != current:
                raise Failure("%s after the upgrade: protocol %s, cluster %s" % (n, st["protocolVersion"], st["clusterProtocolVersion"]))
        log("upgraded %s one at a time; masters in turn: %s" % (", ".join(order), " -> ".join(masters)))


# Names long and odd enough that they cannot turn up in random bytes by chance.
CAPTURE_NAMES = {n: "capcheck-node-%s-vq7" % n for n in NODES}
CAPTURE_CLUSTER = "capcheck-cluster-zx4"


def pcap_packets(path):
    """The number of packets in a classic pcap file (tcpdump -w)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 24:
        return 0, data
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    import struct
    count, offset = 0, 24
    while offset + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[offset + 8:offset + 12])[0]
        offset += 16 + incl
        count += 1
    return count, data


def captured_run(opts, workdir, keyed):
    """Form, a graceful leave of the master, its return and a crash of the next master, all
    while tcpdump records every node's port on the bridge; returns (packets, bytes captured)."""
    tag = "keyed" if keyed else "plain"
    extra = []
    if keyed:
        key = os.path.join(workdir, "cluster.key")
        with open(key, "w") as fh:
            fh.write("1 %s\n" % os.urandom(32).hex())
        os.chmod(key, 0o600)
        extra = ["--key-file", key]
    args = lambda n: [IP4[n], str(PORT), BROADCAST4, str(DISCOVERY_PORT), "--cluster", CAPTURE_CLUSTER] + extra
    pcaps = {n: os.path.join(workdir, "capture-%s-%s.pcap" % (tag, n)) for n in NODES}
    with bed_and_cluster(opts, workdir, 4, args, names=CAPTURE_NAMES) as (bed, c):
        # The bridge's own device sees none of the frames it forwards: record each node's port.
        dumps = [subprocess.Popen(["tcpdump", "-i", VETH[n], "--immediate-mode", "-U", "-s", "0", "-w", pcaps[n]], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True) for n in NODES]
        try:
            # Ready once it says it listens (tcpdump's own readiness line on standard error).
            for dump in dumps:
                line = dump.stderr.readline().decode(errors="replace")
                if "listening on" not in line:
                    raise Failure("tcpdump did not start: %s" % line.strip())
            for n in NODES:
                c.start(n)
            m = c.wait_agree(NODES, 3, FORM_LIMIT, "three %s nodes agree on a master" % tag)
            c.stop(m)       # a graceful leave: its slave hook, resign, bye
            rest = [n for n in NODES if n != m]
            c.wait_new_master(rest, m, AGREE_LIMIT)
            c.start(m)
            m2 = c.wait_agree(NODES, 3, AGREE_LIMIT, "%s is back (%s)" % (m, tag))
            c.kill(m2)
            c.wait_new_master([n for n in NODES if n != m2], m2, AGREE_LIMIT)
        finally:
            for dump in dumps:
                dump.send_signal(signal.SIGINT)
            for dump in dumps:
                try:
                    dump.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    dump.kill()
                    dump.wait(timeout=10)
    packets, data = 0, b""
    for n in NODES:
        count, raw = pcap_packets(pcaps[n])
        packets += count
        data += raw
    return packets, data


def scenario_capture(opts, workdir):
    secrets = [v.encode() for v in CAPTURE_NAMES.values()] + [CAPTURE_CLUSTER.encode()]
    packets, data = captured_run(opts, workdir, keyed=False)
    shown = [s.decode() for s in secrets if s in data]
    if len(shown) != len(secrets):
        raise Failure("without a key the capture should show every name (the check would prove nothing); it shows %s" % shown)
    log("without a key: %d packets; every node name and the cluster name are readable" % packets)
    packets, data = captured_run(opts, workdir, keyed=True)
    if packets < 100:
        raise Failure("the keyed capture holds only %d packets" % packets)
    leaked = [s.decode() for s in secrets if s in data]
    if leaked:
        raise Failure("the keyed cluster's traffic shows %s in clear" % leaked)
    log("with a key: %d packets (discovery, handshakes, heartbeats, votes, a leave, a crash); no node name, no cluster name" % packets)


SCENARIOS = {"seeds-v4": scenario_seeds_v4, "multicast-v6": scenario_multicast_v6, "seeds-v6": scenario_seeds_v6,
             "rolling-upgrade": scenario_rolling_upgrade, "capture": scenario_capture}


# ----------------------------------------------------------------------------------------------
# Failover benchmark: broadcast discovery against seeds only, in one sitting

def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def bench_block(opts, workdir, mode, runs, crash, leave):
    """`runs` crashes and `runs` leaves of the master, alternating, in a fresh cluster."""
    if mode == "broadcast":
        args = lambda n: [IP4[n], str(PORT), BROADCAST4, str(DISCOVERY_PORT)]
    else:
        args = lambda n: [IP4[n], str(PORT), "--broadcast-address", "none"] + SEED_NAMES
    with bed_and_cluster(opts, tempfile.mkdtemp(dir=workdir), 4, args) as (bed, c):
        for n in NODES:
            c.start(n)
        m = c.wait_agree(NODES, 3, FORM_LIMIT, "%s: formed" % mode)
        for i in range(2 * runs):
            how = "crash" if i % 2 == 0 else "leave"
            rest = [n for n in NODES if n != m]
            if how == "crash":
                c.kill(m)
            else:
                c.procs[m].send_signal(signal.SIGTERM)
            took = c.wait_new_master(rest, m, AGREE_LIMIT)
            (crash if how == "crash" else leave).append(took * 1000)
            if how == "leave":
                c.stop(m)
            c.start(m)
            m = c.wait_agree(NODES, 3, AGREE_LIMIT, "%s: %s back" % (mode, m))
            # Let the restarted node's links settle before the next fault.
            time.sleep(0.3)


def bench(opts, workdir, runs):
    """The two modes take turns in blocks of 5, so a busy moment of the machine falls on both."""
    results = {"broadcast": ([], []), "seeds": ([], [])}
    done = 0
    while done < runs:
        block = min(5, runs - done)
        for mode in ["broadcast", "seeds"]:
            bench_block(opts, workdir, mode, block, *results[mode])
        done += block
    for mode, (crash, leave) in results.items():
        log("%s: crash %s; leave %s" % (mode, " ".join("%.1f" % x for x in sorted(crash)), " ".join("%.1f" % x for x in sorted(leave))))
    (bc, bl), (sc, sl) = results["broadcast"], results["seeds"]
    print("failover in namespaces, %d runs each: crash median %.1f ms (broadcast) vs %.1f ms (seeds only), "
          "leave median %.1f ms vs %.1f ms; differences %+.1f ms and %+.1f ms" % (
              runs, median(bc), median(sc), median(bl), median(sl), median(sc) - median(bc), median(sl) - median(bl)))


# ----------------------------------------------------------------------------------------------

def main():
    global T0
    T0 = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory holding quorumd")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    ap.add_argument("--bench", type=int, default=0, metavar="RUNS", help="measure failover instead (RUNS crashes and leaves per mode)")
    ap.add_argument("--keep-logs", action="store_true")
    opts = ap.parse_args()
    opts.quorumd = os.path.join(opts.bin, "quorumd")
    if os.geteuid() != 0:
        print("networks.py: needs root (network namespaces, nftables)", file=sys.stderr)
        return 1

    workdir = tempfile.mkdtemp(prefix="qs-")
    bed = Bed(workdir)

    def on_signal(signum, frame):
        bed.teardown()
        sys.exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    failed = []
    names = [s for s in opts.scenarios.split(",") if s]
    try:
        if opts.bench:
            bench(opts, workdir, opts.bench)
            return 0
        for name in names:
            if name not in SCENARIOS:
                print("unknown scenario %s" % name, file=sys.stderr)
                return 2
            log("== %s" % name)
            scenario_dir = os.path.join(workdir, name)  # fresh state directories for each
            os.makedirs(scenario_dir)
            try:
                SCENARIOS[name](opts, scenario_dir)
                log("PASS %s" % name)
            except (Failure, RuntimeError) as e:
                failed.append(name)
                log("FAIL %s: %s" % (name, e))
                for n in NODES:
                    path = os.path.join(scenario_dir, n + ".log")
                    if os.path.exists(path):
                        with open(path, errors="replace") as fh:
                            tail = fh.read()[-3000:]
                        print("---- %s log (end)\n%s" % (n, tail))
    finally:
        bed.teardown()
        if not opts.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("logs kept in %s" % workdir)
    print("%d scenarios, %d failed" % (len(names), len(failed)))
    return 1 if failed else 0


T0 = time.monotonic()
if __name__ == "__main__":
    sys.exit(main())
