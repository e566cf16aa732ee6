"""Cluster-wide keyspace commands on a 3-node cluster: SCAN (redis-cli --scan and
redis-py's scan_iter) sees every key, also while a fourth node joins; DBSIZE is exact
after writes and deletes; KEYS is refused over cluster.keys_max; EXISTS, TOUCH, UNLINK,
TYPE, RANDOMKEY; INFO db0:keys is this node's exact count."""
import os
import subprocess
import unittest

import harness
from harness import Cluster, Node, RespError, free_port, wait_until


def scan_all(client, **opts):
    cursor, seen, calls = b"0", [], 0
    while True:
        args = ["SCAN", cursor]
        for k, v in opts.items():
            args += [k.upper(), str(v)]
        reply = client.call(*args)
        if isinstance(reply, RespError):
            raise AssertionError(f"SCAN {cursor!r}: {reply}")
        cursor, keys = reply
        seen += [k.decode() for k in keys]
        calls += 1
        if cursor == b"0":
            return seen, calls
        assert calls < 100000


class Keyspace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3)
        cls.cluster.start()
        c = cls.cluster.nodes[0].client()
        for i in range(3000):
            assert c.call("SET", f"k:{i}", "v") == "OK"
        c.close()
        cls.keys = {f"k:{i}" for i in range(3000)}

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_scan_sees_every_key_from_every_node(self):
        for node in self.cluster.nodes:
            c = node.client()
            seen, calls = scan_all(c, count=100)
            c.close()
            self.assertEqual(set(seen), self.keys)
            self.assertLess(len(seen), 2 * len(self.keys))
            self.assertGreater(calls, 5)

    def test_scan_match_count_type(self):
        c = self.cluster.nodes[1].client()
        seen, _ = scan_all(c, match="k:1?", count=1000)
        self.assertEqual(set(seen), {f"k:{i}" for i in range(10, 20)})
        seen, _ = scan_all(c, type="string", count=1000)
        self.assertEqual(set(seen), self.keys)
        seen, _ = scan_all(c, type="hash", count=1000)
        self.assertEqual(seen, [])
        self.assertIsInstance(c.call("SCAN", "notanumber"), RespError)
        self.assertIsInstance(c.call("SCAN", str(1 << 60)), RespError)
        self.assertIsInstance(c.call("SCAN", "0", "TYPE", "nosuchtype"), RespError)
        c.close()

    def test_redis_cli_scan(self):
        port = self.cluster.nodes[2].port
        out = subprocess.run(["redis-cli", "-p", str(port), "--scan"],
                             capture_output=True, timeout=60).stdout.decode().split()
        self.assertEqual(set(out), self.keys)
        out = subprocess.run(["redis-cli", "-p", str(port), "--scan", "--pattern", "k:29??"],
                             capture_output=True, timeout=60).stdout.decode().split()
        self.assertEqual(set(out), {f"k:{i}" for i in range(2900, 3000)})

    def test_redis_py_scan_iter(self):
        exe = harness.redis_py_interpreter()
        if exe is None:
            self.skipTest("redis-py not installed")
        script = ("import redis,sys\n"
                  f"r = redis.Redis(port={self.cluster.nodes[0].port})\n"
                  "keys = [k.decode() for k in r.scan_iter(count=50)]\n"
                  "print(len(keys), len(set(keys)), r.dbsize())\n")
        out = subprocess.run([exe, "-c", script], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        total, distinct, dbsize = map(int, out.stdout.split())
        self.assertEqual(distinct, 3000)
        self.assertGreaterEqual(total, 3000)

    def test_dbsize_exact_after_writes_and_deletes(self):
        c = self.cluster.nodes[0].client()
        for i in range(100):
            c.call("SET", f"d:{i}", "x")
        self.assertEqual(c.call("DBSIZE"), 3100)
        self.assertEqual(c.call("DEL", *[f"d:{i}" for i in range(60)]), 60)
        self.assertEqual(c.call("UNLINK", *[f"d:{i}" for i in range(60, 100)], "nope"), 40)
        for node in self.cluster.nodes:
            n = node.client()
            wait_until(lambda: n.call("DBSIZE") == 3000, timeout=10, what="DBSIZE 3000")
            # Every node holds every key (N=3 of 3): db0:keys is exact too.
            wait_until(lambda: "db0:keys=3000," in n.call("INFO", "keyspace").decode(),
                       timeout=10, what="db0:keys=3000")
            n.close()
        c.close()

    def test_keys_and_its_cap(self):
        c = self.cluster.nodes[1].client()
        self.assertEqual(sorted(k.decode() for k in c.call("KEYS", "k:299?")),
                         sorted(f"k:{i}" for i in range(2990, 3000)))
        self.assertEqual(c.call("CONFIG", "SET", "cluster.keys_max", "100"), "OK")
        try:
            err = c.call("KEYS", "*")
            self.assertIsInstance(err, RespError)
            self.assertIn("cluster.keys_max", str(err))
        finally:
            c.call("CONFIG", "SET", "cluster.keys_max", "100000")
        c.close()

    def test_exists_touch_type_randomkey(self):
        c = self.cluster.nodes[2].client()
        self.assertEqual(c.call("EXISTS", "k:1", "k:1", "k:2", "missing"), 3)
        self.assertEqual(c.call("TOUCH", "k:1", "missing"), 1)
        self.assertEqual(c.call("TYPE", "k:1"), "string")
        self.assertEqual(c.call("TYPE", "missing"), "none")
        for _ in range(20):
            self.assertIn(c.call("RANDOMKEY").decode(), self.keys)
        docs = c.call("COMMAND", "DOCS", "scan")
        self.assertTrue(docs)
        c.close()


class ScanDuringJoin(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3)
        self.cluster.start()
        self.extra = []

    def tearDown(self):
        for n in self.extra:
            n.cleanup()
        self.cluster.cleanup()

    def test_scan_while_a_node_joins_sees_every_key(self):
        n1 = self.cluster.nodes[0]
        c = n1.client()
        keys = {f"j:{i}" for i in range(3000)}
        for k in keys:
            c.call("SET", k, "v")
        peer = [a for a in n1.extra if a.startswith("cluster.peer_port=")][0].split("=")[1]
        d = os.path.join(self.cluster.tmp, "node4")
        os.makedirs(d)
        n4 = Node("--set", f"cluster.peer_port={free_port()}",
                  "--set", f"cluster.seeds=node1@127.0.0.1:{peer}",
                  data_dir=os.path.join(d, "data"), node_id="node4",
                  secret_file=self.cluster.secret_file)
        n4.log_path = os.path.join(d, "itsukad.log")
        self.extra.append(n4)
        # Scan slowly through node2 while node4 joins and partitions move to it.
        c2 = self.cluster.nodes[1].client()
        cursor, seen, calls = b"0", set(), 0
        started = False
        while True:
            cursor, got = c2.call("SCAN", cursor, "COUNT", "20")
            seen |= {k.decode() for k in got}
            calls += 1
            if calls == 20 and not started:
                n4.start()
                started = True
            if cursor == b"0":
                break
        self.assertTrue(started)
        self.assertEqual(keys - seen, set())
        # Afterwards, through the new node too.
        wait_until(lambda: self.cluster.peers_up(n4) >= 3, timeout=30, what="node4 connected")
        c4 = n4.client()
        # node4 may still see a peer as unreachable for a moment (then -UNAVAILABLE).
        result = []

        def scanned():
            try:
                result[:] = scan_all(c4, count=500)[0]
                return True
            except AssertionError:
                return False
        wait_until(scanned, timeout=30, what="a full SCAN through node4")
        self.assertEqual(keys - set(result), set())
        c.close()
        c2.close()
        c4.close()


if __name__ == "__main__":
    unittest.main()
