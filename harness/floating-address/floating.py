#!/usr/bin/env python3
"""The floating-address example (packaging/examples/floating-address) on three real quorumd
nodes, each in its own network namespace on one bridge, with a client in a fourth namespace
that keeps connecting to the floating address.

  crash     the master's host dies (its link goes down, then quorumd is killed): the client
            reaches the new master at the floating address; the outage it saw is printed
            (from the moment the host died to its first successful connection to the new
            master). The dead host comes back: its slave hook removes its stale copy.
  handover  the master leaves (SIGTERM, as `systemctl stop`): the address is never on two
            hosts at once (checked in every namespace every few milliseconds, and by the
            hooks' own timestamps: the old master's slave hook ended before the new master's
            hook began); the client's outage is printed.

Each node also runs a tiny TCP server on port 8000 that answers its node name, so the client
knows which host the address led to. Only the Python standard library; needs root, iproute2 and
arping (run.sh installs them). Addresses 198.18.4.0/24 (RFC 2544) on the bridge qvbr0, which has
no address and no uplink; every wait is bounded; namespaces, bridge and processes are removed on
exit, also on failure or Ctrl+C. The last line is "N checks, F failed".
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from faults import add_namespace, make_bridge, query_status, remove_namespaces, run  # noqa: E402

NODES = ["q1", "q2", "q3"]
NETNS = {n: "qv%d" % (i + 1) for i, n in enumerate(NODES)}
VETH = {n: "qvv%d" % (i + 1) for i, n in enumerate(NODES)}
IP = {n: "198.18.4.%d" % (i + 1) for i, n in enumerate(NODES)}
CLIENT_NS, CLIENT_VETH, CLIENT_IP = "qv9", "qvv9", "198.18.4.9"
VIP = "198.18.4.100/24"
VIP_ADDRESS = VIP.split("/")[0]
BRIDGE = "qvbr0"
BROADCAST = "198.18.4.255"
PORT, DISCOVERY_PORT, SERVICE_PORT = 7401, 7499, 8000
HERE = os.path.dirname(os.path.abspath(__file__))
HOOK = os.path.join(HERE, "..", "..", "packaging", "examples", "floating-address", "floating-address")
T0 = time.monotonic()

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(64)
while True:
    c, _ = s.accept()
    try: c.sendall(sys.argv[1].encode() + b"\\n")
    finally: c.close()
""" % SERVICE_PORT

CLIENT = """
import socket, sys, time
out = open(sys.argv[1], "a", buffering=1)
while True:
    t = time.time_ns()
    try:
        c = socket.create_connection(("%s", %d), timeout=0.1)
        name = c.recv(64).decode().strip() or "-"
        c.close()
    except OSError:
        name = "-"
    out.write("%%d %%s\\n" %% (t, name))
    time.sleep(0.01)
""" % (VIP_ADDRESS, SERVICE_PORT)


def log(msg):
    print("[%6.2f] %s" % (time.monotonic() - T0, msg), flush=True)


class Failure(Exception):
    pass


def wait_for(what, limit, condition, step=0.02):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise Failure("not within %.0f s: %s" % (limit, what))


class Bed:
    def __init__(self, opts, workdir):
        self.opts = opts
        self.workdir = workdir
        self.procs = {}
        self.servers = []
        self.client = None
        self.results = []

    # --- the network

    def teardown(self):
        for p in list(self.procs.values()) + self.servers + ([self.client] if self.client else []):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        remove_namespaces(list(NETNS.values()) + [CLIENT_NS], BRIDGE)

    def setup(self):
        self.teardown()
        make_bridge(BRIDGE)
        for ns, veth, ip in [(NETNS[n], VETH[n], IP[n]) for n in NODES] + [(CLIENT_NS, CLIENT_VETH, CLIENT_IP)]:
            add_namespace(ns, veth, BRIDGE)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "brd", BROADCAST, "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        for n in NODES:
            self.servers.append(self.spawn(NETNS[n], [sys.executable, "-c", SERVER, n], "server-" + n))

    def spawn(self, ns, cmd, logname, env=None):
        logf = open(os.path.join(self.workdir, logname + ".log"), "ab")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True, env=env)
        logf.close()
        return p

    def holders(self):
        """The namespaces whose eth0 holds the floating address now."""
        return [n for n in NODES
                if (" %s " % VIP) in run(["ip", "-n", NETNS[n], "-4", "addr", "show", "dev", "eth0"], check=False).stdout]

    # --- the nodes

    def start(self, n):
        state = os.path.join(self.workdir, "state-" + n)
        os.makedirs(state, exist_ok=True)
        wrapper = os.path.join(self.workdir, "hook")
        env = dict(os.environ, QUORUM_VIP=VIP, QUORUM_VIP_DEV="eth0", HOOK_LOG=os.path.join(self.workdir, "hooks.log"))
        cmd = [self.opts.quorumd, IP[n], str(PORT), BROADCAST, str(DISCOVERY_PORT), "-n", n, "-d",
               "--state-dir", state, "--control-socket", self.sock(n), "-m", wrapper, "-s", wrapper]
        self.procs[n] = self.spawn(NETNS[n], cmd, n, env=env)

    def sock(self, n):
        return os.path.join(self.workdir, n + ".sock")

    def write_wrapper(self):
        """The example hook, with its start and end times written to hooks.log."""
        path = os.path.join(self.workdir, "hook")
        with open(path, "w") as fh:
            fh.write("#!/bin/sh\n"
                     "start=$(date +%%s%%N)\n"
                     "%s; rc=$?\n"
                     "echo \"$start $(date +%%s%%N) $QUORUM_NAME $QUORUM_ROLE $QUORUM_EPOCH $rc\" >> \"$HOOK_LOG\"\n"
                     "exit $rc\n" % HOOK)
        os.chmod(path, 0o755)

    def hooks(self):
        try:
            with open(os.path.join(self.workdir, "hooks.log")) as fh:
                rows = [line.split() for line in fh if line.strip()]
        except FileNotFoundError:
            return []
        return [dict(start=int(r[0]), end=int(r[1]), name=r[2], role=r[3], epoch=int(r[4]), rc=int(r[5])) for r in rows]

    def master(self):
        roles = {n: (query_status(self.sock(n), timeout=0.5) or {}) for n in self.procs}
        masters = [n for n, s in roles.items() if s.get("role") == "master"]
        followers = [n for n, s in roles.items() if s.get("role") == "slave" and masters and s.get("master") == masters[0]]
        return masters[0] if len(masters) == 1 and len(followers) == len(self.procs) - 1 else None

    def client_lines(self):
        try:
            with open(os.path.join(self.workdir, "client.out")) as fh:
                return [(int(t), name) for t, name in (line.split() for line in fh if line.count(" ") == 1 and line.endswith("\n"))]
        except FileNotFoundError:
            return []

    def first_success(self, after_ns, name):
        for t, who in self.client_lines():
            if t >= after_ns and who == name:
                return t
        return None

    def check(self, ok, text):
        self.results.append(ok)
        print(("PASS: " if ok else "FAIL: ") + text, flush=True)

    # --- the scenarios

    def run(self):
        self.write_wrapper()
        for n in NODES:
            self.start(n)
            time.sleep(0.3)   # start in order: q1 is the oldest
        first = wait_for("one master agreed on by three", 15, self.master)
        wait_for("the address on %s only" % first, 10, lambda: self.holders() == [first])
        self.client = self.spawn(CLIENT_NS, [sys.executable, "-c", CLIENT, os.path.join(self.workdir, "client.out")], "client")
        wait_for("the client reaches %s" % first, 10, lambda: self.first_success(0, first))
        self.check(True, "%s is master and holds %s; the client reaches it" % (first, VIP))

        # Crash: the host dies (link down first, like a power cut), then its quorumd.
        died = time.time_ns()
        run(["ip", "-n", NETNS[first], "link", "set", "eth0", "down"])
        os.killpg(self.procs.pop(first).pid, signal.SIGKILL)
        second = wait_for("a new master after the crash", 15, self.master)
        reached = wait_for("the client reaches %s at %s" % (second, VIP_ADDRESS), 15, lambda: self.first_success(died, second))
        crash_ms = (reached - died) / 1e6
        self.check(second != first, "master host %s died: %s took %s; client-visible outage %.0f ms" % (first, second, VIP, crash_ms))
        # The dead host comes back: its slave hook removes its stale copy.
        run(["ip", "-n", NETNS[first], "link", "set", "eth0", "up"])
        self.start(first)
        wait_for("%s back as a slave" % first, 15, lambda: self.master() == second)
        wait_for("the address on %s only" % second, 10, lambda: self.holders() == [second])
        self.check(True, "%s restarted as a slave and dropped its stale copy; the address is on %s only" % (first, second))

        # Planned handover: the master leaves; the address is never on two hosts.
        polls, doubled = 0, []
        left = time.time_ns()
        self.procs[second].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        third = None
        while time.monotonic() < deadline:
            holders = self.holders()
            polls += 1
            if len(holders) > 1:
                doubled.append(holders)
            if holders and holders != [second]:
                third = holders[0]
                if self.first_success(left, third):
                    break
        self.procs.pop(second).wait(timeout=10)
        reached = self.first_success(left, third) if third else None
        # The hooks log when they end: wait for the new master's.
        wait_for("%s's master hook to end" % third, 10,
                 lambda: any(h["name"] == third and h["role"] == "master" and h["start"] >= left for h in self.hooks()))
        hooks = self.hooks()
        slave_end = max((h["end"] for h in hooks if h["name"] == second and h["role"] != "master" and h["start"] >= left), default=None)
        master_start = min((h["start"] for h in hooks if h["name"] == third and h["role"] == "master" and h["start"] >= left), default=None)
        ordered = slave_end is not None and master_start is not None and slave_end <= master_start
        self.check(third is not None and reached is not None and not doubled and ordered,
                   "%s left: %s took %s; in %d polls never on two hosts%s; %s's slave hook ended %s before %s's master hook began; "
                   "client-visible outage %s" % (
                       second, third, VIP, polls, (" (but: %s)" % doubled[:3]) if doubled else "", second,
                       "%.1f ms" % ((master_start - slave_end) / 1e6) if ordered else "NOT",
                       third, "%.0f ms" % ((reached - left) / 1e6) if reached else "none"))
        print("floating address: client-visible outage %.0f ms after the master's host died, %s on a planned handover" % (
            crash_ms, "%.0f ms" % ((reached - left) / 1e6) if reached else "none"), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory holding quorumd")
    opts = ap.parse_args()
    opts.quorumd = os.path.join(opts.bin, "quorumd")
    workdir = tempfile.mkdtemp(prefix="quorum-floating-")
    bed = Bed(opts, workdir)

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    ok = False
    try:
        bed.setup()
        bed.run()
        ok = all(bed.results)
    except (Failure, KeyboardInterrupt, RuntimeError, subprocess.TimeoutExpired) as e:
        bed.results.append(False)
        print("FAIL: %s" % (e or type(e).__name__), flush=True)
    finally:
        bed.teardown()
        if not ok or os.environ.get("VERBOSE"):
            for name in sorted(os.listdir(workdir)):
                if name.endswith(".log") or name == "hooks.log":
                    with open(os.path.join(workdir, name), errors="replace") as fh:
                        text = fh.read()
                    print("----- %s (last 3000 bytes)\n%s" % (name, text[-3000:]))
        shutil.rmtree(workdir, ignore_errors=True)
    print("%d checks, %d failed" % (len(bed.results), bed.results.count(False)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
