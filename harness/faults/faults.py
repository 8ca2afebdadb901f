#!/usr/bin/env python3
"""Fault injection on real hosts: five quorumd processes, each in its own network namespace on
one bridge, driven through seeded random fault schedules, checked for safety (never two
masters) and liveness (a master again soon after every fault).

Only the Python standard library; needs root, iproute2 and nftables (harness/faults/run.sh
installs them and builds the binaries). Nothing leaves the namespaces this script creates:
nodes use 198.18.1.1-5/24 (RFC 2544 benchmarking range) on the bridge qfbr0 (which has no
address and no uplink), broadcast 198.18.1.255. Network faults are nftables rules on that
bridge's ports only (see Network). Every wait is bounded, and everything created is removed on exit, also on
failure or Ctrl+C.

  harness/faults/faults.py --schedules 6 --seed 1 --faults-per-schedule 4
  harness/faults/faults.py --list --schedules 3 --seed 7        # print the schedules, run nothing

Times: every node, every hook and this script read the same CLOCK_MONOTONIC (hooks through the
small C helper qfclock.c, this script through time.monotonic_ns()), so intervals from the hook
log, the status samples and the fault events compare exactly.

See harness/faults/README.md for what is checked and how to read the summary.
"""

import argparse
import fcntl
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# ----------------------------------------------------------------------------------------------
# Constants

NODES = ["N1", "N2", "N3", "N4", "N5"]
NETNS = {n: "qf%d" % (i + 1) for i, n in enumerate(NODES)}
VETH = {n: "qfv%d" % (i + 1) for i, n in enumerate(NODES)}
IP = {n: "198.18.1.%d" % (i + 1) for i, n in enumerate(NODES)}
PORT = {n: 7101 + i for i, n in enumerate(NODES)}
BRIDGE = "qfbr0"
BROADCAST = "198.18.1.255"
BROADCAST_PORT = 7199
MAJORITY = 3

MS = 1_000_000
LEASE = 400 * MS            # docs/protocol.md: a master's lease
ELECTION_TIMEOUT = 600 * MS  # a voter's promise
SLACK = 50 * MS             # request/response and rule-installation slack

LIVENESS_TARGET = 2.0       # seconds: the interface's "agree on one master within 2 s"
LIVENESS_LIMIT = LIVENESS_TARGET  # seconds: beyond this a heal without agreement is a violation
WHOLE_LIMIT = 10.0          # seconds: all 5 connected, nobody lost, before the next fault
STARTUP_LIMIT = 10.0        # seconds: a fresh cluster of 5 agrees on a master

KINDS = ["kill", "pause", "leave", "part-2|3", "part-1|4", "part-1|2|2",
         "oneway", "bridge", "loss-one", "loss-all", "cpu"]

LOCK_PATH = "/run/lock/quorum-faults.lock"


def now():
    return time.monotonic_ns()


def secs(ns):
    return ns / 1e9


def fmt_s(x):
    return "%.3f s" % x


def log(msg):
    print(msg, flush=True)


def run(cmd, check=True, quiet=False, input=None):
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1) + 0.4999))))
    return v[k]


def dist(values):
    if not values:
        return "n=0"
    v = sorted(values)
    med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    return "n=%d median %.3f s, p99 %.3f s, max %.3f s" % (len(v), med, percentile(v, 99), v[-1])


# ----------------------------------------------------------------------------------------------
# Network: namespaces, veths, bridge, one nftables table per namespace

def remove_namespaces(namespaces, bridge=None):
    """Ends every process still inside `namespaces` (ours, e.g. from a run killed with -9), then
    removes the namespaces (their veths go with them) and `bridge`."""
    for ns in namespaces:
        if os.path.exists("/run/netns/" + ns):
            for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", ns], check=False)
    if bridge and os.path.exists("/sys/class/net/" + bridge):
        run(["ip", "link", "del", bridge], check=False)


def make_bridge(bridge):
    """A bridge with no address and no uplink: what its ports carry stays among them."""
    run(["ip", "link", "add", bridge, "type", "bridge"])
    run(["ip", "link", "set", bridge, "up"])


def add_namespace(ns, veth, bridge):
    """Namespace `ns` whose eth0 is the far end of `veth`, a port of `bridge` (no address yet).
    A namespace is freed asynchronously after `ip netns del`, so the veth of the one a
    previous scenario used may still exist for a moment: it is deleted (its pair with it) and
    waited for, within a bound."""
    deadline = time.monotonic() + 5
    while os.path.exists("/sys/class/net/" + veth):
        run(["ip", "link", "del", veth], check=False)
        if time.monotonic() > deadline:
            raise RuntimeError("the old %s did not go away within 5 s" % veth)
        time.sleep(0.01)
    run(["ip", "netns", "add", ns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "link", "set", veth, "master", bridge, "up"])


class Network:
    """Namespaces qf1..qf5, each with eth0 (198.18.1.N/24) whose veth peer qfvN is a port of the
    bridge qfbr0. Faults are nftables rules in one table of the bridge family (`bridge qf`, chain
    `qfwd` on the bridge's forward hook) that match only our ports qfv1..qfv5: a frame from node A
    to node B crosses that hook once with iifname qfvA and oifname qfvB (a broadcast once per
    port it is flooded to), so `iifname qfvA oifname qfvB drop` is node B's input drop of source A,
    and one `nft -f` transaction applies a whole partition atomically, at one instant."""

    def __init__(self):
        self.created = False

    def teardown(self):
        # Processes still inside our namespaces (e.g. from a run that was killed -9) are ours:
        # end them by pid, then remove the namespaces (their veths go with them) and the bridge.
        remove_namespaces([NETNS[n] for n in NODES], BRIDGE)
        for n in NODES:
            if os.path.exists("/sys/class/net/" + VETH[n]):
                run(["ip", "link", "del", VETH[n]], check=False)
        if run(["nft", "list", "table", "bridge", "qf"], check=False).returncode == 0:
            run(["nft", "delete", "table", "bridge", "qf"], check=False)

    def setup(self):
        self.teardown()
        self.created = True
        make_bridge(BRIDGE)
        for n in NODES:
            ns = NETNS[n]
            add_namespace(ns, VETH[n], BRIDGE)
            run(["ip", "-n", ns, "addr", "add", IP[n] + "/24", "brd", BROADCAST, "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["nft", "-f", "-"], input=(
            "table bridge qf {\n"
            "  chain qfwd { type filter hook forward priority 0; policy accept; }\n"
            "}\n"))

    def apply(self, rules):
        """Replaces every fault rule by `rules` (nft rule texts), in one transaction."""
        script = "flush chain bridge qf qfwd\n" + "".join("add rule bridge qf qfwd %s\n" % r for r in rules)
        run(["nft", "-f", "-"], input=script)

    def heal(self):
        # The rules may be gone before `nft` returns: the minority check ends here, not at
        # the return (liveness is measured from the return, when the rules are surely gone).
        self.heal_began = now()
        self.apply([])

    @staticmethod
    def drop(sources, dests):
        """Frames from any of `sources` to any of `dests` are dropped (the dests' input drop)."""
        sources = sorted(sources)
        dests = sorted(dests)
        if not sources or not dests:
            return []
        return ["iifname { %s } oifname { %s } drop" % (", ".join('"%s"' % VETH[x] for x in sources),
                                                        ", ".join('"%s"' % VETH[x] for x in dests))]

    @staticmethod
    def split(groups):
        rules = []
        for g in groups:
            rules += Network.drop([x for x in NODES if x not in g], g)
        return rules

    @staticmethod
    def loss(dests, percent=20):
        """`percent` % of the frames to each of `dests` are dropped (their input loses them)."""
        return ['oifname { %s } numgen random mod 100 < %d drop' % (", ".join('"%s"' % VETH[x] for x in sorted(dests)),
                                                                   percent)]


# ----------------------------------------------------------------------------------------------
# The control socket (the protocol quorumctl speaks: one JSON line each way)

def query_status(path, timeout=0.3):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(b'{"command":"status"}\n')
        data = b""
        while not data.endswith(b"\n") and len(data) < 1 << 20:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        obj = json.loads(data.decode())
        if not obj.get("ok"):
            return None
        return obj["status"]
    except (OSError, ValueError, KeyError):
        return None
    finally:
        s.close()


def query_status_quorumctl(quorumctl, path, timeout=1.0):
    try:
        p = subprocess.run([quorumctl, "--socket", path, "status", "--json"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode not in (0, 2):
        return None
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------
# One schedule's cluster

class Sample:
    __slots__ = ("node", "a", "b", "role", "master", "epoch", "quorate", "instance", "size", "lost",
                 "connected", "src")

    def __init__(self, node, a, b, st, src):
        self.node = node
        self.a = a
        self.b = b
        self.role = st.get("role")
        self.master = st.get("master")
        self.epoch = int(st.get("epoch") or 0)
        self.quorate = bool(st.get("quorate"))
        self.instance = st.get("instance")
        self.size = st.get("clusterSize")
        self.lost = st.get("lost")
        self.connected = st.get("connected")
        self.src = src

    def as_json(self):
        return {k: getattr(self, k) for k in self.__slots__}


class Cluster:
    def __init__(self, opts, workdir, sdir, hook):
        self.opts = opts
        self.workdir = workdir
        self.sdir = sdir          # this schedule's directory (logs, state, sockets)
        self.hook = hook
        self.procs = {}           # node -> Popen (alive or not yet reaped)
        self.alive = set()        # nodes that should be running (not killed, not left)
        self.stopped = set()      # nodes under SIGSTOP
        self.events = []          # dicts with "t" (ns) and "what"
        self.samples = []
        self.lock = threading.Lock()
        self.sampling = threading.Event()
        self.threads = []
        self.violations = []      # (kind, detail) found while running
        self.burners = []
        self.pumps = []

    def sock(self, n):
        return os.path.join(self.sdir, n + ".sock")

    def event(self, what, **kw):
        e = dict(kw)
        e["t"] = kw.get("t", now())
        e["what"] = what
        with self.lock:
            self.events.append(e)
        return e

    # -- processes

    def start(self, n):
        """Starts node n in its namespace. Its standard error (the log) goes through a thread that
        prefixes every line with CLOCK_MONOTONIC ns, so the node log lines up with hooks and samples."""
        os.makedirs(os.path.join(self.sdir, "state-" + n), exist_ok=True)
        logpath = os.path.join(self.sdir, n + ".log")
        cmd = ["ip", "netns", "exec", NETNS[n], self.opts.quorumd, IP[n], str(PORT[n]), BROADCAST,
               str(BROADCAST_PORT), "-n", n, "-d", "--state-dir", os.path.join(self.sdir, "state-" + n),
               "--control-socket", self.sock(n), "-m", self.hook, "-s", self.hook]
        t = now()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        with open(logpath, "ab") as fh:
            fh.write(b"%d ----- harness: started pid %d -----\n" % (t, p.pid))

        def pump(pipe, path):
            with open(path, "ab", buffering=0) as fh:
                for line in iter(pipe.readline, b""):
                    fh.write(b"%d %s" % (now(), line))
            pipe.close()

        th = threading.Thread(target=pump, args=(p.stdout, logpath), daemon=True)
        th.start()
        self.pumps.append(th)
        self.procs[n] = p
        self.alive.add(n)
        self.event("start", node=n, t=t, pid=p.pid)

    def kill(self, n, what="kill"):
        p = self.procs[n]
        t = now()
        p.send_signal(signal.SIGKILL)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.alive.discard(n)
        self.stopped.discard(n)
        self.event(what, node=n, t=t, t_dead=now())

    def terminate(self, n):
        """Graceful leave: SIGTERM, wait (bounded) for exit 0."""
        p = self.procs[n]
        t = now()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
            p.kill()
            p.wait(timeout=10)
        self.alive.discard(n)
        self.event("leave", node=n, t=t, t_dead=now(), rc=rc)
        if rc != 0:
            self.violations.append(("leave-exit", "%s did not exit 0 after SIGTERM (status %s)" % (n, rc)))

    def pause(self, n):
        t = now()
        self.procs[n].send_signal(signal.SIGSTOP)
        self.stopped.add(n)
        self.event("stop", node=n, t=t)

    def resume(self, n):
        """SIGCONT, with a status request already waiting in the socket: the first thing the
        resumed node answers. Returns that answer's Sample (or None)."""
        result = {}
        ready = threading.Event()

        def probe():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5.0)
            try:
                s.connect(self.sock(n))
                s.sendall(b'{"command":"status"}\n')
                ready.set()
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                result["b"] = now()
                obj = json.loads(data.decode())
                if obj.get("ok"):
                    result["status"] = obj["status"]
            except (OSError, ValueError):
                pass
            finally:
                ready.set()
                s.close()

        th = threading.Thread(target=probe, daemon=True)
        th.start()
        ready.wait(2.0)
        time.sleep(0.005)
        t = now()
        self.procs[n].send_signal(signal.SIGCONT)
        self.stopped.discard(n)
        self.event("cont", node=n, t=t)
        th.join(6.0)
        if "status" in result:
            smp = Sample(n, t, result["b"], result["status"], "resume")
            with self.lock:
                self.samples.append(smp)
            return t, smp
        return t, None

    def burn(self, seconds):
        t = now()
        p = subprocess.Popen([self.opts.qfclock, "burn", "%.3f" % seconds, "2"])
        self.burners.append(p)
        self.event("cpu", t=t, seconds=seconds)
        try:
            p.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.burners.remove(p)

    def check_exits(self):
        for n in sorted(self.alive):
            p = self.procs.get(n)
            if p is not None and p.poll() is not None:
                self.violations.append(("crash", "%s exited unexpectedly with status %s" % (n, p.returncode)))
                self.event("died", node=n, rc=p.returncode)
                self.alive.discard(n)

    def teardown(self):
        self.sampling.clear()
        for th in self.threads:
            th.join(2.0)
        for p in list(self.burners):
            p.kill()
            p.wait()
        for n, p in self.procs.items():
            if p.poll() is None:
                t = now()
                p.send_signal(signal.SIGKILL)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                if n in self.alive:
                    self.event("teardown", node=n, t=t, t_dead=now())
        self.alive.clear()
        for th in self.pumps:
            th.join(5.0)

    # -- sampling

    def sample(self, n, src):
        a = now()
        if self.opts.sampler == "quorumctl":
            st = query_status_quorumctl(self.opts.quorumctl, self.sock(n))
        else:
            st = query_status(self.sock(n))
        b = now()
        if st is None:
            return None
        smp = Sample(n, a, b, st, src)
        with self.lock:
            self.samples.append(smp)
        return smp

    def start_sampling(self):
        self.sampling.set()
        period = self.opts.sample_ms / 1000.0

        def loop(n):
            while self.sampling.is_set():
                t0 = time.monotonic()
                if n not in self.stopped:
                    self.sample(n, "bg")
                time.sleep(max(0.0, period - (time.monotonic() - t0)))

        for n in NODES:
            th = threading.Thread(target=loop, args=(n,), daemon=True)
            th.start()
            self.threads.append(th)

    def poll(self, nodes):
        return {n: self.sample(n, "poll") for n in nodes}

    # -- agreement

    @staticmethod
    def agree(statuses):
        """All answered, all quorate, one master named by all, that node says master, one epoch."""
        if not statuses or any(s is None for s in statuses.values()):
            return None
        masters = {s.master for s in statuses.values()}
        epochs = {s.epoch for s in statuses.values()}
        if len(masters) != 1 or len(epochs) != 1:
            return None
        m = masters.pop()
        if m is None or m not in statuses:
            return None
        for n, s in statuses.items():
            if not s.quorate:
                return None
            if s.role == "master" and n != m:
                return None
            if s.role not in ("master", "slave"):
                return None
        if statuses[m].role != "master":
            return None
        return m

    @staticmethod
    def whole(statuses):
        if Cluster.agree(statuses) is None:
            return False
        k = len(statuses)
        return all(s.size == k and s.lost == 0 and s.connected == k - 1 for s in statuses.values())

    def wait_until(self, pred, nodes, limit, interval=0.01, since=None):
        """Poll the nodes until pred(statuses) is true. Returns (seconds from `since` (default: now)
        to the end of the first round of answers that satisfied it, pred's value), or (None, None)."""
        t0 = now() if since is None else since
        end = now() + int(limit * 1e9)
        while True:
            st = self.poll(nodes)
            v = pred(st)
            if v:
                return secs(now() - t0), v
            if now() >= end:
                return None, None
            time.sleep(interval)


# ----------------------------------------------------------------------------------------------
# Schedules

def generate(seed, k, hold_scale=1.0, kinds=None):
    rng = random.Random(seed)
    faults = []
    for _ in range(k):
        kind = rng.choice(kinds or KINDS)
        f = {"kind": kind, "target": "master" if rng.random() < 0.6 else "other", "pick": rng.randrange(1000),
             "perm": rng.sample(range(5), 5), "gap": round(rng.uniform(0.2, 0.6), 3)}
        if kind in ("kill", "leave"):
            f["hold"] = rng.uniform(0.1, 2.0)
        elif kind == "pause":
            f["hold"] = rng.uniform(0.05, 0.3) if rng.random() < 0.3 else rng.uniform(0.7, 2.5)
        elif kind in ("cpu", "loss-one", "loss-all"):
            f["hold"] = rng.uniform(1.0, 3.0)
        else:
            f["hold"] = rng.uniform(1.0, 3.5)
        f["hold"] = round(f["hold"] * hold_scale, 3)
        faults.append(f)
    return faults


def describe(f):
    return "%s(%s, %.2fs)" % (f["kind"], f["target"], f["hold"])


def order_for(master, f):
    """The nodes in the fault's order: the fault's permutation applied to [master] + others,
    so a seed always means the same roles (e.g. 'the master alone on one side')."""
    others = sorted(n for n in NODES if n != master)
    base = [master] + others
    return [base[i] for i in f["perm"]]


def victim_for(master, f):
    if f["target"] == "master":
        return master
    others = sorted(n for n in NODES if n != master)
    return others[f["pick"] % len(others)]


def groups_for(master, f):
    kind = f["kind"]
    if kind == "part-1|4":
        v = victim_for(master, f)
        return [[v], [n for n in NODES if n != v]]
    o = order_for(master, f)
    if kind == "part-2|3":
        if f["target"] == "master":  # the master on the minority side
            o = [master] + [n for n in o if n != master]
        else:
            o = [n for n in o if n != master] + [master]
        return [o[:2], o[2:]]
    if kind == "part-1|2|2":
        return [o[:1], o[1:3], o[3:]]
    raise ValueError(kind)


class Runner:
    def __init__(self, opts, net, workdir):
        self.opts = opts
        self.net = net
        self.workdir = workdir
        self.hookdir = os.path.join(workdir, "h")
        os.makedirs(self.hookdir, exist_ok=True)
        self.hook = os.path.join(self.hookdir, "hook")
        shutil.copy(opts.qfclock, self.hook)
        self.results = []

    def run_schedule(self, seed):
        opts = self.opts
        faults = generate(seed, opts.faults_per_schedule, opts.hold_scale, opts.kinds)
        sdir = os.path.join(self.workdir, "s%d" % seed)
        os.makedirs(sdir)
        hooklog = os.path.join(self.hookdir, "hooks.log")
        if os.path.exists(hooklog):
            os.unlink(hooklog)
        self.net.heal()
        c = Cluster(opts, self.workdir, sdir, self.hook)
        res = {"seed": seed, "faults": [], "liveness": [], "failover": [], "majority": [], "startup": None,
               "violations": [], "disruptions": []}
        try:
            self.drive(c, faults, res)
        finally:
            c.teardown()
            self.net.heal()
        hooks = read_hooks(hooklog)
        if os.path.exists(hooklog):
            shutil.move(hooklog, os.path.join(sdir, "hooks.log"))
        res["violations"] += [{"kind": k, "detail": d} for k, d in c.violations]
        res["violations"] += [{"kind": k, "detail": d} for k, d in analyse(c, hooks, res)]
        res["failover"] = failovers(c, hooks, res)
        if res["violations"] or opts.keep_logs:
            dest = os.path.join(opts.artifacts, "seed-%d" % seed)
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(opts.artifacts, exist_ok=True)
            shutil.copytree(sdir, dest, ignore=shutil.ignore_patterns("*.sock"))
            with open(os.path.join(dest, "events.json"), "w") as fh:
                json.dump(c.events, fh, indent=1)
            with open(os.path.join(dest, "samples.jsonl"), "w") as fh:
                for s in sorted(c.samples, key=lambda s: s.a):
                    fh.write(json.dumps(s.as_json()) + "\n")
            res["artifacts"] = dest
        shutil.rmtree(sdir, ignore_errors=True)
        return res

    def drive(self, c, faults, res):
        opts = self.opts
        for n in NODES:
            c.start(n)
        c.start_sampling()
        t, m = c.wait_until(Cluster.whole, NODES, STARTUP_LIMIT)
        res["startup"] = t
        if t is None:
            c.violations.append(("startup", "a fresh cluster of 5 did not agree within %.0f s" % STARTUP_LIMIT))
            return
        for i, f in enumerate(faults):
            c.check_exits()
            time.sleep(f["gap"])
            t, master = c.wait_until(Cluster.agree, NODES, WHOLE_LIMIT)
            if master is None:
                c.violations.append(("stuck", "before fault %d: no agreement within %.0f s" % (i + 1, WHOLE_LIMIT)))
                return
            st = c.poll(NODES)
            epoch = st[master].epoch if st.get(master) else None
            rec = {"i": i, "kind": f["kind"], "target": f["target"], "hold": f["hold"], "master": master, "epoch": epoch}
            c.event("fault", index=i, kind=f["kind"], master=master, epoch=epoch)
            self.net.heal_began = None
            heal_t = self.inject(c, f, master, rec)
            rec["heal"] = heal_t
            c.event("healed", index=i, kind=f["kind"], t=heal_t, t_begin=self.net.heal_began or heal_t)
            res["faults"].append(rec)
            c.check_exits()
            live = sorted(c.alive)
            t, m = c.wait_until(Cluster.agree, live, LIVENESS_LIMIT - secs(now() - heal_t), since=heal_t)
            rec["liveness"] = t
            if t is None:
                c.violations.append(("liveness", "fault %d %s: no agreement on one master within %.1f s of the heal"
                                     % (i + 1, describe(f), LIVENESS_LIMIT)))
                t2, m2 = c.wait_until(Cluster.agree, live, 20.0)
                if m2 is None:
                    c.violations.append(("stuck", "fault %d: still no master 25 s after the heal" % (i + 1)))
                    return
            else:
                res["liveness"].append(t)
            t, ok = c.wait_until(Cluster.whole, NODES, WHOLE_LIMIT)
            rec["whole"] = t
            if t is None:
                c.violations.append(("rejoin", "fault %d %s: the 5 nodes were not all connected (nobody lost) "
                                     "within %.0f s of agreeing" % (i + 1, describe(f), WHOLE_LIMIT)))
                return
        time.sleep(0.3)
        c.check_exits()
        if opts.quorumctl_check:
            quorumctl_check(c)

    def inject(self, c, f, master, rec):
        """Applies fault f, holds it, heals it; returns the heal time (ns)."""
        kind = f["kind"]
        hold = f["hold"]
        net = self.net
        if kind in ("kill", "pause", "leave"):
            v = victim_for(master, f)
            rec["victim"] = v
            rec["on_master"] = v == master
            if kind == "kill":
                c.kill(v)
                time.sleep(hold)
                t = now()
                c.start(v)
                return t
            if kind == "leave":
                c.terminate(v)
                time.sleep(hold)
                t = now()
                c.start(v)
                return t
            c.pause(v)
            time.sleep(hold)
            t, smp = c.resume(v)
            rec["resume_role"] = smp.role if smp else None
            return t
        if kind.startswith("part-"):
            groups = groups_for(master, f)
            rules = Network.split(groups)
            rec["groups"] = groups
            rec["on_master"] = len([g for g in groups if master in g][0]) < MAJORITY
            t0 = now()
            net.apply(rules)
            t1 = now()
            c.event("partition", groups=groups, t=t0, t_applied=t1)
            self.watch_majority(c, groups, hold, rec)
            net.heal()
            return now()
        if kind == "oneway":
            o = order_for(master, f)
            if f["target"] == "master":
                # half the time the master stops hearing one node, half the time one node stops hearing it
                if f["pick"] % 2:
                    a, b = master, [n for n in o if n != master][0]
                else:
                    a, b = [n for n in o if n != master][0], master
            else:
                a, b = [n for n in o if n != master][:2]
            rec["groups"] = [[a], [b]]
            rec["on_master"] = None
            t0 = now()
            net.apply(Network.drop([b], [a]))
            c.event("oneway", dst=a, src=b, t=t0, t_applied=now())
            time.sleep(hold)
            net.heal()
            return now()
        if kind == "bridge":
            o = order_for(master, f)
            x = o[0] if f["target"] == "other" else [n for n in o if n != master][0]
            rest = [n for n in o if n != x]
            ga, gb = rest[:2], rest[2:]
            rules = Network.drop(ga, gb) + Network.drop(gb, ga)
            rec["groups"] = [ga, [x], gb]
            rec["on_master"] = None
            t0 = now()
            net.apply(rules)
            c.event("bridge", groups=[ga, [x], gb], t=t0, t_applied=now())
            time.sleep(hold)
            net.heal()
            return now()
        if kind in ("loss-one", "loss-all"):
            nodes = NODES if kind == "loss-all" else [victim_for(master, f)]
            rec["victim"] = ",".join(nodes)
            rec["on_master"] = None
            t0 = now()
            net.apply(Network.loss(nodes))
            c.event(kind, nodes=nodes, t=t0, t_applied=now())
            time.sleep(hold)
            net.heal()
            return now()
        if kind == "cpu":
            rec["on_master"] = None
            c.burn(hold)
            return now()
        raise ValueError(kind)

    def watch_majority(self, c, groups, hold, rec):
        """During a partition: how long until the majority side (if any) agrees on a master of its own."""
        end = now() + int(hold * 1e9)
        big = [g for g in groups if len(g) >= MAJORITY]
        t0 = now()
        rec["majority_master"] = None
        if not big:
            time.sleep(hold)
            return
        g = big[0]
        while now() < end:
            m = Cluster.agree(c.poll(g))
            if m and m in g:
                rec["majority_master"] = secs(now() - t0)
                break
            time.sleep(0.02)
        rest = (end - now()) / 1e9
        if rest > 0:
            time.sleep(rest)


def quorumctl_check(c):
    """At the end of a schedule: quorumctl itself (status --json, peers --json) on every node."""
    for n in NODES:
        for sub in ("status", "peers"):
            try:
                p = subprocess.run([c.opts.quorumctl, "--socket", c.sock(n), sub, "--json"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=5)
            except subprocess.TimeoutExpired:
                c.violations.append(("quorumctl", "%s %s --json timed out" % (n, sub)))
                continue
            if p.returncode not in (0, 2):
                c.violations.append(("quorumctl", "%s %s --json exit %d: %s" % (n, sub, p.returncode, p.stderr.strip())))
                continue
            try:
                obj = json.loads(p.stdout)
            except ValueError:
                c.violations.append(("quorumctl", "%s %s --json printed no JSON" % (n, sub)))
                continue
            if sub == "status" and (obj.get("name") != n or obj.get("role") not in ("master", "slave")):
                c.violations.append(("quorumctl", "%s status --json: %s" % (n, p.stdout.decode().strip())))
            if sub == "peers" and sorted(x.get("name") for x in obj) != sorted(x for x in NODES if x != n):
                c.violations.append(("quorumctl", "%s peers --json lists %s" % (n, [x.get("name") for x in obj])))


# ----------------------------------------------------------------------------------------------
# Analysis

def read_hooks(path):
    hooks = []
    if not os.path.exists(path):
        return hooks
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 4:
                continue
            t, name, role, epoch = parts
            try:
                hooks.append({"t": int(t), "node": name, "role": role, "epoch": int(epoch) if epoch.isdigit() else -1})
            except ValueError:
                continue
    hooks.sort(key=lambda h: h["t"])
    return hooks


def master_intervals(c, hooks):
    """Per node: [start, end, epoch] from its master hook to its next slave hook, its death, or (for a
    master paused longer than its lease) the end of the lease it held when it was stopped."""
    out = []
    events = sorted(c.events, key=lambda e: e["t"])
    for n in NODES:
        seq = [("hook", h["t"], h) for h in hooks if h["node"] == n]
        for e in events:
            if e.get("node") != n:
                continue
            if e["what"] in ("kill", "leave", "teardown", "died"):
                seq.append(("dead", e.get("t_dead", e["t"]), e))
            elif e["what"] == "stop":
                seq.append(("stop", e["t"], e))
            elif e["what"] == "cont":
                seq.append(("cont", e["t"], e))
        seq.sort(key=lambda x: x[1])
        cur = None
        stop_t = None
        for what, t, x in seq:
            if what == "hook":
                if x["role"] == "master":
                    if cur is None:
                        cur = [t, None, x["epoch"], n]
                elif cur is not None:
                    cur[1] = t
                    out.append(cur)
                    cur = None
            elif what == "dead":
                if cur is not None:
                    cur[1] = t
                    out.append(cur)
                    cur = None
                stop_t = None
            elif what == "stop":
                stop_t = t
            elif what == "cont":
                if cur is not None and stop_t is not None and t - stop_t > LEASE:
                    cur[1] = stop_t + LEASE
                    out.append(cur)
                    cur = None
                stop_t = None
        if cur is not None:
            cur[1] = now()
            out.append(cur)
    return out


def analyse(c, hooks, res):
    v = []
    samples = sorted(c.samples, key=lambda s: s.a)
    # 1. One master per epoch (hooks and status answers).
    by_epoch = {}
    for h in hooks:
        if h["role"] == "master":
            by_epoch.setdefault(h["epoch"], set()).add(h["node"])
    for s in samples:
        if s.role == "master":
            by_epoch.setdefault(s.epoch, set()).add(s.node)
    for e, names in sorted(by_epoch.items()):
        if len(names) > 1:
            v.append(("two-masters-epoch", "epoch %d has masters %s" % (e, sorted(names))))
    # 2. Master epochs grow in the order masters start (hooks).
    last = None
    for h in hooks:
        if h["role"] != "master":
            continue
        if last is not None and h["epoch"] <= last["epoch"]:
            v.append(("epoch-order", "master hook of %s epoch %d at %d started after %s's epoch %d at %d"
                      % (h["node"], h["epoch"], h["t"], last["node"], last["epoch"], last["t"])))
        last = h
    # 3. Master intervals never overlap.
    iv = sorted(master_intervals(c, hooks), key=lambda x: x[0])
    res["intervals"] = len(iv)
    for i in range(len(iv)):
        for j in range(i + 1, len(iv)):
            a, b = iv[i], iv[j]
            if b[0] >= a[1]:
                continue
            if a[3] == b[3]:
                continue
            ov = min(a[1], b[1]) - b[0]
            if ov > 0:
                v.append(("overlap", "%s master epoch %d [%d, %d] overlaps %s master epoch %d [%d, %d] by %.1f ms"
                          % (a[3], a[2], a[0], a[1], b[3], b[2], b[0], b[1], ov / 1e6)))
    # 4. No status says master for an epoch older than a master that had already started.
    first_start = {}
    for h in hooks:
        if h["role"] == "master":
            first_start[h["epoch"]] = min(first_start.get(h["epoch"], h["t"]), h["t"])
    for s in samples:
        if s.role == "master":
            first_start[s.epoch] = min(first_start.get(s.epoch, s.b), s.b)
    epochs = sorted(first_start)
    # earliest start of any epoch greater than e: suffix minimum
    later_min = {}
    running = None
    for e in reversed(epochs):
        later_min[e] = running
        running = first_start[e] if running is None else min(running, first_start[e])
    reported = set()
    for s in samples:
        if s.role != "master":
            continue
        t_newer = later_min.get(s.epoch)
        if t_newer is not None and s.a > t_newer and (s.node, s.epoch) not in reported:
            reported.add((s.node, s.epoch))
            v.append(("stale-master", "%s answered role master epoch %d at %d, %.1f ms after a newer epoch's master "
                      "started" % (s.node, s.epoch, s.a, (s.a - t_newer) / 1e6)))
    # 5. Epochs never decrease within one process; a restarted node, once it knows a master, is not behind.
    per_proc = {}
    for s in samples:
        per_proc.setdefault((s.node, s.instance), []).append(s)
    for (n, inst), ss in per_proc.items():
        # A decrease is proven only when the lower epoch was asked for after the higher one
        # had been answered: two requests in flight at once may be answered in either order.
        answered = sorted(ss, key=lambda s: s.b)
        for s in sorted(ss, key=lambda s: s.a):
            hi = max((h for h in answered if h.b < s.a), key=lambda h: h.epoch, default=None)
            if hi is not None and s.epoch < hi.epoch:
                v.append(("epoch-decrease", "%s (instance %s) said epoch %d when asked at %d, after it had answered epoch %d at %d"
                          % (n, inst, s.epoch, s.a, hi.epoch, hi.b)))
                break
    for n in NODES:
        ss = [s for s in samples if s.node == n]
        best = 0
        inst = None
        for s in ss:
            if s.instance != inst:
                inst = s.instance
                prev_best = best
            if s.epoch and s.epoch < prev_best and s.instance == inst and s.master is not None:
                v.append(("epoch-behind", "%s restarted and followed epoch %d at %d though it had seen epoch %d"
                          % (n, s.epoch, s.a, prev_best)))
                break
            best = max(best, s.epoch)
    # 6. A master paused longer than its lease does not answer as that master on resume.
    stops = {}
    for e in sorted(c.events, key=lambda e: e["t"]):
        if e["what"] == "stop":
            stops[e["node"]] = e["t"]
        elif e["what"] == "cont" and e["node"] in stops:
            t_stop = stops.pop(e["node"])
            if e["t"] - t_stop <= LEASE:
                continue
            before = [s for s in samples if s.node == e["node"] and s.b <= t_stop]
            if not before or before[-1].role != "master":
                continue
            old = before[-1].epoch
            after = [s for s in samples if s.node == e["node"] and s.a >= e["t"] and s.role == "master"
                     and s.epoch == old]
            if after:
                v.append(("paused-master", "%s, paused %.0f ms as master of epoch %d, answered master (%s) %.1f ms "
                          "after SIGCONT" % (e["node"], (e["t"] - t_stop) / 1e6, old, after[0].src,
                                             (after[0].b - e["t"]) / 1e6)))
    # 7. A minority side never has a master: role after the lease, master field after lease + promise.
    parts = [e for e in c.events if e["what"] == "partition"]
    heals = sorted(e.get("t_begin", e["t"]) for e in c.events if e["what"] == "healed")
    for e in parts:
        t1 = e["t_applied"]
        t_end = min([h for h in heals if h > t1] or [now()])
        for g in e["groups"]:
            if len(g) >= MAJORITY:
                continue
            for s in samples:
                if s.node not in g or s.b > t_end or s.a < t1:
                    continue
                if s.role == "master" and s.a > t1 + LEASE + SLACK:
                    v.append(("minority-master", "%s in minority %s answered role master epoch %d %.0f ms into "
                              "the partition" % (s.node, g, s.epoch, (s.a - t1) / 1e6)))
                    break
                if s.master is not None and s.a > t1 + LEASE + ELECTION_TIMEOUT + 2 * SLACK:
                    v.append(("minority-master", "%s in minority %s named master %s (epoch %d) %.0f ms into "
                              "the partition" % (s.node, g, s.master, s.epoch, (s.a - t1) / 1e6)))
                    break
    return v


def failovers(c, hooks, res):
    """For each fault aimed at the master: fault -> the first master hook of another node with a
    newer epoch before the heal; and master changes during faults not aimed at the master."""
    out = []
    for rec in res["faults"]:
        ev = [e for e in c.events if e["what"] == "fault" and e["index"] == rec["i"]]
        if not ev:
            continue
        t_fault = ev[0]["t"]
        t_heal = rec["heal"]
        new = [h for h in hooks if h["role"] == "master" and h["t"] > t_fault and h["node"] != rec["master"]
               and rec["epoch"] is not None and h["epoch"] > rec["epoch"]]
        during = [h for h in new if h["t"] <= t_heal]
        changed = [h for h in hooks if h["role"] == "master" and t_fault < h["t"] <= t_heal
                   and rec["epoch"] is not None and h["epoch"] > rec["epoch"]]
        if rec.get("on_master"):
            if during:
                out.append({"kind": rec["kind"], "seconds": secs(during[0]["t"] - t_fault), "hold": rec["hold"]})
            else:
                out.append({"kind": rec["kind"], "seconds": None, "hold": rec["hold"]})
        elif changed:
            # a fault not aimed at the master (or a one-way/bridge/loss/cpu fault) that changed it anyway
            res["disruptions"].append({"kind": rec["kind"], "seconds": secs(changed[0]["t"] - t_fault),
                                       "to": changed[0]["node"]})
    return out


# ----------------------------------------------------------------------------------------------
# Main

def replay_cmd(opts, seed):
    cmd = "harness/faults/run.sh --schedules 1 --seed %d --faults-per-schedule %d" % (seed, opts.faults_per_schedule)
    if opts.hold_scale != 1.0:
        cmd += " --hold-scale %g" % opts.hold_scale
    if opts.kinds:
        cmd += " --kinds %s" % shlex.quote(",".join(opts.kinds))
    if opts.bin_given:
        cmd += " --bin %s" % opts.bin
    return cmd


def summary(opts, results, elapsed):
    lines = []
    lines.append("")
    lines.append("== quorum fault injection: %d schedules (seeds %d..%d), %d faults each, binaries %s, %.0f s"
                 % (len(results), opts.seed, opts.seed + max(0, len(results) - 1), opts.faults_per_schedule,
                    opts.bin, elapsed))
    counts = {}
    for r in results:
        for f in r["faults"]:
            counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    lines.append("faults by kind (%d): %s" % (sum(counts.values()),
                                             ", ".join("%s %d" % (k, counts.get(k, 0)) for k in KINDS)))
    starts = [r["startup"] for r in results if r["startup"] is not None]
    lines.append("start-up (5 fresh nodes -> whole and agreed): %s" % dist(starts))
    live = [x for r in results for x in r["liveness"]]
    lines.append("liveness after heal (heal -> every live node names one master, which says master): %s; "
                 "bound %.1f s (beyond it: a violation)" % (dist(live), LIVENESS_LIMIT))
    per_kind = {}
    for r in results:
        for f in r["faults"]:
            if f.get("liveness") is not None:
                per_kind.setdefault(f["kind"], []).append(f["liveness"])
    for k in KINDS:
        if k in per_kind:
            lines.append("  liveness %-10s %s" % (k, dist(per_kind[k])))
    lines.append("failover (fault on the master -> another node's master hook, while the fault holds):")
    fo = {}
    missed = {}
    for r in results:
        for x in r["failover"]:
            if x["seconds"] is None:
                missed.setdefault(x["kind"], []).append(x["hold"])
            else:
                fo.setdefault(x["kind"], []).append(x["seconds"])
    for k in KINDS:
        if k in fo or k in missed:
            m = missed.get(k, [])
            extra = ""
            if m:
                extra = "; no new master before the heal in %d (holds %s s)" % (
                    len(m), ", ".join("%.2f" % h for h in sorted(m)[:8]) + (" ..." if len(m) > 8 else ""))
            lines.append("  %-12s %s%s" % (k, dist(fo.get(k, [])), extra))
    maj = [f["majority_master"] for r in results for f in r["faults"] if f.get("majority_master") is not None]
    lines.append("partitions: the majority side agreed on a master after %s" % dist(maj))
    dis = {}
    for r in results:
        for d in r["disruptions"]:
            dis.setdefault(d["kind"], []).append(d["seconds"])
    if dis:
        lines.append("master changes during faults not aimed at the master: %s"
                     % ", ".join("%s %d" % (k, len(dis[k])) for k in KINDS if k in dis))
    else:
        lines.append("master changes during faults not aimed at the master: none")
    nv = sum(len(r["violations"]) for r in results)
    lines.append("violations: %d" % nv)
    for r in results:
        for x in r["violations"]:
            lines.append("  [seed %d] %s: %s" % (r["seed"], x["kind"], x["detail"]))
        if r["violations"]:
            lines.append("    replay: %s" % replay_cmd(opts, r["seed"]))
            if r.get("artifacts"):
                lines.append("    logs: %s (node logs, hooks.log, events.json, samples.jsonl)" % r["artifacts"])
    lines.append("%d schedules, %d violations" % (len(results), nv))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schedules", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1, help="schedule i (from 0) uses seed SEED+i")
    ap.add_argument("--faults-per-schedule", type=int, default=4)
    ap.add_argument("--hold-scale", type=float, default=1.0,
                    help="multiply every fault's hold time (e.g. 2 for partitions of 2 to 7 s)")
    ap.add_argument("--kinds", type=lambda v: v.split(","), default=None,
                    help="only these kinds of fault, comma-separated (default: all %d)" % len(KINDS))
    ap.add_argument("--bin", default=None, help="directory holding quorumd and quorumctl (default .build/release)")
    ap.add_argument("--qfclock", required=False, help="the compiled harness/faults/qfclock.c")
    ap.add_argument("--sample-ms", type=int, default=50, help="status sampling period per node")
    ap.add_argument("--sampler", choices=["socket", "quorumctl"], default="socket",
                    help="socket: speak quorumctl's protocol on the control socket directly (cheap, default); "
                         "quorumctl: run quorumctl status --json for every sample")
    ap.add_argument("--no-quorumctl-check", dest="quorumctl_check", action="store_false")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop starting new schedules after this")
    ap.add_argument("--artifacts", default="/tmp/qf-artifacts", help="where a failing schedule's logs are kept")
    ap.add_argument("--keep-logs", action="store_true", help="keep every schedule's logs in --artifacts")
    ap.add_argument("--list", action="store_true", help="print the schedules and exit")
    ap.add_argument("--json", default=None, help="also write all results to this file")
    opts = ap.parse_args()
    for k in opts.kinds or []:
        if k not in KINDS:
            ap.error("unknown fault kind %r (kinds: %s)" % (k, ", ".join(KINDS)))

    if opts.list:
        for i in range(opts.schedules):
            s = opts.seed + i
            print("seed %d: %s" % (s, ", ".join(describe(f) for f in generate(s, opts.faults_per_schedule, opts.hold_scale, opts.kinds))))
        return 0

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    opts.bin_given = opts.bin is not None
    opts.bin = os.path.abspath(opts.bin or os.path.join(root, ".build", "release"))
    opts.quorumd = os.path.join(opts.bin, "quorumd")
    opts.quorumctl = os.path.join(opts.bin, "quorumctl")
    for b in (opts.quorumd, opts.quorumctl):
        if not os.access(b, os.X_OK):
            print("faults.py: %s not found (swift build -c release --product ...)" % b, file=sys.stderr)
            return 1
    if os.geteuid() != 0:
        print("faults.py: needs root (network namespaces, nftables)", file=sys.stderr)
        return 1
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            print("faults.py: needs %s (harness/faults/run.sh installs it)" % tool, file=sys.stderr)
            return 1

    lockf = open(LOCK_PATH, "w")
    try:
        fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("faults.py: another fault-injection run holds %s" % LOCK_PATH, file=sys.stderr)
        return 1

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    workdir = tempfile.mkdtemp(prefix="qf-", dir="/tmp")
    net = Network()
    results = []
    t_begin = time.monotonic()
    interrupted = False
    try:
        if not opts.qfclock:
            opts.qfclock = os.path.join(workdir, "qfclock")
            run(["cc", "-O2", "-Wall", "-o", opts.qfclock, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                          "qfclock.c")])
        net.setup()
        runner = Runner(opts, net, workdir)
        for i in range(opts.schedules):
            if opts.max_minutes is not None and time.monotonic() - t_begin > opts.max_minutes * 60:
                log("stopping: --max-minutes %.0f reached" % opts.max_minutes)
                break
            seed = opts.seed + i
            t0 = time.monotonic()
            r = runner.run_schedule(seed)
            results.append(r)
            live = ", ".join("%.2f" % x for x in r["liveness"])
            log("schedule %d/%d seed %d (%.1f s): %s | liveness [%s] | %s" % (
                i + 1, opts.schedules, seed, time.monotonic() - t0,
                ", ".join("%s%s" % (describe(f), "" if f.get("liveness") is not None else "!") for f in r["faults"]),
                live, ("%d VIOLATIONS" % len(r["violations"])) if r["violations"] else "ok"))
            for x in r["violations"]:
                log("    %s: %s" % (x["kind"], x["detail"]))
    except KeyboardInterrupt as e:
        interrupted = True
        log("interrupted (%s): cleaning up" % (e or "Ctrl+C"))
    finally:
        net.teardown()
        shutil.rmtree(workdir, ignore_errors=True)
        lockf.close()
    lines = summary(opts, results, time.monotonic() - t_begin)
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump({"results": results}, fh, indent=1, default=str)
    for line in lines:
        print(line)
    nv = sum(len(r["violations"]) for r in results)
    if nv:
        return 1
    if interrupted:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
