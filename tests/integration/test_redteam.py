"""Attacks from anyone who can reach a node's ports, each a finding of the red team that
was fixed: the node must answer with a clear error, stay responsive (a PING from
another client answers promptly) and stay within its memory limits.

- a transaction queueing thousands of SETRANGEs of one 16 MB value stalled the loop
  thread for 30 s (each copied the value);
- `MGET k k k ...` of one large value inside MULTI built a reply of gigabytes before the
  output limit was checked;
- client names (CLIENT SETNAME, HELLO SETNAME) were unbounded and not charged to any
  limit, and HELLO took names with newlines (forged CLIENT LIST lines);
- a bulk header reserved up to 1 MiB before any of its bytes arrived, uncharged;
- `CONFIG GET "*?*?*?*?*?*?*?*?*?*?Z"` (21 bytes) kept the node busy for 79 s;
- sixteen connections each holding half an HTTP request kept every scrape of
  metrics.port out;
- client connections up to server.max_clients could use every descriptor the process
  may open, and RocksDB, unable to open its next log file, failed every write from then
  on, even after the connections closed (until a restart).
"""
import os
import socket
import threading
import time
import unittest

from harness import Client, Node, PortRange, RespError, SANITIZED, wait_until

_ports = PortRange(20500, 21500, 20500 + (os.getpid() % 50) * 20, peer=True)


def port_in_range():
    """A free loopback port (and port + 10000) in the red team's range (20500-21499)."""
    return _ports.take()


def peak_rss_mib(pid):
    """The process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


class PingDuring:
    """Sends PINGs from another connection while a block runs; `worst` is the slowest."""

    def __init__(self, node):
        self.node = node
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        c = Client(self.node.port, timeout=60)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                assert c.call("PING") == "PONG"
                self.worst = max(self.worst, time.monotonic() - started)
                time.sleep(0.05)
        finally:
            c.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=90)


class RedTeam(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mport = port_in_range()
        cls.node = Node("--set", f"metrics.port={cls.mport}", port=port_in_range()).start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def client(self):
        c = Client(self.node.port, timeout=120)
        self.clients.append(c)
        return c

    def large_value(self, key):
        """Makes `key` a 16 MB value from a 30-byte command."""
        c = self.client()
        self.assertEqual(c.call("SETRANGE", key, 16 * 1024 * 1024 - 1, "x"), 16 * 1024 * 1024)

    def test_many_setranges_of_a_large_value_in_one_transaction(self):
        self.large_value("rt:big")
        c = self.client()
        n = 4000
        with PingDuring(self.node) as pings:
            started = time.monotonic()
            c.send_raw(b"".join(Client.encode(*a) for a in
                                [("MULTI",)] + [("SETRANGE", "rt:big", i, "y") for i in range(n)] +
                                [("EXEC",)]))
            self.assertEqual(c.read(), "OK")
            for _ in range(n):
                self.assertEqual(c.read(), "QUEUED")
            replies = c.read()
            took = time.monotonic() - started
        self.assertEqual(len(replies), n)
        self.assertEqual(replies[-1], 16 * 1024 * 1024)
        self.assertEqual(c.call("GETRANGE", "rt:big", 0, 3), b"yyyy")
        # Before: every SETRANGE copied the 16 MB value, 30 s with the node unresponsive.
        self.assertLess(took, 10, "the transaction took too long")
        self.assertLess(pings.worst, 2.0, f"a PING waited {pings.worst:.1f} s")

    def test_mget_of_one_large_value_inside_multi_is_bounded(self):
        self.large_value("rt:big2")
        c = self.client()
        self.assertEqual(c.call("CONFIG", "SET", "limits.max_output_buffer_bytes", 32 << 20), "OK")
        try:
            before = peak_rss_mib(self.node.pid)
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("MGET", *(["rt:big2"] * 100)), "QUEUED")
            reply = c.call("EXEC")
            self.assertIsInstance(reply, RespError)
            self.assertIn("reply would exceed limits.max_output_buffer_bytes", str(reply))
            grown = peak_rss_mib(self.node.pid) - before
            # Before: the 1.6 GB reply was built, then refused.
            if not SANITIZED:
                self.assertLess(grown, 400, f"peak RSS grew by {grown} MiB")
            self.assertEqual(c.call("PING"), "PONG")
        finally:
            c.call("CONFIG", "SET", "limits.max_output_buffer_bytes", 256 << 20)

    def test_client_names_are_bounded_and_checked(self):
        c = self.client()
        self.assertEqual(c.call("CLIENT", "SETNAME", "n" * 1024), "OK")
        reply = c.call("CLIENT", "SETNAME", "n" * 1025)
        self.assertIsInstance(reply, RespError)
        self.assertIn("at most 1024 bytes", str(reply))
        reply = c.call("HELLO", "2", "SETNAME", "n" * (4 << 20))
        self.assertIsInstance(reply, RespError)
        self.assertEqual(c.call("CLIENT", "GETNAME"), b"n" * 1024)
        # A name with a newline would forge a line of CLIENT LIST.
        forged = "x\nid=1 addr=10.0.0.1:1 name=admin"
        reply = c.call("HELLO", "2", "SETNAME", forged)
        self.assertIsInstance(reply, RespError)
        self.assertIn("cannot contain spaces", str(reply))
        self.assertEqual(c.call("CLIENT", "GETNAME"), b"n" * 1024)
        self.assertNotIn(b"10.0.0.1", c.call("CLIENT", "LIST"))
        self.assertIsInstance(c.call("HELLO", "2", "SETNAME", "fine"), list)
        self.assertEqual(c.call("CLIENT", "GETNAME"), b"fine")

    def test_bulk_headers_reserve_nothing_before_their_bytes_arrive(self):
        c = self.client()

        def heap():
            text = c.call("INFO", "memory").decode()
            return int(text.split("used_memory:")[1].split()[0])

        before = heap()
        holders = []
        try:
            for _ in range(300):
                h = Client(self.node.port, timeout=10)
                h.send_raw(b"*3\r\n$3\r\nSET\r\n$5\r\nrt:hd\r\n$16000000\r\n" + b"x" * 100)
                holders.append(h)
            self.assertEqual(c.call("PING"), "PONG")
            # Before: each header reserved 1 MiB, 300 MB of heap for 12 KB charged.
            self.assertLess(heap() - before, 64 << 20)
        finally:
            for h in holders:
                h.close()

    def test_config_get_patterns_take_little_time(self):
        c = self.client()
        started = time.monotonic()
        # Before: 79 s with the node unresponsive (exponential backtracking).
        self.assertEqual(c.call("CONFIG", "GET", "*?" * 10 + "Z"), [])
        self.assertEqual(c.call("CONFIG", "GET", "*?" * 64), [])  # over 128 bytes: no match
        self.assertLess(time.monotonic() - started, 2)
        reply = c.call("CONFIG", "GET", *(["x"] * 129))
        self.assertIsInstance(reply, RespError)
        self.assertIn("at most 128 patterns", str(reply))
        # Matching itself is unchanged.
        got = c.call("CONFIG", "GET", "limits.max_o*", "*.MAX_CLIENTS", "server.?ort")
        self.assertEqual(got[0::2], [b"server.port", b"server.max_clients",
                                     b"limits.max_output_buffer_bytes", b"limits.max_object_bytes"])

    def test_half_sent_http_requests_do_not_keep_scrapes_out(self):
        holders = []
        try:
            for _ in range(16):  # metrics_http.h kMaxConnections
                s = socket.create_connection(("127.0.0.1", self.mport), timeout=5)
                s.sendall(b"GET /metr")
                holders.append(s)
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", self.mport), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            # Before: the scraper was closed at accept while the 16 holders waited.
            self.assertTrue(got.startswith(b"HTTP/1.1 200 OK"), got[:80])
            self.assertIn(b"itsuka_info", got)
        finally:
            for s in holders:
                s.close()


class LowDescriptorLimit(Node):
    """A node started under `prlimit --nofile=N:N` (prlimit execs it: same pid)."""

    def __init__(self, nofile, *extra):
        super().__init__(*extra, port=port_in_range())
        self.nofile = nofile

    def argv(self):
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}"] + super().argv()


class Descriptors(unittest.TestCase):
    def test_clients_cannot_take_the_descriptors_storage_needs(self):
        # 1000 descriptors less the 944 kept for storage and peers: 56 clients.
        node = LowDescriptorLimit(1000, "--set", "storage.write_buffer_mb=1").start()
        conns = []
        try:
            keep = Client(node.port, timeout=30)
            refused = 0
            for _ in range(1100):
                c = Client(node.port, timeout=30)
                conns.append(c)
            for c in conns:
                c.send_raw(Client.encode("PING"))
                try:
                    reply = c.read()
                except Exception:  # closed after the error, or reset
                    refused += 1
                    continue
                if isinstance(reply, RespError):
                    self.assertIn("max number of clients reached", str(reply))
                    refused += 1
            # Enough writes to switch RocksDB's memtable and log file several times.
            value = "v" * (256 << 10)
            for i in range(40):
                self.assertEqual(keep.call("SET", f"rt:fd{i}", value), "OK", f"write {i}")
            self.assertGreater(refused, 1000)
            for c in conns:
                c.close()
            conns = []
            self.assertEqual(keep.call("SET", "rt:after", "x"), "OK")
            self.assertEqual(keep.call("GET", "rt:fd39"), value.encode())
            self.assertIn("does not fit the open-file limit", node.log_tail() + open(node.log_path).read(4000))
            keep.close()
        finally:
            for c in conns:
                c.close()
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
