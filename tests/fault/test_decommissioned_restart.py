"""Issue 16's scenario with real processes and partitions: a node decommissioned while
it was down, then restarted from its data directory, must not serve stale reads, lose
acknowledged writes or break R+W>N (README "Membership", docs/DESIGN.md 4.3.1).

Four itsukad nodes, each in its own network namespace (tools/fault/hosts.py NetnsHosts;
partitions are iptables DROP rules), per round:
  SET k v0 CONSISTENT; kill -9 node3; itsuka-admin decommission node3 until left;
  cut node1 off from node2 and node4; SET k v1 CONSISTENT through node2;
  cut node3 off from node2 and node4 (node3 and node1 still talk); restart node3 with
  its old config and data. Then through node3, for a few seconds:
    GET k CONSISTENT        must never answer v0 (v1 was acknowledged),
    SET k v2-.. CONSISTENT  if acknowledged, must be what CONSISTENT reads through node2
                            and node4 answer after the heal,
    SET z.. v W quorum      if acknowledged, GET z.. R quorum through node2 must see it.
Many keys k0..kK and z0..zK are used at once: the bug needs keys whose old preference
list holds node1 and node3 (about half of them). Each round is a fresh cluster; ROUNDS
(env ITSUKA_GATE_ROUNDS, default 2) rounds, each about 30 s.

Needs root, iproute2 and iptables (tools/install-deps); skips otherwise.

    python3 tests/fault/test_decommissioned_restart.py --bin build/bin/itsukad
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "fault"))
from harness import Cluster  # noqa: E402
from hosts import NetnsHosts, free_tag, netns_available  # noqa: E402
from resp import Closed, RespError  # noqa: E402

ITSUKAD = None
KEYS = 16
WINDOW_S = 8.0  # how long node3 is probed after its restart
PROBERS = 8    # connections probing node3 at once
N1, N2, N3, N4 = 0, 1, 2, 3


def call(cluster, i, *cmd, timeout=3.0):
    """One command through node i+1: the reply, a RespError, or None (no answer)."""
    try:
        c = cluster.client(i, timeout=timeout)
    except OSError:
        return None
    try:
        return c.call(*cmd)
    except (OSError, Closed):
        return None
    finally:
        c.close()


def until(what, fn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = fn()
        if r:
            return r
        time.sleep(0.2)
    raise AssertionError(f"timed out ({timeout} s) waiting for {what}")


def member_status(cluster, i, member):
    info = call(cluster, i, "INFO", "cluster")
    if not isinstance(info, bytes):
        return None
    for line in info.decode().splitlines():
        if line.startswith("member") and f":id={member}," in line:
            return line.split(",status=")[1].split(",")[0]
    return None


def info_field(cluster, i, field):
    info = call(cluster, i, "INFO", "cluster")
    if not isinstance(info, bytes):
        return None
    for line in info.decode().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None


def ok(reply):
    return reply == "OK" or reply == b"OK"


def text(reply):
    return reply.decode() if isinstance(reply, bytes) else reply


def both_ways(a, bs):
    return [p for b in bs for p in ((a, b), (b, a))]


class Round:
    """One round of the scenario on a fresh cluster; `violations` collects what broke."""

    def __init__(self, cluster, hosts):
        self.cluster, self.hosts = cluster, hosts
        self.keys = [f"k{j}" for j in range(KEYS)]
        self.last = {}  # key -> the last value acknowledged for it
        self.violations = []
        self.probe = {"rounds": 0, "stale": 0, "writes_acked": 0, "quorum_acked": 0,
                      "errors": {}, "samples": {}}
        self.lock = threading.Lock()

    def form(self):
        for i in range(4):
            self.cluster.start(i)
        for i in range(4):
            self.cluster.wait_serving(i)
        if not self.cluster.wait_formed(60):
            raise AssertionError("the cluster did not form")

    def set_all(self, value, via):
        for k in self.keys:
            until(f"SET {k} {value} CONSISTENT via node{via + 1}",
                  lambda: ok(call(self.cluster, via, "SET", k, value, "CONSISTENT")), 30)  # noqa: B023
            self.last[k] = value

    def decommission_node3_while_down(self):
        self.cluster.kill(N3)  # kill -9
        admin = os.path.join(os.path.dirname(ITSUKAD), "itsuka-admin")
        host = f"{self.hosts.ip(N2)}:{self.hosts.client_port(N2)}"
        r = subprocess.run([admin, "--host", host, "decommission", "node3"], capture_output=True,
                           timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"itsuka-admin decommission node3: {r.stderr.decode()}")
        until("node3 left on every other node",
              lambda: all(member_status(self.cluster, i, "node3") == "left" for i in (N1, N2, N4)), 90)

    def note(self, replies):
        for r in replies:
            if isinstance(r, RespError):
                code = str(r).split(" ")[0]
                self.probe["errors"][code] = self.probe["errors"].get(code, 0) + 1
                self.probe["samples"].setdefault(code, str(r)[:160])

    def probe_once(self, c, t, attempt, k):
        got = c.call("GET", k, "CONSISTENT")
        v2 = f"v2-{t}-{attempt}"
        wrote = c.call("SET", k, v2, "CONSISTENT")
        z = f"z{t}-{attempt}"
        zw = c.call("SET", z, "v", "W", "quorum")
        seen = call(self.cluster, N2, "GET", z, "R", "quorum") if ok(zw) else None
        with self.lock:
            self.probe["rounds"] += 1
            self.note((got, wrote, zw))
            if got == b"v0":
                self.probe["stale"] += 1
                self.violations.append(f"GET {k} CONSISTENT via node3 answered v0 after v1 was acknowledged")
            if ok(wrote):
                self.probe["writes_acked"] += 1
                self.last[k] = v2
            if ok(zw):
                self.probe["quorum_acked"] += 1
                if seen != b"v":
                    self.violations.append(f"SET {z} v W quorum via node3 acknowledged, GET {z} R quorum "
                                           f"via node2 answered {text(seen)!r}")

    def prober(self, t, deadline):
        attempt, c = 0, None
        while time.monotonic() < deadline:
            if c is None:
                try:
                    c = self.cluster.client(N3, timeout=3)
                except OSError:
                    time.sleep(0.01)
                    continue
            try:
                for k in self.keys[t::PROBERS]:
                    attempt += 1
                    self.probe_once(c, t, attempt, k)
            except (OSError, Closed):
                c = None
        if c is not None:
            c.close()

    def probe_node3(self):
        """From several connections at once, from the moment node3 listens: the window in
        which a node without the gate acts on its old view lasts until gossip tells it it
        is left."""
        deadline = time.monotonic() + WINDOW_S
        threads = [threading.Thread(target=self.prober, args=(t, deadline)) for t in range(PROBERS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    def check_after_heal(self):
        for k in self.keys:
            for via in (N2, N4):
                got = until(f"GET {k} CONSISTENT via node{via + 1}",
                            lambda: (lambda g: g if isinstance(g, bytes) else None)(  # noqa: B023
                                call(self.cluster, via, "GET", k, "CONSISTENT")), 30)
                if got.decode() != self.last[k]:
                    self.violations.append(f"{k}: {self.last[k]} was acknowledged last, GET CONSISTENT via "
                                           f"node{via + 1} answers {got.decode()!r} (acknowledged and lost)")

    def run(self):
        self.form()
        self.set_all("v0", N2)
        self.decommission_node3_while_down()
        cut1 = both_ways(N1, [N2, N4])
        self.hosts.cut(cut1)
        self.set_all("v1", N2)
        self.hosts.cut(cut1 + both_ways(N3, [N2, N4]))
        self.cluster.start(N3)  # its old config and data directory
        self.probe_node3()
        gate = info_field(self.cluster, N3, "membership_gate")
        self.hosts.heal()
        time.sleep(3)
        self.check_after_heal()
        p = self.probe
        print(f"node3 probed {p['rounds']} times (GET CONSISTENT, SET CONSISTENT, SET W quorum): "
              f"{p['stale']} stale CONSISTENT reads, {p['writes_acked']} CONSISTENT writes and "
              f"{p['quorum_acked']} W=quorum writes acknowledged, errors {p['errors']}; "
              f"membership_gate after the window: {gate}; {len(self.violations)} violation(s)")
        for sample in p["samples"].values():
            print(f"  e.g. -{sample}")
        for v in self.violations[:10]:
            print("  " + v)


class DecommissionedRestart(unittest.TestCase):
    def one_round(self, rnd):
        hosts = NetnsHosts(4, free_tag(155 + rnd))
        workdir = tempfile.mkdtemp(prefix="itsuka-gate-")
        # Gossip every second (as in the runs): a node without the gate learns it is
        # left within a few seconds, acting on its old view until then.
        cluster = Cluster(hosts, 4, ITSUKAD, workdir, ["cluster.gossip_interval_ms=1000"])
        try:
            hosts.setup()
            r = Round(cluster, hosts)
            print(f"\nround {rnd}: ", end="")
            r.run()
            self.assertEqual(r.violations, [], f"round {rnd}: {len(r.violations)} violation(s)")
            # The restarted node says why it does not serve (INFO, client error).
            until("node3's INFO membership_gate:left",
                  lambda: info_field(cluster, N3, "membership_gate") == "left", 20)
            err = call(cluster, N3, "GET", "k0")
            self.assertIsInstance(err, RespError)
            self.assertIn("decommissioned", str(err))
        finally:
            try:
                cluster.stop_all()
            finally:
                hosts.teardown()
                if os.environ.get("ITSUKA_GATE_KEEP") is None:
                    shutil.rmtree(workdir, ignore_errors=True)
                else:
                    print(f"  kept {workdir}")

    def test_a_decommissioned_node_restarted_from_its_data_serves_nothing_stale(self):
        if not netns_available():
            self.skipTest("needs root, iproute2 and iptables (network namespaces)")
        for rnd in range(int(os.environ.get("ITSUKA_GATE_ROUNDS", "2"))):
            self.one_round(rnd)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # runs the finally blocks: processes stopped, namespaces removed


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/itsukad")
    args, rest = ap.parse_known_args()
    ITSUKAD = os.path.abspath(args.bin)
    signal.signal(signal.SIGTERM, _terminate)
    unittest.main(argv=[sys.argv[0]] + rest)
