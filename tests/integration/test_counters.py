"""Convergent counters (INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT) on a 3-node loopback
cluster: Redis's replies and errors; SET then INCR, DEL then INCR; concurrent increments
through the three nodes all count; increments acknowledged with W=1 while a node is
killed (kill -9), then another, all count once after the restarts; redis-benchmark -t
incr runs without an error."""
import subprocess
import threading
import unittest

from harness import Cluster, RespError, wait_until


class Counters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_redis_replies_and_errors(self):
        c = self.cluster.nodes[0].client()
        self.assertEqual(c.call("INCR", "r:new"), 1)
        self.assertEqual(c.call("SET", "r:k", "10"), "OK")
        self.assertEqual(c.call("INCR", "r:k"), 11)
        self.assertEqual(c.call("INCRBY", "r:k", "5"), 16)
        self.assertEqual(c.call("DECR", "r:k"), 15)
        self.assertEqual(c.call("DECRBY", "r:k", "-5"), 20)
        self.assertEqual(c.call("INCRBY", "r:k", "-30", "W", "all", "PW", "2"), -10)
        self.assertEqual(c.call("GET", "r:k"), b"-10")
        self.assertEqual(c.call("STRLEN", "r:k"), 3)
        self.assertEqual(c.call("APPEND", "r:k", "0"), 4)  # a string read-modify-write
        self.assertEqual(c.call("INCR", "r:k"), -99)
        self.assertEqual(c.call("INCR", "r:k", "CONSISTENT"), -98)
        self.assertEqual(c.call("GET", "r:k", "CONSISTENT"), b"-98")
        self.assertEqual(c.call("DEL", "r:k"), 1)
        self.assertIsNone(c.call("GET", "r:k"))
        self.assertEqual(c.call("EXISTS", "r:k"), 0)
        self.assertEqual(c.call("INCR", "r:k"), 1)
        self.assertEqual(c.call("SET", "r:t", "abc"), "OK")
        for cmd in (("INCR", "r:t"), ("INCRBY", "r:k", "x"), ("INCRBY", "r:k", "1.5")):
            err = c.call(*cmd)
            self.assertIsInstance(err, RespError)
            self.assertEqual(str(err), "ERR value is not an integer or out of range")
        self.assertEqual(c.call("SET", "r:max", str(2**63 - 2)), "OK")
        self.assertEqual(c.call("INCR", "r:max"), 2**63 - 1)
        self.assertEqual(str(c.call("INCR", "r:max")), "ERR increment or decrement would overflow")
        self.assertEqual(str(c.call("DECRBY", "r:max", str(-2**63))), "ERR decrement would overflow")
        self.assertEqual(str(c.call("INCR", "r:k", "W", "7")).split(" ")[0], "ERR")
        self.assertEqual(str(c.call("INCR", "r:k", "bogus")), "ERR syntax error")
        self.assertIsInstance(c.call("INCR"), RespError)
        self.assertEqual(c.call("SET", "r:f", "10.50"), "OK")
        self.assertEqual(c.call("INCRBYFLOAT", "r:f", "0.1"), b"10.6")
        self.assertEqual(c.call("INCRBYFLOAT", "r:f", "-5.6"), b"5")
        self.assertEqual(c.call("INCR", "r:f"), 6)  # "5" is an integer again
        self.assertEqual(c.call("INCRBYFLOAT", "r:f", "2.0e2"), b"206")
        self.assertEqual(str(c.call("INCRBYFLOAT", "r:f", "abc")), "ERR value is not a valid float")
        self.assertEqual(str(c.call("INCRBYFLOAT", "r:t", "1")), "ERR value is not a valid float")
        self.assertEqual(c.call("INCRBYFLOAT", "r:nf", "1.5"), b"1.5")
        c.close()

    def test_concurrent_increments_through_three_nodes_all_count(self):
        per_thread = 150
        errors = []

        def run(node, by):
            c = node.client()
            try:
                for _ in range(per_thread):
                    r = c.call("INCRBY", "conc:k", str(by))
                    if not isinstance(r, int):
                        errors.append(r)
            finally:
                c.close()

        threads = [threading.Thread(target=run, args=(n, i + 1))
                   for i, n in enumerate(self.cluster.nodes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        want = per_thread * (1 + 2 + 3)
        for n in self.cluster.nodes:
            c = n.client()
            wait_until(lambda: c.call("GET", "conc:k", "R", "all") == str(want).encode(), timeout=20,
                       what="every node to read the sum")
            c.close()

    def test_benchmark_incr(self):
        port = self.cluster.nodes[1].port
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "incr", "-n", "2000",
                              "-c", "10", "-q"], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("INCR", out.stdout)
        self.assertIn("requests per second", out.stdout)
        self.assertNotIn("ERR", out.stdout + out.stderr)
        c = self.cluster.nodes[0].client()
        wait_until(lambda: c.call("GET", "counter:__rand_int__", "R", "all") == b"2000", timeout=20,
                   what="the benchmark's 2000 increments")
        c.close()


class CountersUnderKills(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3)
        self.cluster.start()

    def tearDown(self):
        self.cluster.cleanup()

    def incr_all(self, nodes, n, acked):
        for i in range(n):
            node = nodes[i % len(nodes)]
            c = node.client()
            try:
                r = c.call("INCRBY", "kill:k", "3", "W", "1")
            finally:
                c.close()
            if isinstance(r, int):
                acked[0] += 3
            elif str(r).startswith("TIMEOUT"):
                acked[1] += 3  # outcome unknown

    def test_acknowledged_increments_count_once_after_kills_and_restarts(self):
        n1, n2, n3 = self.cluster.nodes
        acked = [0, 0]  # acknowledged, unknown
        self.incr_all([n1, n2, n3], 30, acked)
        n3.kill9()
        self.incr_all([n1, n2], 60, acked)
        n3.start()
        n1.kill9()
        self.incr_all([n2, n3], 60, acked)
        n1.start()
        self.cluster.wait_connected()
        self.incr_all([n1, n2, n3], 30, acked)
        self.assertGreater(acked[0], 0)

        def settled(c):
            v = c.call("GET", "kill:k", "R", "all")
            return isinstance(v, bytes) and acked[0] <= int(v) <= acked[0] + acked[1]

        for n in (n1, n2, n3):
            c = n.client()
            wait_until(lambda: settled(c), timeout=30,
                       what=f"{n.node_id} to read the acknowledged sum {acked[0]} (+{acked[1]} unknown)")
            c.close()
        if acked[1] == 0:
            c = n1.client()
            self.assertEqual(c.call("GET", "kill:k", "R", "all"), str(acked[0]).encode())
            c.close()


if __name__ == "__main__":
    unittest.main()
