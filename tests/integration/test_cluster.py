"""Multi-process tests of a 3-node cluster on loopback: replication across nodes,
siblings from concurrent writes and their resolution, quorums with a node down, and
read repair of a restarted node."""
import unittest

from harness import Cluster, RespError, info, redis_cli, wait_until


class ThreeNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).start()
        cls.n1, cls.n2, cls.n3 = cls.cluster.nodes

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_write_through_one_node_read_through_another(self):
        self.assertEqual(redis_cli(self.n1.port, "SET", "x:1", "hello"), "OK")  # W=quorum
        # R + W > N: a quorum read through another node must see it.
        self.assertEqual(redis_cli(self.n2.port, "GET", "x:1", "R", "quorum"), "hello")
        self.assertEqual(redis_cli(self.n3.port, "GET", "x:1", "R", "all"), "hello")
        c = self.n3.client()
        self.assertEqual(c.call("MSET", "x:a", "1", "x:b", "2"), "OK")
        self.assertEqual(c.call("MGET", "x:a", "x:b"), [b"1", b"2"])  # node3 holds its own write
        c.close()
        c = self.n2.client()
        self.assertEqual(c.call("ITSUKA.DEFAULTS", "R", "all"), "OK")
        self.assertEqual(c.call("MGET", "x:a", "x:b", "x:none"), [b"1", b"2", None])
        self.assertEqual(c.call("EXISTS", "x:a", "x:b", "x:none"), 2)
        self.assertEqual(c.call("DEL", "x:a", "x:none"), 1)
        self.assertIsNone(c.call("GET", "x:a"))
        c.close()

    def test_concurrent_writes_become_siblings_and_a_context_resolves_them(self):
        c1, c2, c3 = self.n1.client(), self.n2.client(), self.n3.client()
        ctx, values = c1.call("VGET", "s:k", "R", "all")
        self.assertEqual(values, [])
        self.assertEqual(c1.call("SET", "s:k", "from-1", "CTX", ctx, "W", "all"), "OK")
        self.assertEqual(c2.call("SET", "s:k", "from-2", "CTX", ctx, "W", "all"), "OK")
        self.assertEqual(sorted(c3.call("GET", "s:k", "R", "all")), [b"from-1", b"from-2"])
        ctx2, values = c3.call("VGET", "s:k", "R", "all")
        self.assertEqual(sorted(values), [b"from-1", b"from-2"])
        self.assertEqual(c2.call("SET", "s:k", "merged", "CTX", ctx2, "W", "all"), "OK")
        for c in (c1, c2, c3):
            self.assertEqual(c.call("GET", "s:k", "R", "all"), b"merged")
            c.close()

    def test_quorum_options_are_validated(self):
        c = self.n1.client()
        self.assertEqual(str(c.call("GET", "k", "R", "4")),
                         "ERR R must be one, quorum, all or a number from 1 to 3")
        self.assertEqual(str(c.call("SET", "k", "v", "W", "zero")),
                         "ERR W must be one, quorum, all or a number from 1 to 3")
        self.assertIsInstance(c.call("ITSUKA.DEFAULTS", "W", "9"), RespError)
        self.assertEqual(c.call("ITSUKA.DEFAULTS"),
                         [b"R", b"one", b"W", b"quorum", b"PR", b"0", b"PW", b"0", b"CONSISTENT", b"off"])
        c.close()


class BadPeers(unittest.TestCase):
    def test_garbage_and_strangers_on_the_peer_port_are_refused(self):
        cluster = Cluster(2).start()
        try:
            n1 = cluster.nodes[0]
            peer_port = int([a for a in n1.argv() if a.startswith("cluster.peer_port=")][0].split("=")[1])
            import socket
            import struct
            for payload in (b"\xff\xff\xff\xff" + b"x" * 100,          # frame over the bound
                            struct.pack(">I", 3) + b"\xc1\xc1\xc1",      # undecodable
                            b"GET / HTTP/1.1\r\n\r\n"):
                s = socket.create_connection(("127.0.0.1", peer_port), timeout=5)
                s.sendall(payload)
                self.assertEqual(s.recv(100), b"")  # closed without an answer
                s.close()
            # A Hello from another cluster is refused the same way.
            hello = b"\x94\x00\xa5other\x01\xa5node2"
            s = socket.create_connection(("127.0.0.1", peer_port), timeout=5)
            s.sendall(struct.pack(">I", len(hello)) + hello)
            self.assertEqual(s.recv(100), b"")
            s.close()
            c = n1.client()
            self.assertEqual(c.call("SET", "still", "fine", "W", "all"), "OK")
            self.assertGreaterEqual(cluster.peers_up(n1), 1)
            c.close()
        finally:
            cluster.cleanup()


class NodeDown(unittest.TestCase):
    def setUp(self):
        # A replica can only miss a write for long without hinted handoff, which would
        # carry the value to it as soon as it is back (tests/integration/test_handoff.py).
        strict = self._testMethodName == "test_delete_through_a_replica_that_missed_the_value"
        self.cluster = Cluster(3, *(["--set", "cluster.sloppy_quorum=false"] if strict else [])).start()
        self.n1, self.n2, self.n3 = self.cluster.nodes

    def tearDown(self):
        self.cluster.cleanup()

    def test_quorums_with_one_node_killed(self):
        self.n3.kill9()
        wait_until(lambda: self.cluster.peers_up(self.n1) == 1, what="node1 to notice node3 is down")
        c = self.n1.client()
        self.assertEqual(c.call("SET", "d:k", "v", "W", "2"), "OK")
        self.assertEqual(c.call("GET", "d:k", "R", "2"), b"v")
        self.assertEqual(str(c.call("GET", "d:k", "R", "3")), "UNAVAILABLE need 3 replicas, 2 reachable")
        self.assertEqual(str(c.call("SET", "d:k", "w", "W", "all")),
                         "UNAVAILABLE need 3 replicas, 2 reachable")
        self.assertEqual(c.call("GET", "d:k", "R", "2"), b"v")  # the refused write left nothing
        # Connection defaults apply to commands without their own options.
        self.assertEqual(c.call("ITSUKA.DEFAULTS", "W", "all", "R", "all"), "OK")
        self.assertEqual(str(c.call("DEL", "d:k")), "UNAVAILABLE need 3 replicas, 2 reachable")
        self.assertEqual(str(c.call("MSET", "d:k", "x")), "UNAVAILABLE need 3 replicas, 2 reachable")
        self.assertTrue(str(c.call("GET", "d:k")).startswith("UNAVAILABLE need 3 replicas"))
        c.close()

    def test_a_stopped_replica_makes_w_all_time_out_with_outcome_unknown(self):
        import signal
        self.n3.proc.send_signal(signal.SIGSTOP)  # connected but silent
        try:
            c = self.n1.client()
            r = c.call("SET", "t:k", "v", "W", "all")
            self.assertEqual(str(r), "TIMEOUT 2 of 3 acks (outcome unknown)")
            self.assertEqual(c.call("SET", "t:k", "w", "W", "2"), "OK")
            c.close()
        finally:
            self.n3.proc.send_signal(signal.SIGCONT)

    def test_delete_through_a_replica_that_missed_the_value(self):
        self.n3.kill9()
        wait_until(lambda: self.cluster.peers_up(self.n1) == 1, what="node1 to notice node3 is down")
        c1 = self.n1.client()
        self.assertEqual(c1.call("SET", "del:k", "v", "W", "2"), "OK")
        self.n3.start()
        self.cluster.wait_connected()
        c3 = self.n3.client()
        self.assertIsNone(c3.call("GET", "del:k", "R", "1"))  # node3 missed it: a stale read
        # DEL reads the key from W replicas first, so it sees (and deletes) the value.
        self.assertEqual(c3.call("DEL", "del:k"), 1)
        self.assertIsNone(c1.call("GET", "del:k", "R", "all"))
        self.assertEqual(c1.call("SET", "del:n", "v", "W", "2"), "OK")
        self.assertIsNone(c3.call("SET", "del:n", "w", "NX"))  # NX sees the value as well
        c1.close()
        c3.close()

    def test_a_wiped_node_never_reuses_its_old_dots(self):
        import shutil
        c1 = self.n1.client()
        self.assertEqual(c1.call("SET", "wipe:k", "old", "W", "all"), "OK")
        c1.close()
        # The node that coordinated loses its disk and comes back empty, same id.
        self.n1.stop()
        shutil.rmtree(self.n1.data_dir)
        self.n1.start()
        self.cluster.wait_connected()
        c1 = self.n1.client()
        # A blind write through it must not collide with the version it wrote before
        # it lost its data: both survive as siblings.
        self.assertEqual(c1.call("SET", "wipe:k", "new", "W", "all"), "OK")
        c2 = self.n2.client()
        self.assertEqual(sorted(c2.call("GET", "wipe:k", "R", "all")), [b"new", b"old"])
        c1.close()
        c2.close()

    def test_a_silent_replica_is_suspected_and_skipped(self):
        import signal
        import time
        info = lambda: self.n1.client().call("INFO", "cluster").decode()
        self.n3.proc.send_signal(signal.SIGSTOP)
        try:
            # Heartbeats stop; phi-accrual suspects node3 within a few intervals.
            wait_until(lambda: "id=node3" in info() and "state=suspect" in info(), timeout=10,
                       what="node1 to suspect node3")
            c = self.n1.client()
            start = time.monotonic()
            self.assertEqual(str(c.call("SET", "fd:k", "v", "W", "all")),
                             "UNAVAILABLE need 3 replicas, 2 reachable")
            self.assertLess(time.monotonic() - start, 0.5)  # refused at once, not timed out
            self.assertEqual(c.call("SET", "fd:k", "v", "W", "2"), "OK")
            c.close()
        finally:
            self.n3.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: info().count("state=up") == 2, timeout=10, what="node3 to be trusted again")

    def test_a_node_whose_own_loop_stalled_does_not_suspect_its_peers(self):
        # node1 itself stops for 1.5 s (a stalled loop, as under overload) while node2 and
        # node3 keep sending heartbeats. When it resumes, its heartbeat timer runs before it
        # has read what they sent: their silence is node1's own, and it must not suspect
        # them (core::LocalPauseGuard). Not timing-sensitive: the stall is seven heartbeat
        # intervals, far past the old threshold (about 0.7 s), and holding is exact.
        import signal
        import time
        trusted = lambda: sum("state=up" in v for v in info(self.n1, "cluster").values())
        wait_until(lambda: trusted() == 2, timeout=10, what="node1 to trust both peers")
        before = int(info(self.n1, "cluster")["peer_local_pauses"])
        with open(self.n1.log_path, "rb") as f:
            f.seek(0, 2)
            offset = f.tell()
        self.n1.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(1.5)
        finally:
            self.n1.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: int(info(self.n1, "cluster")["peer_local_pauses"]) > before, timeout=10,
                   what="node1 to see its own pause")
        c = self.n1.client()
        self.assertEqual(c.call("SET", "lp:k", "v", "W", "all"), "OK")  # both peers count
        c.close()
        time.sleep(0.5)  # a few more ticks, judged normally
        with open(self.n1.log_path, "rb") as f:
            f.seek(offset)
            log = f.read().decode(errors="replace")
        self.assertNotIn("is suspected", log)
        self.assertEqual(trusted(), 2)

    def test_read_repair_updates_a_restarted_node(self):
        self.n3.kill9()
        wait_until(lambda: self.cluster.peers_up(self.n1) == 1, what="node1 to notice node3 is down")
        c = self.n1.client()
        keys = [f"rr:{i}" for i in range(50)]
        for k in keys:
            self.assertEqual(c.call("SET", k, "v-" + k, "W", "2"), "OK")
        self.n3.start()
        self.cluster.wait_connected()
        # Reads with R=all merge every replica's copy and write the merge back to the
        # replicas that were missing it.
        for k in keys:
            self.assertEqual(c.call("GET", k, "R", "all"), ("v-" + k).encode())
        c.close()
        # With the other nodes gone, node3 answers from its own (repaired) copy.
        self.n1.stop()
        self.n2.stop()
        c3 = self.n3.client()
        wait_until(lambda: self.cluster.peers_up(self.n3) == 0, what="node3 to see it is alone")
        missing = [k for k in keys if c3.call("GET", k, "R", "1") != ("v-" + k).encode()]
        self.assertEqual(missing, [])
        c3.close()


if __name__ == "__main__":
    unittest.main()
