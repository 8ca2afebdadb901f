#!/usr/bin/env python3
"""Scale figures for quorumd: N release-built nodes on loopback (127.0.0.1, discovery on
127.255.255.255, never the real network), all started in the same second, for each N given.

For each size it prints: time from the start to every node naming one master and counting
all N members; idle CPU per node (median, max) and for the whole cluster; write syscalls per
second per node (each frame is one write, so this bounds the frames sent); RSS per node;
crash (SIGKILL of the master) and leave (SIGTERM) failover, master's death to the new
master's hook (median and p99 over RUNS runs; the hook is bench/qbench.c, CLOCK_MONOTONIC);
and the join time of one more node (its exec to its slave hook). A size whose nodes do not
agree within the deadline prints "none" and skips what needs an agreed cluster.

Run by bench/scale.sh (which builds what it needs). Every process and the temporary
directory are removed on exit, whatever happens.
"""
import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# The control socket's status request, as the namespace harness asks it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness", "faults"))
from faults import query_status  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def percentile(values, p):
    v = sorted(values)
    if not v:
        return None
    rank = max(1, -(-len(v) * p // 100))  # nearest rank
    return v[int(rank) - 1]


class Cluster:
    def __init__(self, opts, size, workdir):
        self.opts, self.size, self.dir = opts, size, workdir
        self.procs = {}
        self.base = self.free_base(size + 2)
        self.hooks = os.path.join(workdir, "hooks.log")
        for kind in ("master", "slave"):
            shutil.copy(opts.qbench, os.path.join(workdir, kind + "-hook"))
        open(self.hooks, "w").close()

    @staticmethod
    def free_base(count):
        for _ in range(200):
            base = random.randrange(20000, 30000 - count)
            ok = True
            for p in range(base, base + count + 1):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    try:
                        s.bind(("127.0.0.1", p))
                    except OSError:
                        ok = False
                    finally:
                        s.close()
            if ok:
                return base
        raise SystemExit("scale: no free port range")

    def name(self, i):
        return "s%03d" % i

    def sock(self, name):
        return os.path.join(self.dir, name + ".sock")

    def start(self, i):
        name = self.name(i)
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        args = [self.opts.quorumd, "127.0.0.1", str(self.base + 1 + i), "127.255.255.255", str(self.base),
                "-n", name, "--state-dir", os.path.join(self.dir, "state-" + name), "--control-socket", self.sock(name),
                "-m", os.path.join(self.dir, "master-hook"), "-s", os.path.join(self.dir, "slave-hook")]
        spawned = mono_ns()
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        return spawned

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def running(self):
        return [n for n, p in self.procs.items() if p.poll() is None]

    def agreed(self, names, size):
        """The master every node in `names` names, when all agree and count `size` members."""
        master = None
        for n in names:
            s = query_status(self.sock(n))
            if not s or not s.get("quorate") or s.get("clusterSize") != size or s.get("master") is None:
                return None
            if master is None:
                master = s["master"]
            elif s["master"] != master:
                return None
        return master

    def wait_agreed(self, names, size, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            m = self.agreed(names, size)
            if m:
                return m
            time.sleep(0.05)
        return None

    def hook_lines(self):
        with open(self.hooks) as f:
            return [l.split() for l in f if l.strip()]

    def wait_hook(self, after, kind, exclude=None, who=None, limit=20):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            for fields in self.hook_lines()[after:]:
                if len(fields) >= 5 and fields[4] == kind and fields[1] != exclude and (who is None or fields[1] == who):
                    return int(fields[0])
            time.sleep(0.005)
        return None

    def ticks(self, name):
        with open("/proc/%d/stat" % self.procs[name].pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def syscw(self, name):
        with open("/proc/%d/io" % self.procs[name].pid) as f:
            for line in f:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
        return 0

    def rss_mb(self, name):
        with open("/proc/%d/status" % self.procs[name].pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def fmt(v, unit="", digits=1):
    return "-" if v is None else ("%.*f%s" % (digits, v, unit))


def measure(opts, size):
    workdir = tempfile.mkdtemp(prefix="qscale-")
    c = Cluster(opts, size, workdir)
    row = {"size": size}
    try:
        t0 = time.monotonic()
        for i in range(size):
            c.start(i)
        names = [c.name(i) for i in range(size)]
        master = c.wait_agreed(names, size, opts.deadline)
        row["agree"] = (time.monotonic() - t0) if master else None
        if not master:
            return row
        # Idle: the cluster settled; CPU, writes and RSS over the window.
        time.sleep(1)
        t_before = {n: c.ticks(n) for n in names}
        w_before = {n: c.syscw(n) for n in names}
        time.sleep(opts.idle)
        cpu = [100.0 * (c.ticks(n) - t_before[n]) / HZ / opts.idle for n in names]
        writes = [(c.syscw(n) - w_before[n]) / opts.idle for n in names]
        rss = [c.rss_mb(n) for n in names]
        row.update(cpu_median=statistics.median(cpu), cpu_max=max(cpu), cpu_cluster=sum(cpu),
                   writes=statistics.median(writes), rss=statistics.median(rss))
        # Crash and leave: the master dies; the new master's hook starts.
        for kind, sig in (("crash", signal.SIGKILL), ("leave", signal.SIGTERM)):
            samples = []
            for run in range(opts.runs):
                m = c.wait_agreed(names, size, 20)
                if not m:
                    break
                after = len(c.hook_lines())
                t_kill = mono_ns()
                c.procs[m].send_signal(sig)
                t_hook = c.wait_hook(after, "master", exclude=m)
                if t_hook is None:
                    break
                samples.append((t_hook - t_kill) / 1e6)
                try:
                    c.procs[m].wait(timeout=10)
                except subprocess.TimeoutExpired:
                    c.procs[m].kill()
                c.start(names.index(m))
            row[kind] = samples
        # Join: one more node.
        m = c.wait_agreed(names, size, 20)
        if m:
            after = len(c.hook_lines())
            spawned = c.start(size)
            t_hook = c.wait_hook(after, "slave", who=c.name(size))
            row["join"] = None if t_hook is None else (t_hook - spawned) / 1e6
        return row
    finally:
        c.stop_all()
        if opts.keep:
            print("kept %s" % workdir, file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quorumd", required=True)
    ap.add_argument("--qbench", required=True, help="the compiled bench/qbench.c (the role hook)")
    ap.add_argument("--sizes", default="5,25,50,100")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of the idle measurement")
    ap.add_argument("--deadline", type=float, default=30.0, help="seconds allowed for agreement after the start")
    ap.add_argument("--keep", action="store_true")
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    rows = []
    for size in [int(s) for s in opts.sizes.split(",") if s]:
        print("scale: %d nodes..." % size, file=sys.stderr)
        rows.append(measure(opts, size))
    print()
    print("quorumd scale bench: nodes started at once on loopback, %s, %d cores, %d runs, %s" % (
        opts.quorumd, os.cpu_count(), opts.runs, time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())))
    head = ("nodes", "agree s", "cpu/node %", "max %", "cluster %", "writes/s/node", "RSS MB",
            "crash med", "crash p99", "leave med", "leave p99", "join ms")
    print(("%5s %8s %10s %7s %9s %13s %7s %9s %9s %9s %9s %8s") % head)
    for r in rows:
        crash, leave = r.get("crash") or [], r.get("leave") or []
        print(("%5d %8s %10s %7s %9s %13s %7s %9s %9s %9s %9s %8s") % (
            r["size"], fmt(r.get("agree"), "", 2) if r.get("agree") is not None else "none",
            fmt(r.get("cpu_median"), "", 2), fmt(r.get("cpu_max"), "", 2), fmt(r.get("cpu_cluster")),
            fmt(r.get("writes")), fmt(r.get("rss")),
            fmt(statistics.median(crash) if crash else None), fmt(percentile(crash, 99)),
            fmt(statistics.median(leave) if leave else None), fmt(percentile(leave, 99)),
            fmt(r.get("join"))))
    print("failover in ms (master's death -> new master's hook), over %s crash and %s leave runs per size" % (
        "/".join(str(len(r.get("crash") or [])) for r in rows), "/".join(str(len(r.get("leave") or [])) for r in rows)))


if __name__ == "__main__":
    main()
