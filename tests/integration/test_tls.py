"""TLS on the client port and between peers, end to end: redis-cli --tls and Python's
ssl module against a node, refusals (no client certificate, plain TCP, garbage) that
leave the node serving, bad certificate files at start, a TLS-only node, the README's
example line by line, and a 3-node cluster whose peers speak TLS and refuse a node of
another CA or one without TLS. Certificates come from tools/make-certs."""
import os
import random
import re
import shlex
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Client, Closed, Cluster, Node, free_port, info, redis_py_interpreter, wait_until

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MAKE_CERTS = os.path.abspath(os.path.join(ROOT, "tools", "make-certs"))


REDIS_PY = redis_py_interpreter()


def make_certs(directory):
    subprocess.run([MAKE_CERTS, directory], check=True, capture_output=True, timeout=60)
    return {name: os.path.join(directory, name) for name in
            ("ca.crt", "node.crt", "node.key", "client.crt", "client.key")}


def tls_flags(certs, *extra):
    return ["--tls-cert-file", certs["node.crt"], "--tls-key-file", certs["node.key"],
            "--tls-ca-cert-file", certs["ca.crt"], *extra]


def client_context(certs, with_cert=True):
    ctx = ssl.create_default_context(cafile=certs["ca.crt"])  # verifies the IP SAN too
    if with_cert:
        ctx.load_cert_chain(certs["client.crt"], certs["client.key"])
    return ctx


def redis_cli_tls(certs, port, *args, with_cert=True):
    cmd = ["redis-cli", "--tls", "--cacert", certs["ca.crt"], "-p", str(port)]
    if with_cert:
        cmd += ["--cert", certs["client.crt"], "--key", certs["client.key"]]
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace").strip(), r.stderr.decode(errors="replace")


def closed_by_server(sock, timeout=5):
    """Reads until the server closes; raises if it keeps the connection open."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return got
            got += data
    except ConnectionResetError:
        return got
    except socket.timeout:
        raise AssertionError("the server kept the connection open")


class TlsNode(unittest.TestCase):
    """One node with a plain port and a TLS port (client certificates required)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="itsuka-tls-")
        cls.certs = make_certs(os.path.join(cls.tmp, "certs"))
        cls.tls_port = free_port()
        cls.node = Node("--tls-port", str(cls.tls_port), "--set", "tls.handshake_timeout_ms=1500",
                        *tls_flags(cls.certs)).start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_serving(self):
        c = self.node.client()
        self.assertEqual(c.call("PING"), "PONG")
        c.close()
        self.assertIsNone(self.node.proc.poll())

    def test_redis_cli_with_a_client_certificate(self):
        self.assertEqual(redis_cli_tls(self.certs, self.tls_port, "SET", "k", "v")[:2], (0, "OK"))
        self.assertEqual(redis_cli_tls(self.certs, self.tls_port, "GET", "k")[:2], (0, "v"))
        # The plain port sees the same data.
        c = self.node.client()
        self.assertEqual(c.call("GET", "k"), b"v")
        c.close()

    def test_no_client_certificate_is_refused(self):
        before = int(info(self.node, "tls")["tls_client_handshake_failures"])
        self.assertEqual(redis_cli_tls(self.certs, self.tls_port, "SET", "k2", "v")[:2], (0, "OK"))
        rc, out, err = redis_cli_tls(self.certs, self.tls_port, "GET", "k2", with_cert=False)
        self.assertNotEqual(out, "v")
        self.assertTrue(rc != 0 or "Error" in out + err, (rc, out, err))
        with self.assertRaises((ssl.SSLError, OSError, Closed)):
            c = Client(self.tls_port, ssl_context=client_context(self.certs, with_cert=False), timeout=5)
            c.call("GET", "k2")  # TLS 1.3: the refusal arrives after the client's handshake
        wait_until(lambda: int(info(self.node, "tls")["tls_client_handshake_failures"]) >= before + 2,
                   timeout=5, what="the refused handshakes to be counted")
        self.assert_serving()

    def test_python_ssl_client_and_a_large_value(self):
        c = Client(self.tls_port, ssl_context=client_context(self.certs))
        value = os.urandom(3 << 20)  # crosses many records and socket reads each way
        self.assertEqual(c.call("SET", "big", value), "OK")
        self.assertEqual(c.call("GET", "big"), value)
        # Pipelined commands in one TLS write.
        c.send_raw(b"".join(Client.encode("SET", f"p{i}", str(i)) for i in range(500)))
        self.assertEqual([c.read() for _ in range(500)], ["OK"] * 500)
        self.assertEqual(c.call("GET", "p499"), b"499")
        c.close()

    @unittest.skipUnless(REDIS_PY, "needs redis-py (apt python3-redis)")
    def test_redis_py_with_ssl_options(self):
        # A client library's own TLS options: redis-py (run by the interpreter that has it).
        script = (
            "import sys, redis\n"
            "r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), ssl=True, ssl_ca_certs=sys.argv[2],"
            " ssl_certfile=sys.argv[3], ssl_keyfile=sys.argv[4])\n"
            "assert r.set('py', 'thon') is True\n"
            "print(r.get('py').decode())\n")
        r = subprocess.run([REDIS_PY, "-c", script, str(self.tls_port), self.certs["ca.crt"],
                            self.certs["client.crt"], self.certs["client.key"]],
                           capture_output=True, timeout=30)
        self.assertEqual(r.stdout.decode().strip(), "thon", r.stderr.decode()[-1000:])

    def test_plain_tcp_to_the_tls_port_fails_cleanly(self):
        s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        s.sendall(Client.encode("PING"))
        got = closed_by_server(s)
        s.close()
        self.assertNotIn(b"PONG", got)
        # What came back, if anything, is a TLS alert record (content type 21), not RESP.
        self.assertTrue(got == b"" or got[:1] == b"\x15", got[:20])
        self.assert_serving()

    def test_garbage_and_broken_handshakes_do_not_hurt(self):
        rng = random.Random(7)
        junk = [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 100, 70000)]
        # A TLS record header claiming a huge handshake, and a ClientHello cut short (it
        # waits for the rest until tls.handshake_timeout_ms, 1.5 s here).
        junk.append(b"\x16\x03\x01\xff\xff" + b"\x01" * 20000)
        junk.append(b"\x16\x03\x01\x00\x80\x01\x00\x00\x7c\x03\x03" + b"\x00" * 10)
        for data in junk:
            s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if len(data) > 20:
                closed_by_server(s)
            s.close()
        self.assert_serving()
        self.assertEqual(redis_cli_tls(self.certs, self.tls_port, "PING")[:2], (0, "PONG"))
        t = info(self.node, "tls")
        self.assertGreaterEqual(int(t["tls_client_handshake_failures"]), 4, t)

    def test_failure_logging_is_rate_limited(self):
        def log_text():
            with open(self.node.log_path, "rb") as f:
                return f.read().decode(errors="replace")

        def garbage_connection():
            s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")
            closed_by_server(s)
            s.close()

        before_lines = log_text().count("tls: handshake with")
        before = int(info(self.node, "tls")["tls_client_handshake_failures"])
        t0 = time.monotonic()
        for _ in range(100):
            garbage_connection()
        elapsed = time.monotonic() - t0
        self.assertEqual(int(info(self.node, "tls")["tls_client_handshake_failures"]), before + 100)
        logged = log_text().count("tls: handshake with") - before_lines
        # Every failure is counted, but at most 10 a second are logged.
        self.assertLessEqual(logged, 10 * (int(elapsed) + 2), f"{logged} lines in {elapsed:.1f} s")
        self.assertLess(logged, 100, "every failed handshake was logged")
        # Once the second is over, the next failure says how many were left out.
        wait_until(lambda: (garbage_connection() or True) and "not logged" in log_text(), timeout=5,
                   interval=0.5, what="the summary of unlogged failures")
        self.assert_serving()

    def test_info_shows_the_tls_state(self):
        t = info(self.node, "tls")
        self.assertEqual(t["tls_port"], str(self.tls_port))
        self.assertEqual(t["tls_auth_clients"], "yes")
        self.assertEqual(t["tls_peers"], "0")
        self.assertIn("CN=itsuka node", t["tls_certificate"])
        redis_cli_tls(self.certs, self.tls_port, "PING")
        self.assertGreaterEqual(int(info(self.node, "tls")["tls_client_handshakes"]), 1)


class TlsOnlyNode(Node):
    """A node with server.port 0: readiness is checked over TLS."""

    def __init__(self, certs, *extra):
        self.certs = certs
        super().__init__("--tls-port", "0", *extra)
        self.tls_port = self.port
        self.extra = ["--tls-port", str(self.tls_port)] + list(extra)

    def argv(self):
        return [harness.ITSUKAD, "--port", "0", "--data-dir", self.data_dir, "--node-id",
                self.node_id] + self.extra

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"itsukad exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            Client(self.tls_port, timeout=1, ssl_context=client_context(self.certs, with_cert=False)).close()
            return True
        except OSError:
            return False


class TlsStartup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="itsuka-tls-")
        cls.certs = make_certs(os.path.join(cls.tmp, "certs"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_fails(self, *flags):
        r = subprocess.run([harness.ITSUKAD, "--port", str(free_port()), "--data-dir",
                            os.path.join(self.tmp, "d-" + str(free_port())), *flags],
                           capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        return r.stderr.decode()

    def test_bad_files_stop_the_node_with_the_file_named(self):
        c = self.certs
        err = self.start_fails("--tls-port", str(free_port()), "--tls-cert-file", c["node.crt"],
                               "--tls-key-file", c["client.key"], "--tls-ca-cert-file", c["ca.crt"])
        self.assertIn(f"'{c['client.key']}' does not match the certificate in '{c['node.crt']}'", err)
        missing = os.path.join(self.tmp, "nope.crt")
        err = self.start_fails("--tls-port", str(free_port()), "--tls-cert-file", missing,
                               "--tls-key-file", c["node.key"], "--tls-ca-cert-file", c["ca.crt"])
        self.assertIn(f"cannot read '{missing}'", err)
        err = self.start_fails("--tls-port", str(free_port()), "--tls-cert-file", c["node.key"],
                               "--tls-key-file", c["node.key"], "--tls-ca-cert-file", c["ca.crt"])
        self.assertIn(f"'{c['node.key']}' is not a PEM certificate", err)
        err = self.start_fails("--tls-port", str(free_port()), "--tls-cert-file", c["node.crt"],
                               "--tls-key-file", c["node.key"])
        self.assertIn("tls.ca_cert_file", err)

    def test_tls_only_node_with_optional_client_certificates(self):
        node = TlsOnlyNode(self.certs, *tls_flags(self.certs, "--tls-auth-clients", "optional")).start()
        try:
            # No client certificate needed with "optional"; one that is offered is verified.
            self.assertEqual(redis_cli_tls(self.certs, node.tls_port, "SET", "a", "1", with_cert=False)[:2],
                             (0, "OK"))
            self.assertEqual(redis_cli_tls(self.certs, node.tls_port, "GET", "a")[:2], (0, "1"))
            c = Client(node.tls_port, ssl_context=client_context(self.certs, with_cert=False))
            text = c.call("INFO", "tls").decode()
            self.assertIn("tls_auth_clients:optional", text)
            c.close()
            # There is no plain port: the log names only the TLS one.
            self.assertIn(f"and TLS port {node.tls_port}", node.log_tail())
        finally:
            node.cleanup()


class ReadmeExample(unittest.TestCase):
    """Runs the README's TLS example (### TLS, the first sh block) with its own ports
    and directories: the documented commands must work as shown."""

    def test_readme_tls_example(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("### TLS"):]
        block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
        tmp = tempfile.mkdtemp(prefix="itsuka-tls-readme-")
        port, tls_port = free_port(), free_port()
        subs = [("/tmp/itsuka-certs", os.path.join(tmp, "certs")), ("/tmp/itsuka-tls", tmp),
                ("tools/make-certs", MAKE_CERTS), ("build/bin/itsukad", harness.ITSUKAD),
                ("-p 7101", f"-p {tls_port}"), ("--tls-port 7101", f"--tls-port {tls_port}"),
                ("--port 7001", f"--port {port}")]
        node = None
        checked = 0
        try:
            for line in block.strip().split("\n"):
                command, _, expect = line.partition("#")
                command, expect = command.strip(), expect.strip()
                for a, b in subs:
                    command = command.replace(a, b)
                if command.endswith("&"):
                    argv = shlex.split(command[:-1])
                    node = Node(port=port)
                    node.argv = lambda argv=argv: argv
                    node.start()
                    continue
                r = subprocess.run(shlex.split(command), capture_output=True, timeout=60)
                out = r.stdout.decode(errors="replace").strip()
                if not expect:
                    self.assertEqual(r.returncode, 0, (command, r.stderr))
                elif expect.startswith("refused"):
                    self.assertNotEqual(out, "v", command)
                    self.assertTrue(r.returncode != 0 or "Error" in out, (command, out))
                    checked += 1
                else:
                    self.assertEqual(out, expect, command)
                    checked += 1
            self.assertIsNotNone(node, "the example starts no node")
            self.assertGreaterEqual(checked, 3)
            self.assertIsNone(node.proc.poll())
        finally:
            if node:
                node.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


def peer_port_of(node):
    return int([a for a in node.argv() if a.startswith("cluster.peer_port=")][0].split("=")[1])


class TlsCluster(unittest.TestCase):
    """Three nodes whose peer connections are TLS, verified both ways against one CA."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="itsuka-tls-cl-")
        cls.certs = make_certs(os.path.join(cls.tmp, "certs"))
        cls.other = make_certs(os.path.join(cls.tmp, "other-ca"))
        cls.cluster = Cluster(3, "--tls-cluster", "yes", *tls_flags(cls.certs)).start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_writes_through_one_node_are_read_through_another(self):
        n1, n2, n3 = self.cluster.nodes
        c = n1.client()
        self.assertEqual(c.call("SET", "tk", "tv"), "OK")
        c.close()
        for n in (n2, n3):
            def reads():
                cl = n.client()
                try:
                    return cl.call("GET", "tk") == b"tv"
                finally:
                    cl.close()
            wait_until(reads, timeout=10, what=f"{n.node_id} to read the write")
        for n in self.cluster.nodes:
            t = info(n, "tls")
            self.assertEqual(t["tls_peers"], "1")
            # Each node dialled two peers and accepted two: all over TLS.
            self.assertGreaterEqual(int(t["tls_peer_handshakes"]), 4, (n.node_id, t))

    def outsider(self, *flags):
        n1 = self.cluster.nodes[0]
        node = Node("--set", f"cluster.peer_port={free_port()}",
                    "--set", f"cluster.seeds=node1@127.0.0.1:{peer_port_of(n1)}", *flags,
                    node_id="node4")
        return node.start()

    def assert_not_joined(self, stranger, before):
        n1 = self.cluster.nodes[0]
        wait_until(lambda: int(info(n1, "tls")["tls_peer_handshake_failures"]) >= before + 2,
                   timeout=15, what="node1 to refuse the stranger's handshakes")
        self.assertNotIn("state=up", info(stranger, "cluster").get("peer0", ""))
        for n in self.cluster.nodes:
            self.assertNotIn("id=node4", "".join(info(n, "cluster").values()))
            self.assertEqual(self.cluster.peers_up(n), 2)

    def test_a_node_of_another_ca_cannot_join(self):
        before = int(info(self.cluster.nodes[0], "tls")["tls_peer_handshake_failures"])
        stranger = self.outsider("--tls-cluster", "yes", *tls_flags(self.other))
        try:
            self.assert_not_joined(stranger, before)
            self.assertIn("certificate verification failed", stranger.log_tail())
        finally:
            stranger.cleanup()

    def test_a_plain_tcp_peer_is_refused(self):
        n1 = self.cluster.nodes[0]
        before = int(info(n1, "tls")["tls_peer_handshake_failures"])
        stranger = self.outsider()
        try:
            self.assert_not_joined(stranger, before)
        finally:
            stranger.cleanup()
        # A plain Hello frame by hand: refused, nothing readable comes back.
        s = socket.create_connection(("127.0.0.1", peer_port_of(n1)), timeout=5)
        s.sendall(struct.pack(">I", 5) + b"hello")
        got = closed_by_server(s)
        s.close()
        self.assertTrue(got == b"" or got[:1] == b"\x15", got[:20])


if __name__ == "__main__":
    unittest.main()
