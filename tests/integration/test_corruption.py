"""Corruption is never silent (README "Corruption and I/O errors"): a write-ahead log
corrupted in the middle makes a node refuse to start, naming the file, unless the
operator allows it; then the node is not authoritative (its copies give no votes) until
a repair brought back what it lost. A flipped byte in an SST data block is logged and
counted, the key is served from the other replicas, and repair restores it. A write on
a full disk gets -IOERR (not applied) on an open connection, reads go on, and writes
work again once space returns."""
import glob
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Cluster, Node, RespError, wait_until
from test_repair import FAST, info as info_section


def info(node, section="persistence"):
    return info_section(node, section)


KEYS = 1000
ALLOW = ("--set", "storage.allow_wal_corruption=1")


def value(i):
    return ("v%04d-" % i) + os.urandom(100).hex()


def write_keys(node):
    values = {}
    c = node.client()
    try:
        for i in range(KEYS):
            values["k%04d" % i] = value(i)
            r = c.call("SET", "k%04d" % i, values["k%04d" % i], "W", "all")
            assert r == "OK", r
    finally:
        c.close()
    return values


def flip(path, at, count):
    with open(path, "r+b") as f:
        f.seek(at)
        data = bytearray(f.read(count))
        for i in range(len(data)):
            data[i] ^= 0x5A
        f.seek(at)
        f.write(bytes(data))


def biggest(pattern):
    files = glob.glob(pattern)
    assert files, f"no file matches {pattern}"
    return max(files, key=os.path.getsize)


def read_log(node):
    with open(node.log_path, "rb") as f:
        return f.read().decode(errors="replace")


def start_fails(node):
    """Starts the node expecting it to refuse; returns its exit code."""
    try:
        node.start()
    except AssertionError as e:
        assert "exited with" in str(e), e
        code = node.proc.returncode
        node.stop()
        return code
    raise AssertionError("the node started")


class ThreeNodes(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3, *FAST)
        self.cluster.start()
        self.n1, self.n2, self.n3 = self.cluster.nodes

    def tearDown(self):
        self.cluster.cleanup()

    def assert_reads(self, node, values):
        c = node.client()
        try:
            for k, v in values.items():
                self.assertEqual(c.call("GET", k), v.encode(), k)
        finally:
            c.close()

    def assert_repaired_and_holds_all(self, values):
        """node3 becomes authoritative again, then alone answers every key itself."""
        wait_until(lambda: info(self.n3)["partitions_not_authoritative"] == "0", timeout=40,
                   what="the automatic repair of what node3 lost")
        self.n1.stop()
        self.n2.stop()
        self.assert_reads(self.n3, values)


class WalCorruption(ThreeNodes):

    def test_refuses_then_starts_not_authoritative_and_is_repaired(self):
        values = write_keys(self.n1)
        self.n3.stop()  # SIGTERM: a clean close, which flushes nothing
        wal = biggest(os.path.join(self.n3.data_dir, "*.log"))
        # Nothing was flushed (64 MiB write buffer): the log holds the writes.
        self.assertGreater(os.path.getsize(wal), KEYS * 200)
        flip(wal, os.path.getsize(wal) // 2, 4)

        # Refused, and the log (and stderr, in the same file) names the file.
        self.assertEqual(start_fails(self.n3), 1)
        log = read_log(self.n3)
        self.assertIn(wal, log)
        self.assertIn("storage.allow_wal_corruption", log)

        # Started with the override while node1 is down, so no repair can run yet.
        self.n1.stop()
        self.n3.extra += ALLOW
        self.n3.start()
        for _ in ALLOW:
            self.n3.extra.pop()
        self.assertIn("STARTING WITH LOST WRITES", read_log(self.n3))
        st = info(self.n3)
        self.assertEqual(st["wal_corruptions"], "1")
        self.assertEqual(st["partitions_not_authoritative"], "16")
        self.assertIn(wal, st["last_corruption"])

        # A restart keeps the mark (and needs no override: the bad log was replaced).
        self.n3.stop()
        self.n3.start()
        self.assertEqual(info(self.n3)["partitions_not_authoritative"], "16")
        self.cluster.wait_connected([self.n2, self.n3])

        # Its copies give no votes: R=one through it still answers every key right
        # (from node2), and a read that needs 2 voters is refused, not answered stale.
        c = self.n3.client()
        try:
            for k, v in values.items():
                self.assertEqual(c.call("GET", k), v.encode(), k)
            r = c.call("GET", "k0000", "R", "2")
            self.assertIsInstance(r, RespError)
            self.assertTrue(str(r).startswith("UNAVAILABLE"), r)
        finally:
            c.close()

        # Once every replica is reachable the node repairs itself and votes again.
        self.n1.start()
        self.assert_repaired_and_holds_all(values)


class SstCorruption(ThreeNodes):
    def test_a_bad_block_is_logged_counted_served_from_replicas_and_repaired(self):
        values = write_keys(self.n1)
        # A restart replays the log into SST files (RocksDB flushes what it recovers).
        self.n3.stop()
        self.n3.start()
        self.n3.stop()
        sst = biggest(os.path.join(self.n3.data_dir, "*.sst"))
        self.assertGreater(os.path.getsize(sst), KEYS * 100)  # the data, not the index
        flip(sst, os.path.getsize(sst) // 3, 1)
        self.n3.start()
        self.cluster.wait_connected()

        self.assert_reads(self.n3, values)  # the damaged keys from the other replicas
        st = info(self.n3)
        self.assertGreaterEqual(int(st["storage_corruptions"]), 1)
        self.assertIn(".sst", st["last_corruption"])
        log = read_log(self.n3)
        self.assertIn("storage corruption", log)
        self.assertIn(os.path.basename(sst), log)

        self.assert_repaired_and_holds_all(values)


@unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"),
                     "needs root to mount a small tmpfs")
class DiskFull(unittest.TestCase):
    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="itsuka-full-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", self.mnt],
                           capture_output=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest(f"cannot mount tmpfs: {r.stderr.decode().strip()}")
        self.node = Node("--set", "storage.write_buffer_mb=1", "--set", "storage.min_free_mb=4",
                         data_dir=os.path.join(self.mnt, "data"))
        self.logs = tempfile.mkdtemp(prefix="itsuka-full-log-")
        self.node.log_path = os.path.join(self.logs, "itsukad.log")  # not on the full disk

    def tearDown(self):
        self.node.cleanup()
        subprocess.run(["umount", self.mnt], capture_output=True)
        os.rmdir(self.mnt)
        shutil.rmtree(self.logs, ignore_errors=True)

    def test_full_disk_gets_ioerr_reads_go_on_and_writes_come_back(self):
        self.node.start()
        c = self.node.client()
        self.assertEqual(c.call("SET", "before", "kept"), "OK")
        # Fill the file system but for a little room.
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        os.truncate(filler, max(0, os.path.getsize(filler) - (1 << 20)))
        big = "x" * 200000
        err = None
        for i in range(200):
            r = c.call("SET", "full%d" % i, big)
            if isinstance(r, RespError):
                err = str(r)
                break
        self.assertIsNotNone(err, "no write failed on a full disk")
        self.assertTrue(err.startswith("IOERR"), err)
        self.assertIn("not applied", err)
        # The same connection still works, and reads do.
        self.assertEqual(c.call("GET", "before"), b"kept")
        self.assertEqual(c.call("PING"), "PONG")
        self.assertIsNone(c.call("GET", "full%d" % i))  # the refused write is not there
        self.assertGreaterEqual(int(info(self.node)["failed_commits"]), 1)
        # Space returns: writes work again.
        os.remove(filler)
        deadline = time.monotonic() + 20
        while True:
            r = c.call("SET", "after", "ok")
            if r == "OK" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r, "OK")
        self.assertEqual(c.call("GET", "after"), b"ok")
        c.close()


if __name__ == "__main__":
    unittest.main()
