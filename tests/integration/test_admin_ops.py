"""itsuka-admin's cluster-wide commands on real processes: `status` (one line per
member, typed JSON, a departed member never reachable, a dead one down, hints held for
it), `transfers` (a join's partition transfers with keys and bytes copied, followed to
the end with --wait), `snapshot` + `restore` end to end (write, snapshot, write more,
wipe a node, restore it, the snapshot's keys are there and the later ones come back by
repair)."""
import json
import os
import shutil
import subprocess
import unittest

import harness
from harness import Cluster, Node, free_port, make_secret, wait_until


def admin(*args, timeout=60):
    exe = os.path.join(os.path.dirname(harness.ITSUKAD), "itsuka-admin")
    return subprocess.run([exe] + [str(a) for a in args], capture_output=True, timeout=timeout)


def admin_json(node, *args):
    r = admin("--host", f"127.0.0.1:{node.port}", "--json", *args)
    if r.returncode != 0:
        raise AssertionError(f"itsuka-admin {args} exited {r.returncode}: {r.stderr.decode()}")
    return json.loads(r.stdout)


def peer_port(node):
    for a in node.extra:
        if a.startswith("cluster.peer_port="):
            return int(a.split("=", 1)[1])
    raise AssertionError("no peer port")


def write_keys(node, prefix, count, *opts):
    c = node.client()
    try:
        for i in range(count):
            assert c.call("SET", f"{prefix}:{i}", f"v{prefix}:{i}", *opts) == "OK"
    finally:
        c.close()


def repair_status(node):
    c = node.client()
    try:
        text = c.call("ITSUKA.REPAIR", "STATUS").decode()
    finally:
        c.close()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def run_repair(node, *opts):
    c = node.client()
    try:
        c.call("ITSUKA.REPAIR", "START", *opts)
    finally:
        c.close()
    wait_until(lambda: repair_status(node)["state"] != "running", timeout=120, what="the repair to end")
    return repair_status(node)


class Status(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3)
        self.cluster.start()

    def tearDown(self):
        self.cluster.cleanup()

    def test_status_lists_every_member_with_typed_figures(self):
        n1, n2, n3 = self.cluster.nodes
        write_keys(n1, "s", 200)
        st = admin_json(n1, "status")
        self.assertEqual(st["cluster"]["view_from"], "node1")
        self.assertIsInstance(st["cluster"]["ring_version"], int)
        nodes = {n["id"]: n for n in st["nodes"]}
        self.assertEqual(sorted(nodes), ["node1", "node2", "node3"])
        for node in self.cluster.nodes:
            row = nodes[node.node_id]
            self.assertEqual(row["state"], "up")
            self.assertIs(row["reachable"], True)
            self.assertEqual(row["address"], f"127.0.0.1:{node.port}")
            self.assertIsInstance(row["data_bytes"], int)
            self.assertIsInstance(row["keys"], int)
            self.assertIsInstance(row["hints_held"], int)
            self.assertIsInstance(row["uptime_s"], int)
            self.assertIsNone(row["last_repair_age_s"])  # no repair yet
            # 3 members, n=3: every member replicates every partition.
            self.assertAlmostEqual(row["effective_ownership_pct"], 100.0)
        self.assertAlmostEqual(sum(n["ownership_pct"] for n in st["nodes"]), 100.0, places=3)
        self.assertGreater(sum(n["keys"] for n in st["nodes"]), 0)
        # A repair coordinated by node2 shows as its last repair.
        run_repair(n2)
        st = admin_json(n1, "status")
        self.assertIsInstance({n["id"]: n for n in st["nodes"]}["node2"]["last_repair_age_s"], int)
        r = admin("--host", f"127.0.0.1:{n1.port}", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("cluster view from node1", out)
        for node in self.cluster.nodes:
            self.assertIn(f"127.0.0.1:{node.port}", out)

    def test_a_dead_member_is_down_with_its_hints_and_a_departed_one_never_reachable(self):
        n1, n2, n3 = self.cluster.nodes
        n2.kill9()
        wait_until(lambda: {n["id"]: n for n in admin_json(n1, "status")["nodes"]}["node2"]["state"] == "down",
                   timeout=30, what="node2 to be seen down")
        write_keys(n1, "h", 50, "W", "1")
        st = {n["id"]: n for n in admin_json(n1, "status")["nodes"]}
        self.assertIs(st["node2"]["reachable"], False)
        self.assertIsNone(st["node2"]["data_bytes"])  # its INFO could not be read
        self.assertIn("info_error", st["node2"])
        self.assertGreater(st["node2"]["hints_for"], 0)  # node1/node3 keep hints for it
        self.assertGreater(st["node1"]["hints_held"] + st["node3"]["hints_held"], 0)
        r = admin("--host", f"127.0.0.1:{n1.port}", "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.decode(), r"node2\s+down")
        # node3 leaves; its process keeps running, but it is never listed as reachable.
        n2.start()
        self.cluster.wait_connected()
        r = admin("--host", f"127.0.0.1:{n3.port}", "leave")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: {n["id"]: n for n in admin_json(n1, "status")["nodes"]}["node3"]["state"] == "left",
                   timeout=60, what="node3 to leave")
        st = {n["id"]: n for n in admin_json(n1, "status")["nodes"]}
        self.assertIs(st["node3"]["reachable"], False)
        self.assertIn("not contacted", st["node3"]["info_error"])
        self.assertEqual(st["node3"]["effective_ownership_pct"], 0)
        self.assertAlmostEqual(st["node1"]["effective_ownership_pct"], 100.0)


class Transfers(unittest.TestCase):
    def setUp(self):
        # Transfers paced at one batch per 300 ms so that they can be watched.
        self.cluster = Cluster(3, "--set", "cluster.transfer_interval_ms=300")
        self.cluster.start()
        self.extra = []

    def tearDown(self):
        for n in self.extra:
            n.cleanup()
        self.cluster.cleanup()

    def test_transfers_of_a_join_show_progress_and_end(self):
        n1, n2, n3 = self.cluster.nodes
        r = admin_json(n1, "transfers")
        self.assertEqual(r["transfers"], [])
        self.assertEqual(r["partitions_moving"], 0)
        write_keys(n1, "t", 3000)
        d = os.path.join(self.cluster.tmp, "node4")
        os.makedirs(d)
        n4 = Node("--set", f"cluster.peer_port={free_port()}",
                  "--set", f"cluster.seeds=node1@127.0.0.1:{peer_port(n1)}",
                  "--set", "cluster.transfer_interval_ms=300",
                  data_dir=os.path.join(d, "data"), node_id="node4", secret_file=self.cluster.secret_file)
        n4.log_path = os.path.join(d, "itsukad.log")
        self.extra.append(n4)
        n4.start()
        seen = []

        def copying():
            t = admin_json(n1, "transfers")
            rows = [x for x in t["transfers"] if x["keys"] > 0 and x["state"] != "done"]
            if rows:
                seen.append(t)
            return bool(rows)
        wait_until(copying, timeout=60, interval=0.1, what="a transfer with keys copied")
        row = [x for x in seen[-1]["transfers"] if x["keys"] > 0][0]
        for k in ("partitions", "keys", "bytes", "batches", "elapsed_ms"):
            self.assertIsInstance(row[k], int, k)
        self.assertIsInstance(row["keys_per_s"], float)
        self.assertGreater(row["bytes"], row["keys"])  # key and value bytes
        self.assertIn(row["source"], ["node1", "node2", "node3", "node4"])
        self.assertGreater(seen[-1]["partitions_moving"], 0)
        if row["progress_pct"] is not None:
            self.assertLess(row["progress_pct"], 100.0)
        r = admin("--host", f"127.0.0.1:{n1.port}", "transfers")
        self.assertEqual(r.returncode, 0, r.stderr)
        # --wait follows them (plain lines when not on a terminal) until nothing moves.
        r = admin("--host", f"127.0.0.1:{n1.port}", "transfers", "--wait", timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("0 partition(s) moving", out)
        self.assertIn("no partition transfers in progress", out)
        final = admin_json(n1, "transfers")
        self.assertEqual(final["partitions_moving"], 0)


class SnapshotRestore(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3)
        self.cluster.start()

    def tearDown(self):
        self.cluster.cleanup()

    def read_all(self, node, keys, *opts):
        c = node.client()
        try:
            return {k: c.call("GET", k, *opts) for k in keys}
        finally:
            c.close()

    def test_snapshot_wipe_restore_repair(self):
        n1, n2, n3 = self.cluster.nodes
        write_keys(n1, "a", 600, "W", "all")
        r = admin_json(n1, "snapshot", "s1")
        self.assertIs(r["complete"], True)
        self.assertEqual(sorted(x["node_id"] for x in r["nodes"]), ["node1", "node2", "node3"])
        for row in r["nodes"]:
            self.assertIs(row["ok"], True)
            self.assertGreater(row["files"], 0)
            self.assertIsInstance(row["checkpoint_ms"], float)
            print(f"snapshot checkpoint on {row['node_id']}: {row['checkpoint_ms']:.2f} ms, "
                  f"{row['files']} files, {row['bytes']} bytes", flush=True)
        snap3 = os.path.join(n3.data_dir + ".snapshots", "s1")
        with open(os.path.join(snap3, "manifest.json")) as f:
            man = json.load(f)
        cid, _ = harness.read_secret(self.cluster.secret_file)
        self.assertEqual(man["node_id"], "node3")
        self.assertEqual(man["cluster_id"], cid.hex())
        self.assertEqual(man["snapshot_id"], "s1")
        self.assertIsInstance(man["ring_version"], int)
        self.assertTrue(all(os.path.exists(os.path.join(snap3, "db", f["name"])) for f in man["files"]))
        # The same id again is refused; a bad id too; --list shows it on every node.
        self.assertEqual(admin("--host", f"127.0.0.1:{n1.port}", "snapshot", "s1").returncode, 1)
        self.assertEqual(admin("--host", f"127.0.0.1:{n1.port}", "snapshot", "../x").returncode, 1)
        listed = admin_json(n1, "snapshot", "--list")
        self.assertEqual(listed, {"node1": ["s1"], "node2": ["s1"], "node3": ["s1"]})

        write_keys(n1, "b", 100, "W", "quorum")
        n3.stop()
        shutil.rmtree(n3.data_dir)
        os.makedirs(n3.data_dir)
        base = ["restore", "--snapshot", snap3, "--data-dir", n3.data_dir]
        # Identity checks: another node's id, another cluster's secret; a non-empty dir.
        r = admin(*base, "--node-id", "node2", "--secret-file", self.cluster.secret_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"of node 'node3'", r.stderr)
        other = make_secret(os.path.join(self.cluster.tmp, "other.secret"))
        r = admin(*base, "--node-id", "node3", "--secret-file", other)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"belongs to cluster", r.stderr)
        with open(os.path.join(n3.data_dir, "stray"), "w") as f:
            f.write("x")
        r = admin(*base, "--node-id", "node3", "--secret-file", self.cluster.secret_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not empty", r.stderr)
        os.remove(os.path.join(n3.data_dir, "stray"))
        r = admin(*base, "--node-id", "node3", "--secret-file", self.cluster.secret_file, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["node_id"], "node3")

        n3.start()
        self.cluster.wait_connected()
        # node3 holds the snapshot's keys and misses only the later ones: a dry-run repair
        # of its pairs finds about the 100 later keys (per pair), far from the 700 a wiped
        # node would miss.
        dry = run_repair(n3, "NODE", "node3", "DRYRUN")
        differing = int(dry["keys_differing"])
        print(f"after restore: {differing} keys differing (100 written after the snapshot)", flush=True)
        self.assertGreater(differing, 0)
        self.assertLessEqual(differing, 2 * 100)
        done = run_repair(n3, "NODE", "node3")
        self.assertEqual(done["partitions_failed"], "0")
        again = run_repair(n3, "NODE", "node3", "DRYRUN")
        self.assertEqual(again["keys_differing"], "0")
        keys = [f"a:{i}" for i in range(600)] + [f"b:{i}" for i in range(100)]
        got = self.read_all(n3, keys, "R", "all")
        self.assertEqual({k: v for k, v in got.items() if v != f"v{k}".encode()}, {})


if __name__ == "__main__":
    unittest.main()
