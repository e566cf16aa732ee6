"""metrics.port (Prometheus text), the INFO fields Redis tooling reads (redis-cli --stat,
prometheus-redis-exporter), the Grafana dashboard's metric names, and the log file
(SIGHUP reopen, size cap, JSON lines). Ports are taken from 20200-20999."""
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import Cluster, Node, PortRange, wait_until

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
_ports = PortRange(20200, 21000, 20200 + (os.getpid() % 40) * 20, peer=True)


def port_in_range():
    """A free loopback port (and port + 10000) in this part's range (20200-20999)."""
    return _ports.take()


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def samples(text):
    """{name{labels}: value} of an exposition text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def raw_request(port, data, read_timeout=5.0):
    """Sends bytes, returns what came back until the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk


class MetricsEndpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mport = port_in_range()
        cls.node = Node("--set", f"metrics.port={cls.mport}", port=port_in_range()).start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_latency_histograms_and_figures(self):
        c = self.node.client()
        for i in range(20):
            c.call("SET", f"m:{i}", "v")
            c.call("GET", f"m:{i}")
        c.call("SET", "m:c", "v", "CONSISTENT")
        c.call("PING")
        c.close()
        ctype, text = scrape(self.mport)
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        s = samples(text)
        h = "itsuka_command_duration_seconds"
        self.assertEqual(s[f'{h}_count{{command="set",mode="eventual"}}'], 20)
        self.assertEqual(s[f'{h}_bucket{{command="get",mode="eventual",le="+Inf"}}'], 20)
        self.assertEqual(s[f'{h}_count{{command="set",mode="consistent"}}'], 1)
        self.assertGreaterEqual(s[f'{h}_count{{command="ping",mode="local"}}'], 1)
        self.assertIn("# TYPE itsuka_command_duration_seconds histogram", text)
        for name in ("itsuka_used_memory", "itsuka_used_memory_rss", "itsuka_used_cpu_user",
                     "itsuka_used_cpu_sys", "itsuka_rocksdb_memtable_bytes",
                     "itsuka_rocksdb_block_cache_bytes", "itsuka_rocksdb_sst_files_bytes",
                     "itsuka_rocksdb_pending_compaction_bytes", "itsuka_rocksdb_write_stopped",
                     "itsuka_rocksdb_delayed_write_rate", "itsuka_hints_stored",
                     "itsuka_hints_replayed", "itsuka_hints_replay_failed",
                     "itsuka_partitions_copying_here", "itsuka_repair_job_partitions_total",
                     "itsuka_total_commands_processed", "itsuka_mem_fragmentation_ratio"):
            self.assertIn(name, s, name)
        self.assertGreater(s["itsuka_used_memory_rss"], 0)
        self.assertGreater(s["itsuka_used_cpu_user"] + s["itsuka_used_cpu_sys"], 0)
        self.assertEqual(s['itsuka_info{node_id="node1",cluster_name="itsuka"}'], 1)

    def test_bad_requests_get_400_and_close(self):
        for bad in (b"POST /metrics HTTP/1.1\r\n\r\n", b"*1\r\n$4\r\nPING\r\n\r\n",
                    b"GET /metrics\n\n", b"GET /" + b"a" * 9000):
            got = raw_request(self.mport, bad)
            self.assertTrue(got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got[:80])
        got = raw_request(self.mport, b"GET /other HTTP/1.1\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 404"), got[:80])
        got = raw_request(self.mport, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(got.endswith(b"\r\n\r\n"))  # no body
        # The node still serves clients and scrapes.
        self.assertEqual(self.node.client().call("PING"), "PONG")
        scrape(self.mport)

    def test_redis_cli_stat_shows_true_numbers(self):
        # --stat prints only to a terminal: run it on a pty for two intervals.
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp("redis-cli", ["redis-cli", "-p", str(self.node.port), "--stat", "-i", "1"])
        out = b""
        deadline = time.monotonic() + 8
        try:
            while time.monotonic() < deadline and out.count(b"\n") < 5:
                r, _, _ = select.select([fd], [], [], 0.5)
                if r:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
        finally:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            os.close(fd)
        text = out.decode(errors="replace")
        rows = [l.split() for l in text.splitlines() if re.match(r"^\d+\s+[\d.]+[KMG]?\s+\d+", l)]
        self.assertTrue(rows, text)
        keys, mem, clients = rows[0][0], rows[0][1], rows[0][2]
        self.assertNotIn("-", mem)
        self.assertGreaterEqual(int(clients), 1)
        self.assertGreaterEqual(int(keys), 0)


@unittest.skipUnless(shutil.which("prometheus-redis-exporter"),
                     "prometheus-redis-exporter is not installed (apt-get install prometheus-redis-exporter)")
class RedisExporter(unittest.TestCase):
    def test_exporter_sees_memory_cpu_clients_uptime(self):
        node = Node(port=port_in_range()).start()
        eport = port_in_range()
        proc = subprocess.Popen(
            ["prometheus-redis-exporter", "-redis.addr", f"redis://127.0.0.1:{node.port}",
             "-web.listen-address", f"127.0.0.1:{eport}", "-redis-only-metrics"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            c = node.client()
            c.call("SET", "e:1", "v")
            c.close()

            def up():
                try:
                    return "redis_up 1" in scrape(eport)[1]
                except (urllib.error.URLError, ConnectionError):
                    return False
            wait_until(up, timeout=15, what="the exporter")
            s = samples(scrape(eport)[1])
            for name in ("redis_memory_used_bytes", "redis_memory_used_rss_bytes",
                         "redis_memory_used_peak_bytes", "redis_connected_clients",
                         "redis_uptime_in_seconds", "redis_commands_processed_total",
                         "redis_cpu_user_seconds_total", "redis_cpu_sys_seconds_total",
                         "redis_mem_fragmentation_ratio"):
                self.assertIn(name, s, name)
                self.assertGreaterEqual(s[name], 0, name)
            self.assertGreater(s["redis_memory_used_bytes"], 1 << 20)
            self.assertGreater(s["redis_memory_used_rss_bytes"], 1 << 20)
            self.assertGreaterEqual(s["redis_connected_clients"], 1)
            self.assertGreater(s["redis_commands_processed_total"], 0)
            self.assertGreaterEqual(s['redis_db_keys{db="db0"}'], 1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            node.cleanup()


class GrafanaDashboard(unittest.TestCase):
    def test_every_metric_the_dashboard_uses_is_exported(self):
        with open(os.path.join(ROOT, "conf", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        names = set()
        for e in exprs:
            names.update(re.findall(r"\bitsuka_[a-z0-9_]+", e))
        self.assertGreater(len(names), 20)
        # A 2-node cluster, so the peer and member figures exist.
        cl = Cluster(2, "--set", "cluster.n=2")
        mports = [port_in_range() for _ in cl.nodes]
        for node, mp in zip(cl.nodes, mports):
            node.extra += ["--set", f"metrics.port={mp}"]
        try:
            cl.start()
            c = cl.nodes[0].client()
            c.call("SET", "g:1", "v")
            c.close()
            text = scrape(mports[0])[1]
            exported = set(re.findall(r"^(itsuka_[a-z0-9_]+)", text, re.M))
            missing = [n for n in sorted(names)
                       if n not in exported and re.sub(r"_(bucket|sum|count)$", "", n) not in exported]
            self.assertEqual(missing, [])
        finally:
            cl.cleanup()


class LogFile(unittest.TestCase):
    def test_sighup_reopens_and_json_lines(self):
        node = Node("--set", "log.format=json", port=port_in_range())
        log = os.path.join(node.tmp, "node.log")
        node.extra += ["--log-file", log]
        node.start()
        try:
            wait_until(lambda: os.path.exists(log) and os.path.getsize(log) > 0, what="log lines")
            os.rename(log, log + ".rotated")
            os.kill(node.pid, signal.SIGHUP)
            wait_until(lambda: os.path.exists(log) and "reopened" in open(log).read(),
                       what="a new log file after SIGHUP")
            for path in (log, log + ".rotated"):
                with open(path) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
                self.assertTrue(lines)
                for l in lines:
                    self.assertEqual(set(l), {"ts", "level", "msg"})
            self.assertEqual(node.client().call("PING"), "PONG")
        finally:
            node.cleanup()

    def test_size_cap_rotates(self):
        node = Node("--set", "log.max_bytes=4096", "--set", "server.requirepass=pw",
                    port=port_in_range())
        log = os.path.join(node.tmp, "node.log")
        node.extra += ["--log-file", log]
        node.start()
        try:
            # Each refused connection (bad protocol) writes one line.
            for _ in range(80):
                try:
                    raw_request(node.port, b"*x\r\n", read_timeout=2)
                except OSError:
                    pass
            wait_until(lambda: os.path.exists(log + ".1"), what="rotation to .1")
            self.assertLess(os.path.getsize(log + ".1"), 4096 + 1024)
            self.assertLess(os.path.getsize(log), 4096 + 1024)
        finally:
            node.cleanup()


if __name__ == "__main__":
    unittest.main()
