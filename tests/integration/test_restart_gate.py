"""The membership gate on loopback (docs/DESIGN.md 4.3.1): a node restarted from its data
directory answers -TRYAGAIN until it has exchanged gossip with a majority of its
members, one of them serving (or with all of them); restarted nodes that hear only each
other stay gated until the operator opens one (ITSUKA.GATE OPEN); a whole cluster
restarted at once gets out of the gate."""
import os
import subprocess
import time
import unittest

import harness
from harness import Cluster, RespError, info, wait_until


def admin(node, *args):
    exe = os.path.join(os.path.dirname(harness.ITSUKAD), "itsuka-admin")
    return subprocess.run([exe, "--host", f"127.0.0.1:{node.port}"] + list(args),
                          capture_output=True, timeout=30)


def gate(node):
    return info(node, "cluster").get("membership_gate")


class RestartGate(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3).start()

    def tearDown(self):
        self.cluster.cleanup()

    def test_a_restarted_node_waits_for_a_majority_then_serves(self):
        n1, n2, n3 = self.cluster.nodes
        c = n1.client()
        self.assertEqual(c.call("SET", "gate:k", "v", "W", "all"), "OK")
        c.close()
        self.assertEqual(gate(n1), "open")  # a fresh node is not gated
        for n in (n1, n2, n3):
            n.stop()
        n1.start()  # alone: 1 of its 3 members heard
        time.sleep(1.0)  # several gossip rounds with nobody to hear
        self.assertEqual(gate(n1), "waiting heard=1 need=2 members=3")
        c = n1.client()
        for cmd in (("GET", "gate:k"), ("SET", "gate:k", "w"), ("GET", "gate:k", "CONSISTENT")):
            r = c.call(*cmd)
            self.assertIsInstance(r, RespError, cmd)
            self.assertEqual(str(r), "TRYAGAIN node restarted from a saved view; waiting to "
                                     "hear from 2 of 3 members (1 heard)")
        c.close()
        self.assertGreaterEqual(int(info(n1, "cluster")["membership_gate_refused"]), 3)
        # A second member comes back (itself gated): together they are a majority, but
        # neither serves and n3 is not heard, which is also what two nodes removed while
        # they were down would see (DESIGN 4.3.1): both stay gated.
        n2.start()
        wait_until(lambda: gate(n1) == gate(n2) == "waiting heard=2 need=2 members=3 serving=0",
                   timeout=15, what="both restarted nodes to hear each other")
        time.sleep(1.0)
        self.assertEqual(gate(n1), "waiting heard=2 need=2 members=3 serving=0")
        c = n1.client()
        r = c.call("GET", "gate:k")
        self.assertIsInstance(r, RespError)
        self.assertIn("all restarted too: waiting for a member that serves", str(r))
        self.assertEqual(c.call("ITSUKA.GATE"), b"waiting heard=2 need=2 members=3 serving=0")
        # The operator knows n3 is the only one missing and nothing changed: opens n1;
        # n2 then hears a serving member and opens too.
        shown = admin(n1, "gate")
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn(b"membership gate: waiting heard=2 need=2 members=3 serving=0", shown.stdout)
        opened = admin(n1, "gate", "open")  # ITSUKA.GATE OPEN
        self.assertEqual(opened.returncode, 0, opened.stderr)
        self.assertEqual(c.call("ITSUKA.GATE"), b"open")
        r = c.call("ITSUKA.GATE", "OPEN")
        self.assertIsInstance(r, RespError)  # open already
        c.close()
        wait_until(lambda: gate(n1) == "open" and gate(n2) == "open", timeout=15,
                   what="the gate to open on both restarted nodes")
        c = n1.client()
        self.assertEqual(c.call("GET", "gate:k", "R", "quorum"), b"v")
        c.close()
        with open(n1.log_path, "rb") as f:
            log = f.read().decode(errors="replace")
        self.assertIn("restarted from a saved view: not coordinating or voting", log)
        self.assertIn("membership gate opened by the operator", log)
        with open(n2.log_path, "rb") as f:
            self.assertIn("membership gate open", f.read().decode(errors="replace"))
        n3.start()  # hears serving members: opens by itself
        wait_until(lambda: gate(n3) == "open", timeout=15, what="n3's gate to open")

    def test_a_whole_cluster_restarted_at_once_gets_out_of_the_gate(self):
        for n in self.cluster.nodes:
            n.stop()
        for n in self.cluster.nodes:
            n.start()
        self.cluster.wait_connected()  # waits for every gate to open
        c = self.cluster.nodes[2].client()
        self.assertEqual(c.call("SET", "gate:all", "v", "CONSISTENT"), "OK")
        self.assertEqual(c.call("GET", "gate:all", "CONSISTENT"), b"v")
        c.close()


if __name__ == "__main__":
    unittest.main()
