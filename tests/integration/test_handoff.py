"""Hinted handoff across real processes: a node that was down while 10,000 keys were
written (W=2) gets every one of them from the others' hints once it is back, and then
serves them alone."""
import json
import os
import re
import subprocess
import unittest

import harness
from harness import Cluster, info, wait_until

KEYS = 10000




def pipelined(node, commands, chunk=500):
    """Sends the commands in pipelined chunks; returns the replies in order."""
    c = node.client()
    replies = []
    try:
        for i in range(0, len(commands), chunk):
            part = commands[i:i + chunk]
            c.send_raw(b"".join(c.encode(*cmd) for cmd in part))
            for _ in part:
                replies.append(c.read())
    finally:
        c.close()
    return replies


def sees_down(node, peer_id):
    text = info(node, "cluster")
    return not any(v.startswith(f"id={peer_id},") and "state=up" in v
                   for k, v in text.items() if re.fullmatch(r"peer\d+", k))


class HintedHandoff(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3, "--set", "handoff.rate_keys_per_s=20000")
        self.cluster.start()

    def tearDown(self):
        self.cluster.cleanup()

    def test_restarted_node_gets_every_missed_write_and_serves_it_alone(self):
        n1, n2, n3 = self.cluster.nodes
        n3.kill9()
        wait_until(lambda: sees_down(n1, "node3") and sees_down(n2, "node3"), timeout=20,
                   what="node1 and node2 to see node3 down")

        # 10,000 writes with W=2, half through each live node.
        for node, part in ((n1, range(0, KEYS, 2)), (n2, range(1, KEYS, 2))):
            replies = pipelined(node, [("SET", f"h:{i}", f"v{i}", "W", "2") for i in part])
            bad = [r for r in replies if r != "OK"]
            self.assertEqual(bad, [], f"{len(bad)} writes through {node.node_id} failed, e.g. {bad[:3]}")

        # Every node is a primary of every key (3 nodes, n=3): there is no substitute, so
        # each coordinator kept a hint for node3 beside its own copy.
        stored = {n.node_id: info(n, "handoff") for n in (n1, n2)}
        for nid, h in stored.items():
            self.assertEqual(h["sloppy_quorum"], "1")
            self.assertEqual(int(h["hints_stored"]), KEYS // 2, f"{nid}: {h}")
            self.assertIn("id=node3,keys=5000", h["target0"])
            self.assertIn("state=down", h["target0"])
            self.assertEqual(int(h["hints_refused"]), 0)
        itsuka_hints = n1.client()
        try:
            self.assertIn(b"hints_stored:5000", itsuka_hints.call("ITSUKA.HINTS"))
        finally:
            itsuka_hints.close()
        admin = os.path.join(os.path.dirname(harness.ITSUKAD), "itsuka-admin")
        r = subprocess.run([admin, "--host", f"127.0.0.1:{n2.port}", "--json", "hints"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["hints_stored"], 5000)
        self.assertEqual(doc["targets"], [{"id": "node3", "keys": 5000, "bytes": doc["targets"][0]["bytes"],
                                           "state": "down"}])
        self.assertGreater(doc["targets"][0]["bytes"], 5000 * 10)
        r = subprocess.run([admin, "--host", f"127.0.0.1:{n2.port}", "hints"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r"node3\s+5000\s+\d+\s+down")

        n3.start()
        self.cluster.wait_connected()

        def replayed():
            return all(info(n, "handoff")["hints_stored"] == "0" for n in (n1, n2))
        wait_until(replayed, timeout=90, interval=0.2, what="the hints to be replayed to node3")
        done = [info(n, "handoff") for n in (n1, n2)]
        self.assertEqual(sum(int(h["hints_replayed"]) for h in done), KEYS)
        self.assertEqual(sum(int(h["hints_dropped"]) for h in done), 0)

        # With the others stopped, node3 alone must hold every key.
        n1.stop()
        n2.stop()
        replies = pipelined(n3, [("GET", f"h:{i}", "R", "1") for i in range(KEYS)])
        missing = [i for i, r in enumerate(replies) if r != f"v{i}".encode()]
        self.assertEqual(missing, [], f"{len(missing)} of {KEYS} keys missing on node3, e.g. "
                                      f"{[(i, replies[i]) for i in missing[:3]]}")

    def test_hints_survive_a_kill_of_the_node_that_keeps_them(self):
        n1, n2, n3 = self.cluster.nodes
        n3.kill9()
        wait_until(lambda: sees_down(n1, "node3"), timeout=20, what="node1 to see node3 down")
        replies = pipelined(n1, [("SET", f"r:{i}", f"v{i}", "W", "2") for i in range(1000)])
        self.assertEqual(replies, ["OK"] * 1000)
        self.assertEqual(info(n1, "handoff")["hints_stored"], "1000")
        n1.kill9()  # the hints were committed with the acks: kill -9 keeps them
        n1.start()
        h = info(n1, "handoff")
        self.assertEqual(h["hints_stored"], "1000")
        self.assertEqual(h["hints_written"], "0")  # counters restart; the hints do not
        n3.start()
        self.cluster.wait_connected()
        wait_until(lambda: info(n1, "handoff")["hints_stored"] == "0", timeout=60, interval=0.2,
                   what="node1 to replay its hints after its restart")
        self.assertEqual(info(n1, "handoff")["hints_replayed"], "1000")

        # The replay's start and finish are logged once each, with the counts.
        def log():
            with open(n1.log_path, errors="replace") as f:
                return f.read()
        wait_until(lambda: "hint replay to node3 finished" in log(), timeout=10,
                   what="the replay finish in node1 log")
        text = log()
        self.assertIn("hint replay to node3 started: 1000 hints", text)
        self.assertIn("hint replay to node3 finished: 1000 of 1000 hints delivered, 0 left", text)
        self.assertEqual(text.count("hint replay to node3 finished"), 1)
        n1.stop()
        n2.stop()
        replies = pipelined(n3, [("GET", f"r:{i}", "R", "1") for i in range(1000)])
        self.assertEqual([i for i, r in enumerate(replies) if r != f"v{i}".encode()], [])


class SloppyQuorumWithASubstitute(unittest.TestCase):
    """4 nodes, n=3: a key whose primary is down has a substitute (the fourth node)."""

    def setUp(self):
        self.cluster = Cluster(4, "--set", "handoff.rate_keys_per_s=20000")
        self.cluster.start()

    def tearDown(self):
        self.cluster.cleanup()

    def test_writes_with_w_all_succeed_through_a_substitute_and_reach_the_primary_later(self):
        n1, n2, n3, n4 = self.cluster.nodes
        n4.kill9()
        wait_until(lambda: all(sees_down(n, "node4") for n in (n1, n2, n3)), timeout=20,
                   what="the others to see node4 down")
        keys = 2000
        replies = pipelined(n1, [("SET", f"s:{i}", f"v{i}", "W", "all") for i in range(keys)])
        self.assertEqual([r for r in replies if r != "OK"][:3], [])  # W=3 met with substitutes
        # PW counts primaries only: with node4 down, PW=all fails for node4's keys.
        pw = pipelined(n1, [("SET", f"s:{i}", f"v{i}", "W", "all", "PW", "all") for i in range(200)])
        self.assertTrue(any(str(r).startswith("UNAVAILABLE need 3 primary replicas") for r in pw), pw[:3])
        stored = sum(int(info(n, "handoff")["hints_stored"]) for n in (n1, n2, n3))
        self.assertGreater(stored, keys // 4)  # about 3/4 of the keys have node4 as a primary
        n4.start()
        self.cluster.wait_connected()
        wait_until(lambda: all(info(n, "handoff")["hints_stored"] == "0" for n in (n1, n2, n3)),
                   timeout=60, interval=0.2, what="the hints to be replayed to node4")
        for n in (n1, n2, n3):
            n.stop()
        # Alone, node4 answers the keys it is a primary of (the others: no replica reachable).
        replies = pipelined(n4, [("GET", f"s:{i}", "R", "1") for i in range(keys)])
        held = [i for i, r in enumerate(replies) if r == f"v{i}".encode()]
        missed = [i for i, r in enumerate(replies) if r is None]
        self.assertEqual(missed, [])
        self.assertEqual(len(held), stored)


if __name__ == "__main__":
    unittest.main()
