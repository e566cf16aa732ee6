"""Redis Cluster protocol and hash-slot placement (data format 2): CLUSTER SLOTS / SHARDS /
NODES / INFO / KEYSLOT / MYID, READONLY, INFO cluster_enabled, cluster-mode clients
(redis-py RedisCluster; ioredis Cluster when installed) sending each key to one of its
primaries (the forwarded-write counter stays near zero), and the data format as part of
the cluster's identity: a node of another format is refused, a format-1 cluster keeps
its XXH3 placement and says it has no slots."""
import os
import shutil
import subprocess
import unittest

from harness import ITSUKAD, Cluster, Node, RespError, info, redis_py_interpreter, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
REDIS_PY = redis_py_interpreter()
NODE = shutil.which("node")
NODE_CLIENTS = os.path.join(HERE, "node_clients")
HAS_IOREDIS = NODE is not None and os.path.isdir(os.path.join(NODE_CLIENTS, "node_modules", "ioredis"))
HAS_NODE_REDIS = NODE is not None and os.path.isdir(os.path.join(NODE_CLIENTS, "node_modules", "redis"))


def forwarded_and_coordinated(cluster):
    fwd = coord = 0
    for n in cluster.nodes:
        i = info(n, "cluster")
        fwd += int(i["client_writes_forwarded"])
        coord += int(i["client_writes_coordinated"])
    return fwd, coord


class SlotCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).start()
        cls.n1, cls.n2, cls.n3 = cls.cluster.nodes

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_keyslot_myid_info_readonly(self):
        c = self.n1.client()
        try:
            self.assertEqual(c.call("CLUSTER", "KEYSLOT", "foo"), 12182)
            self.assertEqual(c.call("CLUSTER", "KEYSLOT", "{user1000}.following"),
                             c.call("CLUSTER", "KEYSLOT", "{user1000}.followers"))
            myid = c.call("CLUSTER", "MYID").decode()
            self.assertEqual(len(myid), 40)
            text = c.call("CLUSTER", "INFO").decode()
            self.assertIn("cluster_state:ok", text)
            self.assertIn("cluster_slots_assigned:16384", text)
            self.assertIn("cluster_known_nodes:3", text)
            self.assertEqual(c.call("READONLY"), "OK")
            self.assertEqual(c.call("READWRITE"), "OK")
            self.assertIsInstance(c.call("CLUSTER", "COUNTKEYSINSLOT", "1"), RespError)
            self.assertIsInstance(c.call("CLUSTER", "NOSUCH"), RespError)
            docs = c.call("COMMAND", "DOCS", "cluster")
            self.assertIn(b"cluster", docs)
        finally:
            c.close()
        self.assertEqual(info(self.n1, "cluster")["cluster_enabled"], "1")
        self.assertEqual(info(self.n1, "cluster")["data_format"], "2")

    def test_slots_cover_every_slot_with_each_partitions_primaries(self):
        c = self.n2.client()
        try:
            slots = c.call("CLUSTER", "SLOTS")
            ring = c.call("ITSUKA.RING")
            shards = c.call("CLUSTER", "SHARDS")
            nodes = c.call("CLUSTER", "NODES").decode()
        finally:
            c.close()
        ports = {n.node_id: n.port for n in self.cluster.nodes}
        # Slot ranges are consecutive and cover 0..16383.
        covered = 0
        for entry in sorted(slots, key=lambda e: e[0]):
            self.assertEqual(entry[0], covered)
            covered = entry[1] + 1
            self.assertEqual(len(entry), 2 + 3)  # master + 2 replicas (N=3, 3 nodes)
            for host, port, _ in entry[2:]:
                self.assertEqual(host, b"127.0.0.1")
                self.assertIn(port, ports.values())
        self.assertEqual(covered, 16384)
        # Each range's master is its partitions' first primary (ITSUKA.RING's order).
        by_port = {v: k for k, v in ports.items()}
        per_partition = 16384 // len(ring[1])
        for p, read_list, _ in ring[1]:
            slot = int(p) * per_partition
            entry = next(e for e in slots if e[0] <= slot <= e[1])
            self.assertEqual([by_port[e[1]] for e in entry[2:]], read_list.decode().split(","))
        self.assertEqual(len(shards), len(slots))
        self.assertEqual(len([l for l in nodes.splitlines() if "master" in l]), 3)
        self.assertEqual(len([l for l in nodes.splitlines() if "myself" in l]), 1)

    @unittest.skipUnless(REDIS_PY, "needs redis-py (apt python3-redis)")
    def test_redis_py_cluster_client_writes_to_primaries(self):
        fwd0, coord0 = forwarded_and_coordinated(self.cluster)
        script = (
            "import sys, redis\n"
            "from redis.cluster import RedisCluster\n"
            "rc = RedisCluster(host='127.0.0.1', port=int(sys.argv[1]))\n"
            "n = 600\n"
            "for i in range(n):\n"
            "    assert rc.set(f'rc:{i}', str(i))\n"
            "for i in range(n):\n"
            "    assert rc.get(f'rc:{i}') == str(i).encode(), i\n"
            "assert rc.set('{user1000}.following', 'a') and rc.set('{user1000}.followers', 'b')\n"
            "assert rc.keyslot('foo') == 12182\n"
            "print('ok', len(rc.get_nodes()))\n")
        r = subprocess.run([REDIS_PY, "-c", script, str(self.n1.port)], capture_output=True,
                           timeout=120)
        self.assertEqual(r.stdout.decode().split(), ["ok", "3"], r.stderr.decode()[-3000:])
        fwd, coord = forwarded_and_coordinated(self.cluster)
        writes = 602
        # Every write went straight to a primary of its key, which coordinated it.
        print(f"\n  redis-py RedisCluster: {writes} writes, coordinated at a primary "
              f"{coord - coord0}, forwarded {fwd - fwd0}")
        self.assertGreaterEqual(coord - coord0, writes)
        self.assertLessEqual(fwd - fwd0, writes // 100)
        # (N=3 on 3 nodes: every node is a primary of every key; FourNodesN2 below is the
        # case where a plain client's writes are forwarded.) The keys read back elsewhere:
        c = self.n1.client()
        try:
            self.assertEqual(c.call("GET", "rc:7"), b"7")
        finally:
            c.close()

    def run_js_workload(self, connect, prefix, close):
        """Runs 200 SETs and GETs through a Node.js cluster client (`connect` makes `c`);
        returns the writes forwarded meanwhile."""
        fwd0, _ = forwarded_and_coordinated(self.cluster)
        script = (
            connect + "\n"
            "(async () => {\n"
            "  if (typeof ready !== 'undefined') await ready;\n"
            f"  for (let i = 0; i < 200; i++) await c.set('{prefix}' + i, String(i));\n"
            f"  for (let i = 0; i < 200; i++) if (await c.get('{prefix}' + i) !== String(i)) throw i;\n"
            f"  console.log('ok'); {close};\n"
            "})().catch(e => { console.log('fail', e); process.exit(1); });\n")
        r = subprocess.run([NODE, "-e", script, str(self.n1.port)], capture_output=True,
                           timeout=120, cwd=NODE_CLIENTS)
        self.assertEqual(r.stdout.decode().strip(), "ok", r.stderr.decode()[-3000:])
        return forwarded_and_coordinated(self.cluster)[0] - fwd0

    @unittest.skipUnless(HAS_IOREDIS, "needs node and ioredis (cd tests/integration/node_clients && "
                                      "npm install)")
    def test_ioredis_cluster(self):
        fwd = self.run_js_workload(
            "const Redis = require('ioredis');\n"
            "const c = new Redis.Cluster([{host: '127.0.0.1', port: +process.argv[1]}]);",
            "io:", "c.disconnect()")
        self.assertEqual(fwd, 0)

    @unittest.skipUnless(HAS_NODE_REDIS, "needs node and node-redis (cd tests/integration/node_clients "
                                         "&& npm install)")
    def test_node_redis_create_cluster(self):
        # RESP: 2 -- node-redis asks for RESP3 (HELLO 3) otherwise; itsuka speaks RESP2.
        fwd = self.run_js_workload(
            "const { createCluster } = require('redis');\n"
            "const c = createCluster({rootNodes: [{url: 'redis://127.0.0.1:' + process.argv[1]}], "
            "RESP: 2});\n"
            "c.on('error', e => console.error('client error', e));\n"
            "const ready = c.connect();",
            "nr:", "await c.quit()")
        self.assertEqual(fwd, 0)


class FourNodesN2(unittest.TestCase):
    """With N=2 on 4 nodes most keys have primaries other than the node a plain client
    uses; a cluster client still reaches a primary every time."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(4, "--set", "cluster.n=2", "--set", "cluster.write_quorum=1",
                              "--set", "cluster.read_quorum=1").start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    @unittest.skipUnless(REDIS_PY, "needs redis-py (apt python3-redis)")
    def test_cluster_client_forwards_nothing_a_plain_client_forwards_half(self):
        n1 = self.cluster.nodes[0]
        script = (
            "import sys, redis\n"
            "from redis.cluster import RedisCluster\n"
            "mode, port = sys.argv[1], int(sys.argv[2])\n"
            "r = RedisCluster(host='127.0.0.1', port=port) if mode == 'cluster' else "
            "redis.Redis(port=port)\n"
            "for i in range(400):\n"
            "    assert r.set(f'{mode}:{i}', 'v')\n"
            "print('ok')\n")
        figures = {}
        for mode in ("plain", "cluster"):
            fwd0, coord0 = forwarded_and_coordinated(self.cluster)
            r = subprocess.run([REDIS_PY, "-c", script, mode, str(n1.port)], capture_output=True,
                               timeout=120)
            self.assertEqual(r.stdout.decode().strip(), "ok", r.stderr.decode()[-3000:])
            fwd, coord = forwarded_and_coordinated(self.cluster)
            figures[mode] = (fwd - fwd0, coord - coord0)
        print(f"\n  4 nodes, N=2, 400 writes: plain client (forwarded, coordinated) = "
              f"{figures['plain']}, RedisCluster = {figures['cluster']}")
        self.assertGreater(figures["plain"][0], 100)  # about half are not node1's
        self.assertLessEqual(figures["cluster"][0], 4)
        self.assertGreaterEqual(figures["cluster"][1], 400)


class DataFormats(unittest.TestCase):
    def test_format_1_cluster_keeps_working_without_slots(self):
        cluster = Cluster(2, "--set", "storage.data_format=1", "--set", "cluster.partitions=100")
        try:
            cluster.start()
            n1, n2 = cluster.nodes
            c = n1.client()
            try:
                self.assertEqual(c.call("SET", "f1:k", "v"), "OK")
                self.assertIn("cluster support disabled", str(c.call("CLUSTER", "SLOTS")))
                self.assertEqual(c.call("CLUSTER", "KEYSLOT", "foo"), 12182)
            finally:
                c.close()
            self.assertEqual(info(n1, "cluster")["cluster_enabled"], "0")
            self.assertEqual(info(n1, "cluster")["data_format"], "1")
            # A restart reopens the format-1 directory with its placement.
            n1.stop()
            n1.start()
            cluster.wait_connected()
            c = n2.client()
            try:
                self.assertEqual(c.call("GET", "f1:k", "R", "all"), b"v")
            finally:
                c.close()
        finally:
            cluster.cleanup()

    def test_a_node_of_another_format_is_refused(self):
        cluster = Cluster(2)
        try:
            n1, n2 = cluster.nodes
            n1.start()
            n2.extra += ["--set", "storage.data_format=1"]
            n2.start()
            wait_until(lambda: "data format 1 (XXH3-64 placement), this node's data directory "
                               "is format 2" in open(n1.log_path, errors="replace").read()
                       or "this node's data directory is format 1" in
                       open(n2.log_path, errors="replace").read(),
                       timeout=20, what="the handshake refusal naming the formats")
            self.assertEqual(cluster.peers_up(n1), 0)
            self.assertEqual(cluster.peers_up(n2), 0)
            self.assertGreater(int(info(n1, "cluster")["peer_handshakes_refused"]), 0)
        finally:
            cluster.cleanup()

    def test_check_config_refuses_partitions_that_do_not_divide_the_slots(self):
        r = subprocess.run([ITSUKAD, "--check-config", "--set", "cluster.partitions=100"],
                           capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"16384", r.stdout + r.stderr)
        r = subprocess.run([ITSUKAD, "--check-config", "--set", "cluster.partitions=100",
                            "--set", "storage.data_format=1"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode())


if __name__ == "__main__":
    unittest.main()
