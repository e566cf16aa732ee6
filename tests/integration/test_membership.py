"""Gossip membership on real processes: a loaded 3-node cluster grows to 4 (a new node
started with one seed only) and shrinks back to 3 (decommission), and every
acknowledged write is readable at the end from every remaining node with R=all; the new
node learns the members it was not configured with by gossip and connects to them; a
restarted node keeps its identity and its view."""
import json
import os
import random
import subprocess
import threading
import time
import unittest

import harness
from harness import Client, Cluster, Node, RespError, free_port, wait_until


def admin(*args):
    exe = os.path.join(os.path.dirname(harness.ITSUKAD), "itsuka-admin")
    return subprocess.run([exe] + [str(a) for a in args], capture_output=True, timeout=30)


def peer_port(node):
    for a in node.extra:
        if a.startswith("cluster.peer_port="):
            return int(a.split("=", 1)[1])
    raise AssertionError("no peer port")


def members(node):
    """{id: {field: value}} from ITSUKA.MEMBERS."""
    c = node.client()
    try:
        reply = c.call("ITSUKA.MEMBERS")
    finally:
        c.close()
    out = {}
    for m in reply:
        kv = {m[i].decode(): m[i + 1].decode() for i in range(0, len(m), 2)}
        out[kv["id"]] = kv
    return out


def ring_summary(node):
    c = node.client()
    try:
        summary, parts = c.call("ITSUKA.RING")
    finally:
        c.close()
    return {summary[i].decode(): summary[i + 1].decode() for i in range(0, len(summary), 2)}, parts


class Writer(threading.Thread):
    """Writes unique keys through the given nodes (W=quorum) until stopped; bounded in
    count and time. Records the keys whose write was acknowledged."""

    def __init__(self, nodes, limit=20000, seconds=120):
        super().__init__(daemon=True)
        self.nodes = list(nodes)
        self.limit, self.seconds = limit, seconds
        self.acked, self.failed = [], 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()

    def set_nodes(self, nodes):
        with self.lock:
            self.nodes = list(nodes)

    def run(self):
        rng = random.Random(5)
        deadline = time.monotonic() + self.seconds
        clients = {}
        i = 0
        while not self.stop_flag.is_set() and i < self.limit and time.monotonic() < deadline:
            with self.lock:
                node = rng.choice(self.nodes)
            key = f"m:{i}"
            i += 1
            try:
                c = clients.get(node.port) or clients.setdefault(node.port, Client(node.port, timeout=5))
                r = c.call("SET", key, "v" + key)
                if r == "OK":
                    self.acked.append(key)
                else:
                    self.failed += 1
            except (OSError, RespError, Exception):  # a closed connection: outcome unknown
                self.failed += 1
                clients.pop(node.port, None)
            time.sleep(0.002)
        for c in clients.values():
            c.close()


class GrowAndShrink(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3)
        self.cluster.start()
        self.extra_nodes = []

    def tearDown(self):
        for n in self.extra_nodes:
            n.cleanup()
        self.cluster.cleanup()

    def settled(self, nodes, want_up, want_left=()):
        def ok():
            for n in nodes:
                ms = members(n)
                up = sorted(i for i, m in ms.items() if m["status"] == "up")
                left = sorted(i for i, m in ms.items() if m["status"] == "left")
                if up != sorted(want_up) or left != sorted(want_left):
                    return False
                summary, _ = ring_summary(n)
                if summary["copying_here"] != "0" or summary["members"] != summary["target_members"]:
                    return False
            return True
        return ok

    def test_grow_to_four_and_shrink_to_three_under_load(self):
        n1, n2, n3 = self.cluster.nodes
        # node4 knows node1 only: node2 and node3 come from gossip.
        d = os.path.join(self.cluster.tmp, "node4")
        os.makedirs(d)
        n4 = Node("--set", f"cluster.peer_port={free_port()}",
                  "--set", f"cluster.seeds=node1@127.0.0.1:{peer_port(n1)}",
                  data_dir=os.path.join(d, "data"), node_id="node4",
                  secret_file=self.cluster.secret_file)
        n4.log_path = os.path.join(d, "itsukad.log")
        self.extra_nodes.append(n4)

        # Keys acknowledged before node4 exists: node4 must end up holding every one it
        # owns (all of them, once node2 is gone) through the partition copy alone.
        before = []
        c = n1.client()
        for i in range(500):
            self.assertEqual(c.call("SET", f"a:{i}", f"va:{i}"), "OK")
            before.append(f"a:{i}")
        c.close()
        writer = Writer([n1, n2, n3])
        writer.start()
        wait_until(lambda: len(writer.acked) >= 300, timeout=30, what="writes before the join")
        n4.start()
        wait_until(self.settled([n1, n2, n3, n4], ["node1", "node2", "node3", "node4"]), timeout=60,
                   what="node4 to join and every member to see it up")
        # node4 connected to the members it learned by gossip only.
        c = n4.client()
        info = c.call("INFO", "cluster").decode()
        c.close()
        for peer in ("node2", "node3"):
            self.assertIn(f"id={peer},", info)
            line = [l for l in info.split("\r\n") if l.startswith("peer") and f"id={peer}," in l][0]
            self.assertIn("state=up", line, line)
        summary, parts = ring_summary(n4)
        self.assertEqual(summary["members"], "node1,node2,node3,node4")
        self.assertTrue(any(b"node4" in p[1] for p in parts), "node4 owns no partition")
        self.assertGreater(int(summary["copied_objects"]), 0, "node4 copied nothing")

        writer.set_nodes([n1, n2, n3, n4])
        acked_at_join = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= acked_at_join + 300, timeout=30,
                   what="writes through a 4-node cluster")
        # Decommission node2 through node3 while the writes go on.
        writer.set_nodes([n1, n3, n4])
        c = n3.client()
        self.assertEqual(c.call("ITSUKA.DECOMMISSION", "node2"), "OK")
        self.assertIsInstance(c.call("ITSUKA.DECOMMISSION", "node2"), RespError)  # already leaving
        self.assertIsInstance(c.call("ITSUKA.DECOMMISSION", "nobody"), RespError)
        c.close()
        wait_until(self.settled([n1, n3, n4], ["node1", "node3", "node4"], ["node2"]), timeout=60,
                   what="node2 to leave")
        acked_at_leave = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= acked_at_leave + 200, timeout=30,
                   what="writes after the leave")
        writer.stop_flag.set()
        writer.join(timeout=30)
        self.assertFalse(writer.is_alive())
        n2.stop()  # gone: its data must not be needed any more

        # node4 alone (n1 and n3 stopped) serves every key acknowledged before it joined.
        n1.stop()
        n3.stop()
        c = n4.client()
        alone = [k for k in before if c.call("GET", k) != ("v" + k).encode()]
        c.close()
        self.assertEqual(alone[:5], [], f"{len(alone)} keys written before the join are not on node4")
        n1.start()
        n3.start()
        wait_until(lambda: all(self.cluster.peers_up(n) >= 2 for n in (n1, n3, n4)), timeout=20,
                   what="node1, node3 and node4 to see each other again")
        # Restarted from their saved views, node1 and node3 serve once they have heard a
        # majority (the membership gate); until then they answer -TRYAGAIN.
        wait_until(lambda: all(self.cluster.gate_open(n) for n in (n1, n3)), timeout=20,
                   what="node1's and node3's membership gates to open")

        self.assertGreater(len(writer.acked), 800)
        for node in (n1, n3, n4):
            c = node.client()
            missing = []
            for key in writer.acked:
                v = c.call("GET", key, "R", "all")
                if v != ("v" + key).encode():
                    missing.append((key, v))
            c.close()
            self.assertEqual(missing[:5], [], f"{len(missing)} acknowledged keys unreadable via {node.node_id}")
        summary, _ = ring_summary(n1)
        self.assertEqual(summary["members"], "node1,node3,node4")
        print(f"\n  membership: {len(writer.acked)} acknowledged writes ({writer.failed} failed or unknown) "
              f"survived a join and a decommission", flush=True)

    def test_decommission_of_a_dead_node(self):
        n1, n2, n3 = self.cluster.nodes
        d = os.path.join(self.cluster.tmp, "node4")
        os.makedirs(d)
        n4 = Node("--set", f"cluster.peer_port={free_port()}",
                  "--set", f"cluster.seeds=node3@127.0.0.1:{peer_port(n3)}",
                  data_dir=os.path.join(d, "data"), node_id="node4",
                  secret_file=self.cluster.secret_file)
        n4.log_path = os.path.join(d, "itsukad.log")
        self.extra_nodes.append(n4)
        n4.start()
        wait_until(self.settled([n1, n2, n3, n4], ["node1", "node2", "node3", "node4"]), timeout=60,
                   what="node4 to join")
        c = n1.client()
        keys = [f"d:{i}" for i in range(300)]
        for k in keys:
            self.assertEqual(c.call("SET", k, "v" + k), "OK")
        c.close()
        n2.kill9()  # dead for good: its partitions must come from the other replicas
        c = n1.client()
        self.assertEqual(c.call("ITSUKA.DECOMMISSION", "node2"), "OK")
        c.close()
        wait_until(self.settled([n1, n3, n4], ["node1", "node3", "node4"], ["node2"]), timeout=60,
                   what="the dead node2 to be decommissioned")
        for node in (n1, n3, n4):
            c = node.client()
            bad = [k for k in keys if c.call("GET", k, "R", "all") != ("v" + k).encode()]
            c.close()
            self.assertEqual(bad[:5], [], f"{len(bad)} keys unreadable via {node.node_id}")

    def test_restart_keeps_identity_and_view(self):
        n1, n2, n3 = self.cluster.nodes
        before = members(n3)
        n3.stop()
        n3.start()
        self.cluster.wait_connected()
        after = members(n3)
        self.assertEqual(sorted(after), sorted(before))
        self.assertEqual(after["node3"]["status"], "up")
        self.assertGreater(int(after["node3"]["incarnation"]), int(before["node3"]["incarnation"]))
        wait_until(lambda: members(n1)["node3"]["incarnation"] == after["node3"]["incarnation"],
                   timeout=10, what="node1 to learn node3's new incarnation")

    def test_itsuka_admin_members_ring_and_leave(self):
        n1, n2, n3 = self.cluster.nodes
        r = admin("--host", f"127.0.0.1:{n1.port}", "--json", "members")
        self.assertEqual(r.returncode, 0, r.stderr)
        ms = {m["id"]: m for m in json.loads(r.stdout)}
        self.assertEqual(sorted(ms), ["node1", "node2", "node3"])
        self.assertEqual({m["status"] for m in ms.values()}, {"up"})
        self.assertEqual(ms["node1"]["reachable"], "self")
        self.assertEqual(ms["node2"]["client_addr"], f"127.0.0.1:{n2.port}")
        r = admin("--host", f"127.0.0.1:{n1.port}", "members")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.decode().strip().split("\n")), 4)  # header + 3 members
        r = admin("--host", f"127.0.0.1:{n1.port}", "--json", "ring")
        self.assertEqual(r.returncode, 0, r.stderr)
        ring = json.loads(r.stdout)
        self.assertEqual(ring["summary"]["members"], "node1,node2,node3")
        self.assertEqual(len(ring["partitions"]), ring["summary"]["partitions"])
        self.assertEqual(admin("--host", f"127.0.0.1:{n1.port}", "decommission").returncode, 2)  # needs <node>
        r = admin("--host", f"127.0.0.1:{n1.port}", "decommission", "nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"unknown member", r.stderr)
        # `leave` without a node: the node --host names.
        r = admin("--host", f"127.0.0.1:{n3.port}", "leave")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"node3 is leaving", r.stdout)
        wait_until(lambda: members(n1)["node3"]["status"] == "left" and members(n2)["node3"]["status"] == "left",
                   timeout=30, what="node3 to leave")
        self.assertEqual(members(n1)["node3"]["reachable"], "left")  # never "yes" once it left
        r = admin("--host", f"127.0.0.1:{n2.port}", "ring")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("node1,node2\n", r.stdout.decode())
        self.assertIn("partitions moving: 0", r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
