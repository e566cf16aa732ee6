"""CONSISTENT operations on a 3-node loopback cluster: reads, writes, NX, compare-and-set
by context and DEL under ITSUKA.DEFAULTS CONSISTENT on, through different nodes; the
eventual writes a CONSISTENT read sees; a minority refusing with UNAVAILABLE; the Paxos
state surviving kill -9 of every node."""
import unittest

from harness import Cluster, RespError, wait_until


class Consistent(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).start()
        cls.n1, cls.n2, cls.n3 = cls.cluster.nodes

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_reads_writes_and_conditions_through_every_node(self):
        c1, c2, c3 = self.n1.client(), self.n2.client(), self.n3.client()
        self.assertEqual(c1.call("SET", "c:k", "a", "CONSISTENT"), "OK")
        self.assertEqual(c2.call("GET", "c:k", "CONSISTENT"), b"a")
        self.assertIsNone(c3.call("SET", "c:k", "b", "NX", "CONSISTENT"))  # not applied
        self.assertEqual(c3.call("SET", "c:k", "b", "XX", "CONSISTENT"), "OK")
        ctx, values = c1.call("VGET", "c:k", "CONSISTENT")
        self.assertEqual(values, [b"b"])
        # Compare-and-set: the first write with the context wins, the second finds the key
        # changed since its VGET and is not applied.
        self.assertEqual(c2.call("SET", "c:k", "c", "CTX", ctx, "CONSISTENT"), "OK")
        self.assertIsNone(c3.call("SET", "c:k", "d", "CTX", ctx, "CONSISTENT"))
        self.assertEqual(c1.call("GET", "c:k", "CONSISTENT"), b"c")
        self.assertEqual(c3.call("ITSUKA.DEFAULTS", "CONSISTENT", "on"), "OK")
        self.assertEqual(c3.call("ITSUKA.DEFAULTS")[-1], b"on")
        self.assertEqual(c3.call("MSET", "c:m1", "1", "c:m2", "2"), "OK")
        self.assertEqual(c3.call("MGET", "c:m1", "c:m2", "c:none"), [b"1", b"2", None])
        self.assertEqual(c3.call("DEL", "c:k", "c:m1", "c:none"), 2)
        self.assertEqual(c3.call("EXISTS", "c:k", "c:m1", "c:m2"), 1)
        self.assertIsNone(c1.call("GET", "c:k", "CONSISTENT"))
        # Chosen values reach the ordinary data: an R=all eventual read sees them.
        self.assertEqual(c1.call("GET", "c:m2", "R", "all"), b"2")
        self.assertIsInstance(c1.call("ITSUKA.DEFAULTS", "CONSISTENT", "maybe"), RespError)
        # Every operation above was coordinated by some node's Paxos rounds.
        ok = 0
        for c in (c1, c2, c3):
            info = dict(line.split(":", 1) for line in c.call("INFO", "cluster").decode().split("\r\n")
                        if ":" in line)
            ok += int(info["consistent_ok"])
            self.assertIn("consistent_forwarded", info)
        self.assertGreaterEqual(ok, 14)
        for c in (c1, c2, c3):
            c.close()

    def test_sees_eventual_writes_stored_by_two_primaries(self):
        c1, c2 = self.n1.client(), self.n2.client()
        self.assertEqual(c1.call("SET", "e:k", "eventual", "W", "2", "PW", "2"), "OK")
        self.assertEqual(c2.call("GET", "e:k", "CONSISTENT"), b"eventual")
        c1.close()
        c2.close()


class ConsistentFaults(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3).start()
        self.n1, self.n2, self.n3 = self.cluster.nodes

    def tearDown(self):
        self.cluster.cleanup()

    def test_minority_refuses_and_state_survives_kill9(self):
        c = self.n1.client()
        self.assertEqual(c.call("SET", "f:k", "v1", "CONSISTENT"), "OK")
        c.close()
        self.n2.kill9()
        self.n3.kill9()
        wait_until(lambda: self.cluster.peers_up(self.n1) == 0, what="node1 to notice it is alone")
        c = self.n1.client()
        self.assertEqual(str(c.call("GET", "f:k", "CONSISTENT")),
                         "UNAVAILABLE need 2 of the key's 3 primaries, 1 reachable")
        self.assertEqual(str(c.call("SET", "f:k", "v2", "CONSISTENT")),
                         "UNAVAILABLE need 2 of the key's 3 primaries, 1 reachable")
        c.close()
        self.n1.kill9()
        for n in (self.n1, self.n2, self.n3):
            n.start()
        self.cluster.wait_connected()
        c = self.n3.client()
        self.assertEqual(c.call("GET", "f:k", "CONSISTENT"), b"v1")
        self.assertEqual(c.call("SET", "f:k", "v3", "CONSISTENT"), "OK")
        self.assertEqual(c.call("GET", "f:k", "CONSISTENT"), b"v3")
        c.close()


if __name__ == "__main__":
    unittest.main()
