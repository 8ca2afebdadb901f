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
  witness-crash-master, witness-crash-slave, witness-cut-link, witness-down
               a two-node cluster with a witness: A (q1) and B (q2) normal, W (q3) `--witness`,
               IPv4 broadcast discovery. All three agree on a master, A or B, W's role "witness".
               Then, on a fresh cluster each: the master killed (the other takes over, W follows
               it); the slave killed (the master stays); the link between A and B alone cut by
               nftables in their namespaces (one of them stays master, W follows it; healed,
               all agree); W killed (A and B, 2 of 3, keep their master; W back, still the
               same). A thread samples every live node's status every 20 ms all along and fails
               the scenario on two masters in one round, two masters of one epoch, a master of an
               older epoch after a newer one answered, or a witness that says master.

With --bench RUNS, it measures instead: RUNS crashes and RUNS leaves of the master, in a
cluster that finds itself by broadcast and in one that uses seeds only (broadcast off), in one
sitting, and prints the medians of the time from the kill (or SIGTERM) until a new master
answers `status` as master.

Only the Python standard library; needs root, iproute2 and nftables (run.sh installs them and
builds the binaries). Nothing leaves the namespaces: addresses are 198.18.2.0/24 (RFC 2544) and
fd00:18:3::/64 on the bridge qsbr0, which has no address and no uplink. Every wait is bounded;
namespaces (with any nftables table inside them), bridge, nftables table, hosts files and
processes are removed on exit, also on failure or Ctrl+C. The last line is "N scenarios, F failed".
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


# ----------------------------------------------------------------------------------------------
# A two-node cluster with a witness: A and B may be master, W (`--witness`) votes and counts but
# is never master (role "witness"). Each scenario starts a fresh one, faults it once, and samples
# every live node's status (the quorumctl protocol) in rounds all along.

WA, WB, WW = NODES            # A, B and the witness W
WITNESS_STABLE = 1.5          # seconds of sampling that must show no change after a fault: more than
                              # a lost peer's silence (600 ms) plus a lease (400 ms), so a candidacy
                              # of the far side or a lapsed lease would show in it
WITNESS_ROUND = 0.02          # seconds between sampling rounds


class Sampler:
    """A thread that asks every node of `nodes` (the live ones, changed as the test kills and
    starts them) for its status, one after the other, every WITNESS_ROUND, and keeps each round.
    Failures (checked at once in the thread, raised by check()):
      - two nodes answer role master in one round;
      - two nodes answer master of the same epoch, in any rounds;
      - a node answers master of an epoch after another node had already answered master of a
        newer epoch (a stale master: its request was sent after that answer came);
      - the witness answers role master."""

    def __init__(self, c, nodes, witness):
        self.c = c
        self.nodes = list(nodes)
        self.witness = witness
        self.rounds = []          # (t request of the first, t answer of the last, {node: status or None})
        self.problems = []
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.thread = None
        self.master_of_epoch = {}  # epoch -> node answering master of it
        self.newest = None         # (epoch, t answer) of the newest epoch answered as master

    def set_nodes(self, nodes):
        with self.lock:
            self.nodes = list(nodes)

    def __enter__(self):
        self.running.set()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running.clear()
        self.thread.join(5.0)
        return False

    def loop(self):
        while self.running.is_set():
            t0 = time.monotonic()
            self.one_round()
            time.sleep(max(0.0, WITNESS_ROUND - (time.monotonic() - t0)))

    def one_round(self):
        with self.lock:
            nodes = list(self.nodes)
        got = {}
        first = time.monotonic()
        for n in nodes:
            a = time.monotonic()
            s = self.c.status(n)
            b = time.monotonic()
            got[n] = s
            if s and s.get("role") == "master":
                self.saw_master(n, s, a, b)
            if n == self.witness and s and s.get("role") == "master":
                self.problem("the witness %s answered role master (epoch %s)" % (n, s.get("epoch")))
        last = time.monotonic()
        masters = sorted(n for n, s in got.items() if s and s.get("role") == "master")
        if len(masters) > 1:
            self.problem("two masters in one round of %.1f ms: %s" % (
                (last - first) * 1000, ", ".join("%s (epoch %s)" % (n, got[n].get("epoch")) for n in masters)))
        with self.lock:
            self.rounds.append((first, last, got))

    def saw_master(self, n, s, a, b):
        epoch = int(s.get("epoch") or 0)
        other = self.master_of_epoch.setdefault(epoch, n)
        if other != n:
            self.problem("%s and %s both answered master of epoch %d" % (other, n, epoch))
        if self.newest and self.newest[0] > epoch and a > self.newest[1]:
            self.problem("%s answered master of epoch %d %.1f ms after a master of the newer epoch %d had answered"
                         % (n, epoch, (a - self.newest[1]) * 1000, self.newest[0]))
        if not self.newest or epoch > self.newest[0]:
            self.newest = (epoch, b)

    def problem(self, what):
        with self.lock:
            if len(self.problems) < 20:
                self.problems.append("[%7.2f] %s" % (time.monotonic() - T0, what))

    def check(self):
        with self.lock:
            problems = list(self.problems)
        if problems:
            raise Failure("; ".join(problems))

    def latest(self):
        """The newest complete round: {node: status or None}."""
        with self.lock:
            return dict(self.rounds[-1][2]) if self.rounds else {}

    def rounds_since(self, t):
        with self.lock:
            return [r for r in self.rounds if r[0] >= t]

    def wait(self, pred, limit, what):
        """The first value of pred(round) that is true, from rounds taken after now, within `limit` s."""
        t0 = time.monotonic()
        seen = 0
        while time.monotonic() - t0 < limit:
            self.check()
            rounds = self.rounds_since(t0)
            for r in rounds[seen:]:
                v = pred(r[2])
                if v:
                    return v
            seen = len(rounds)
            time.sleep(WITNESS_ROUND / 2)
        self.check()
        raise Failure("not within %.0f s: %s\n%s" % (limit, what, describe_witness(self.latest())))

    def hold(self, seconds, pred, what):
        """Every round taken in the next `seconds` must satisfy pred (which returns None when it
        does, else what is wrong)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(WITNESS_ROUND)
            self.check()
        count = 0
        for r in self.rounds_since(t0):
            if r[0] > t0 + seconds:
                break
            count += 1
            wrong = pred(r[2])
            if wrong:
                raise Failure("%s: at %.0f ms of %.1f s, %s\n%s" % (what, (r[0] - t0) * 1000, seconds, wrong,
                                                                  describe_witness(r[2])))
        if count < 5:
            raise Failure("only %d sampling rounds in %.1f s (%s): the sampler is stuck" % (count, seconds, what))
        return count


def describe_witness(st):
    lines = []
    for n in sorted(st):
        s = st[n]
        if s is None:
            lines.append("  %s: no answer" % n)
        else:
            lines.append("  %s: role %s, master %s, epoch %s, quorate %s, size %s, connected %s, lost %s, "
                         "noMasterReason %s" % (n, s.get("role"), s.get("master"), s.get("epoch"), s.get("quorate"),
                                                s.get("clusterSize"), s.get("connected"), s.get("lost"),
                                                s.get("noMasterReason")))
    return "\n".join(lines)


def witness_agreed(st, lost=0):
    """The master every answering node names, if: all answered, all quorate, cluster size 3 with
    `lost` members lost, the one named says master and is A or B, W says witness, any other says slave."""
    if not st or any(s is None for s in st.values()):
        return None
    named = {s.get("master") for s in st.values()}
    if len(named) != 1:
        return None
    m = named.pop()
    if m not in (WA, WB) or m not in st:
        return None
    for n, s in st.items():
        if not s.get("quorate") or s.get("clusterSize") != 3 or s.get("lost") != lost:
            return None
        want = "master" if n == m else ("witness" if n == WW else "slave")
        if s.get("role") != want:
            return None
    return m


def witness_cluster(opts, workdir):
    args = lambda n: [IP4[n], str(PORT), BROADCAST4, str(DISCOVERY_PORT)] + (["--witness"] if n == WW else [])
    return bed_and_cluster(opts, workdir, 4, args)


def witness_form(c, s):
    """Start A, B and W; all three agree on one master, A or B, and W says witness (and witness: true)."""
    for n in NODES:
        c.start(n)
    m = s.wait(witness_agreed, FORM_LIMIT, "A (%s), B (%s) and the witness W (%s) agree on a master" % (WA, WB, WW))
    w = c.status(WW)
    if not w or w.get("witness") is not True or w.get("eligible") is not False:
        raise Failure("W's status does not say it is a witness: %s" % w)
    log("formed: master %s, %s slave, %s witness" % (m, [n for n in (WA, WB) if n != m][0], WW))
    return m


def witness_rejoin(c, s, n, what):
    """Restart node n (its state kept); all three agree again."""
    c.start(n)
    s.set_nodes(NODES)
    m = s.wait(witness_agreed, AGREE_LIMIT, what)
    log("%s; master %s" % (what, m))
    return m


def witness_keeps(m, alive):
    """A check for Sampler.hold: among `alive`, m is master and the only one, every one names m."""
    def wrong(st):
        for n in alive:
            x = st.get(n)
            if x is None:
                return "%s did not answer" % n
            if x.get("master") != m:
                return "%s names master %s, not %s" % (n, x.get("master"), m)
            want = "master" if n == m else ("witness" if n == WW else "slave")
            if x.get("role") != want:
                return "%s says %s, not %s" % (n, x.get("role"), want)
            if not x.get("quorate"):
                return "%s is not quorate" % n
        return None
    return wrong


def witness_crash(opts, workdir, victim_is_master):
    with witness_cluster(opts, workdir) as (bed, c), Sampler(c, NODES, WW) as s:
        m = witness_form(c, s)
        other = [n for n in (WA, WB) if n != m][0]
        victim = m if victim_is_master else other
        alive = [n for n in NODES if n != victim]
        t0 = time.monotonic()
        c.kill(victim)
        s.set_nodes(alive)
        # The survivors see the victim lost (and, for a crashed master, the other node takes over).
        want = other if victim_is_master else m
        s.wait(lambda st: witness_agreed(st, lost=1) == want, AGREE_LIMIT,
               "%s and %s agree on master %s with %s lost" % (alive[0], alive[1], want, victim))
        log("killed %s %s (SIGKILL): %s master, %s following, after %.0f ms" % (
            "master" if victim_is_master else "slave", victim, want, WW, (time.monotonic() - t0) * 1000))
        rounds = s.hold(WITNESS_STABLE, witness_keeps(want, alive), "%s stays master without %s" % (want, victim))
        log("%s stayed master over %d sampling rounds (%.1f s)" % (want, rounds, WITNESS_STABLE))
        back = witness_rejoin(c, s, victim, "the restarted %s is back" % victim)
        if not victim_is_master and back != m:
            raise Failure("the master changed from %s to %s when the slave %s came back" % (m, back, victim))
        s.check()


def scenario_witness_crash_master(opts, workdir):
    witness_crash(opts, workdir, victim_is_master=True)


def scenario_witness_crash_slave(opts, workdir):
    witness_crash(opts, workdir, victim_is_master=False)


def cut_link(a, b, on):
    """Drop all traffic between a's and b's addresses, both ways, by nftables in their own
    namespaces (table inet qw; gone with the namespace); both still reach W. on=False removes it."""
    for x, y in ((a, b), (b, a)):
        ns = NETNS[x]
        if on:
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=(
                "table inet qw {\n"
                "  chain in { type filter hook input priority 0; policy accept; ip saddr %s drop; }\n"
                "  chain out { type filter hook output priority 0; policy accept; ip daddr %s drop; }\n"
                "}\n" % (IP4[y], IP4[y])))
        else:
            run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "qw"])


def scenario_witness_cut_link(opts, workdir):
    """The link between A and B cut, both reaching W: exactly one of them is master, the side W
    backs, and stays so; W follows it; then healed, all three agree again."""
    with witness_cluster(opts, workdir) as (bed, c), Sampler(c, NODES, WW) as s:
        m = witness_form(c, s)
        t0 = time.monotonic()
        cut_link(WA, WB, True)

        def settled(st):
            # A and B each see one member lost (the other), W none; one master among A and B,
            # W names it and follows it, the other is not master.
            if any(st.get(n) is None for n in NODES):
                return None
            if st[WA].get("lost") != 1 or st[WB].get("lost") != 1 or st[WW].get("lost") != 0:
                return None
            masters = [n for n in (WA, WB) if st[n].get("role") == "master"]
            if len(masters) != 1:
                return None
            w = masters[0]
            if st[WW].get("master") != w or st[WW].get("role") != "witness" or not st[w].get("quorate"):
                return None
            return w

        w = s.wait(settled, AGREE_LIMIT, "after the cut between %s and %s: one master, W following it" % (WA, WB))
        loser = WB if w == WA else WA
        log("cut %s-%s: %s master (%s before the cut), %s not; W follows %s; settled after %.0f ms (%s: role %s, names %s)" % (
            WA, WB, w, m, loser, w, (time.monotonic() - t0) * 1000, loser, s.latest()[loser].get("role"),
            s.latest()[loser].get("master")))

        def still(st):
            if any(st.get(n) is None for n in NODES):
                return "a node did not answer"
            if settled(st) != w:
                return "not (only %s master, W following it, A and B each seeing the other lost)" % w
            return None

        rounds = s.hold(WITNESS_STABLE, still, "%s stays the only master during the cut" % w)
        loser_roles = sorted({r[2][loser].get("role") for r in s.rounds_since(t0) if r[2].get(loser)})
        log("%s stayed the only master over %d sampling rounds (%.1f s); %s said %s" % (
            w, rounds, WITNESS_STABLE, loser, ", ".join(loser_roles)))
        cut_link(WA, WB, False)
        m2 = s.wait(witness_agreed, AGREE_LIMIT, "the cut between %s and %s healed" % (WA, WB))
        log("healed: master %s" % m2)
        s.check()


def scenario_witness_down(opts, workdir):
    """W killed: A and B (2 of 3) keep the same master; W restarted: still the same master."""
    with witness_cluster(opts, workdir) as (bed, c), Sampler(c, NODES, WW) as s:
        m = witness_form(c, s)
        alive = [WA, WB]
        t0 = time.monotonic()
        c.kill(WW)
        s.set_nodes(alive)
        s.wait(lambda st: witness_agreed(st, lost=1) == m, AGREE_LIMIT,
               "%s and %s keep master %s with the witness lost" % (WA, WB, m))
        log("killed the witness %s (SIGKILL): %s and %s see it lost after %.0f ms, master still %s" % (
            WW, WA, WB, (time.monotonic() - t0) * 1000, m))
        rounds = s.hold(WITNESS_STABLE, witness_keeps(m, alive), "%s stays master without the witness" % m)
        log("%s stayed master over %d sampling rounds (%.1f s)" % (m, rounds, WITNESS_STABLE))
        back = witness_rejoin(c, s, WW, "the restarted witness %s is back" % WW)
        if back != m:
            raise Failure("the master changed from %s to %s when the witness came back" % (m, back))
        s.check()


SCENARIOS = {"seeds-v4": scenario_seeds_v4, "multicast-v6": scenario_multicast_v6, "seeds-v6": scenario_seeds_v6,
             "rolling-upgrade": scenario_rolling_upgrade, "capture": scenario_capture,
             "witness-crash-master": scenario_witness_crash_master, "witness-crash-slave": scenario_witness_crash_slave,
             "witness-cut-link": scenario_witness_cut_link, "witness-down": scenario_witness_down}


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
