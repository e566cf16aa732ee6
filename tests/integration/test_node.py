"""Multi-process tests of a single itsukad node: Redis compatibility through redis-cli,
redis-benchmark and raw sockets, limits and bad input, AUTH, durability across kill -9
and SIGTERM, and configuration errors."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (ITSUKAD, Client, Closed, Node, RespError, redis_cli, wait_until)


class NodeTest(unittest.TestCase):
    """A node shared by the tests of one class."""
    node_args = ()

    @classmethod
    def setUpClass(cls):
        cls.node = Node(*cls.node_args).start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def setUp(self):
        self.c = self.node.client()

    def tearDown(self):
        self.c.close()

    def stat(self, name, section="stats"):
        info = self.c.call("INFO", section).decode()
        m = re.search(r"^%s:(\S+)" % re.escape(name), info, re.M)
        self.assertIsNotNone(m, f"{name} missing from INFO {section}")
        return m.group(1)


class RedisCompatibility(NodeTest):
    def test_ping_echo_select_quit_with_redis_cli(self):
        p = self.node.port
        self.assertEqual(redis_cli(p, "PING"), "PONG")
        self.assertEqual(redis_cli(p, "PING", "hi"), "hi")
        self.assertEqual(redis_cli(p, "ECHO", "hello world"), "hello world")
        self.assertEqual(redis_cli(p, "SELECT", "0"), "OK")
        self.assertEqual(redis_cli(p, "SELECT", "1"), "ERR DB index is out of range")
        c = self.node.client()
        self.assertEqual(c.call("QUIT"), "OK")
        self.assertEqual(c.read_until_closed(), b"")

    def test_set_get_del_exists(self):
        p = self.node.port
        self.assertEqual(redis_cli(p, "SET", "cli:a", "1"), "OK")
        self.assertEqual(redis_cli(p, "GET", "cli:a"), "1")
        self.assertEqual(redis_cli(p, "EXISTS", "cli:a", "cli:a", "cli:none"), "2")
        self.assertEqual(redis_cli(p, "DEL", "cli:a", "cli:none", "cli:a"), "1")
        self.assertEqual(redis_cli(p, "GET", "cli:a"), "")
        self.assertIsNone(self.c.call("GET", "cli:a"))
        self.assertEqual(self.c.call("EXISTS", "cli:a"), 0)

    def test_mset_mget(self):
        self.assertEqual(self.c.call("MSET", "m:1", "a", "m:2", "b", "m:1", "c"), "OK")
        self.assertEqual(self.c.call("MGET", "m:1", "m:2", "m:3"), [b"c", b"b", None])
        err = self.c.call("MSET", "m:1", "a", "m:2")
        self.assertEqual(str(err), "ERR wrong number of arguments for 'mset' command")

    def test_set_nx_xx_like_redis(self):
        self.assertIsNone(self.c.call("SET", "nx:k", "1", "XX"))
        self.assertEqual(self.c.call("SET", "nx:k", "1", "NX"), "OK")
        self.assertIsNone(self.c.call("SET", "nx:k", "2", "NX"))
        self.assertEqual(self.c.call("GET", "nx:k"), b"1")
        self.assertEqual(self.c.call("SET", "nx:k", "3", "XX"), "OK")
        self.assertEqual(self.c.call("GET", "nx:k"), b"3")
        self.assertIsInstance(self.c.call("SET", "nx:k", "3", "NX", "XX"), RespError)

    def test_expiry(self):
        self.assertEqual(self.c.call("SET", "ex:k", "v", "PX", "300"), "OK")
        self.assertEqual(self.c.call("GET", "ex:k"), b"v")
        self.assertGreater(self.c.call("PTTL", "ex:k"), 0)
        wait_until(lambda: self.c.call("GET", "ex:k") is None, timeout=5, what="expiry")
        self.assertEqual(self.c.call("EXISTS", "ex:k"), 0)
        self.assertEqual(self.c.call("TTL", "ex:k"), -2)
        self.assertEqual(self.c.call("SET", "ex:s", "v", "EX", "100"), "OK")
        self.assertIn(self.c.call("TTL", "ex:s"), (99, 100))
        self.assertEqual(self.c.call("SET", "ex:s", "w"), "OK")
        self.assertEqual(self.c.call("TTL", "ex:s"), -1)  # a plain SET clears the TTL
        for bad in (["EX", "0"], ["PX", "-5"], ["EX", "abc"], ["EX"], ["EX", "1", "PX", "1"]):
            self.assertIsInstance(self.c.call("SET", "ex:k", "v", *bad), RespError, bad)
        self.assertEqual(str(self.c.call("SET", "ex:k", "v", "EX", "0")),
                         "ERR invalid expire time in 'set' command")

    def test_binary_safe_keys_and_values(self):
        key, value = b"bin\x00\r\nkey", b"\x00\xff\r\n$3\r\n*1\r\n"
        self.assertEqual(self.c.call("SET", key, value), "OK")
        self.assertEqual(self.c.call("GET", key), value)
        self.assertEqual(self.c.call("MGET", key), [value])

    def test_unknown_command_and_wrong_arity(self):
        self.assertEqual(str(self.c.call("NOSUCH", "a", "b")),
                         "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
        self.assertEqual(str(self.c.call("GET")),
                         "ERR wrong number of arguments for 'get' command")
        self.assertEqual(str(self.c.call("SET", "k")),
                         "ERR wrong number of arguments for 'set' command")
        self.assertEqual(self.c.call("PING"), "PONG")  # the connection stays usable

    def test_info_sections(self):
        info = self.c.call("INFO").decode()
        for section in ("# Server", "# Clients", "# Stats", "# Keyspace", "# Persistence"):
            self.assertIn(section, info)
        self.assertIn("connected_clients:", info)
        only = self.c.call("INFO", "clients").decode()
        self.assertTrue(only.startswith("# Clients"))
        self.assertNotIn("# Server", only)
        self.assertEqual(redis_cli(self.node.port, "INFO", "server").splitlines()[0], "# Server")

    def test_command_hello_config_client(self):
        n = self.c.call("COMMAND", "COUNT")
        self.assertIsInstance(n, int)
        table = self.c.call("COMMAND")
        self.assertEqual(len(table), n)
        names = {entry[0] for entry in table}
        self.assertTrue({b"get", b"set", b"del", b"mget", b"mset", b"vget"} <= names)
        self.assertEqual(self.c.call("COMMAND", "INFO", "get")[0][1], -2)
        # COMMAND DOCS: a map of every command to its summary, since and group.
        docs = self.c.call("COMMAND", "DOCS")
        self.assertEqual({d for d in docs[0::2]}, names)
        self.assertTrue(all(entry[0] == b"summary" for entry in docs[1::2]))
        hello = self.c.call("HELLO", "2")
        fields = dict(zip(hello[::2], hello[1::2]))
        self.assertEqual(fields[b"server"], b"itsuka")
        self.assertEqual(fields[b"proto"], 2)
        self.assertTrue(str(self.c.call("HELLO", "3")).startswith("NOPROTO"))
        self.assertEqual(self.c.call("CONFIG", "GET", "save"), [b"save", b""])
        self.assertEqual(self.c.call("CONFIG", "GET", "server.port"),
                         [b"server.port", str(self.node.port).encode()])
        self.assertEqual(self.c.call("CLIENT", "SETNAME", "tester"), "OK")
        self.assertEqual(self.c.call("CLIENT", "GETNAME"), b"tester")
        self.assertRegex(redis_cli(self.node.port, "COMMAND", "COUNT"), r"^[1-9][0-9]*$")
        # redis-cli reading commands from a pipe (no terminal) just runs them.
        r = subprocess.run(["redis-cli", "-p", str(self.node.port)], input=b"PING\nSET i 1\nGET i\n",
                           capture_output=True, timeout=30)
        self.assertEqual(r.stdout.decode().split(), ["PONG", "OK", "1"])

    def test_redis_cli_interactive_session(self):
        """redis-cli on a terminal (here a pseudo-terminal) starts without complaint: at
        startup it asks the server for COMMAND DOCS to build its hints."""
        import fcntl
        import pty
        import select
        import struct
        import termios
        master, slave = pty.openpty()
        # A window size, or redis-cli's line editor asks the terminal for it and waits.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        proc = subprocess.Popen(["redis-cli", "-p", str(self.node.port)], stdin=slave, stdout=slave,
                                stderr=slave, env=dict(os.environ, TERM="xterm"),
                                start_new_session=True)
        os.close(slave)
        out = b""

        def read_until(token, timeout=10.0):
            """Reads until `token` appears; returns the output that came before it."""
            nonlocal out
            deadline = time.monotonic() + timeout
            while token not in out:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([master], [], [], left)[0]:
                    self.fail(f"redis-cli did not print {token!r}; terminal so far: {out!r}")
                try:
                    out += os.read(master, 4096)
                except OSError:  # EIO: redis-cli exited
                    self.fail(f"redis-cli exited before printing {token!r}; terminal: {out!r}")
            before, out = out.split(token, 1)
            return before

        def command(line):
            """Types a line at the prompt; returns what redis-cli printed up to its next prompt."""
            os.write(master, line + b"\r")
            read_until(b"\r\n")  # the echo of the line, ending when Enter was processed
            return read_until(prompt).strip()

        try:
            prompt = f"127.0.0.1:{self.node.port}> ".encode()
            startup = read_until(prompt)  # typing before the prompt would be discarded
            self.assertEqual(startup, b"")
            self.assertEqual(command(b"SET interactive:k hello"), b"OK")
            self.assertEqual(command(b"GET interactive:k"), b'"hello"')
            self.assertEqual(command(b"EXISTS interactive:k nosuchkey"), b"(integer) 1")
            os.write(master, b"quit\r")
            self.assertEqual(proc.wait(timeout=10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)

    def test_inline_commands(self):
        self.c.send_raw(b"SET inline:k \"a b\\x41\"\r\nGET inline:k\r\n")
        self.assertEqual(self.c.read(), "OK")
        self.assertEqual(self.c.read(), b"a bA")

    def test_pipelining(self):
        n = 2000
        self.c.send_raw(b"".join(Client.encode("SET", f"pipe:{i}", f"v{i}") for i in range(n)) +
                        b"".join(Client.encode("GET", f"pipe:{i}") for i in range(n)))
        self.assertEqual([self.c.read() for _ in range(n)], ["OK"] * n)
        self.assertEqual([self.c.read() for _ in range(n)], [f"v{i}".encode() for i in range(n)])

    def test_siblings_and_context(self):
        ctx, values = self.c.call("VGET", "sib:k")
        self.assertEqual(values, [])
        # Two writes from the same (empty) context are concurrent: both are kept.
        self.assertEqual(self.c.call("SET", "sib:k", "a", "CTX", ctx), "OK")
        self.assertEqual(self.c.call("SET", "sib:k", "b", "CTX", ctx), "OK")
        self.assertEqual(sorted(self.c.call("GET", "sib:k")), [b"a", b"b"])
        ctx2, values = self.c.call("VGET", "sib:k")
        self.assertEqual(sorted(values), [b"a", b"b"])
        self.assertTrue(re.fullmatch(rb"[A-Za-z0-9_-]+", ctx2))
        # A write with the context that saw both resolves them.
        self.assertEqual(self.c.call("SET", "sib:k", "ab", "CTX", ctx2), "OK")
        self.assertEqual(self.c.call("GET", "sib:k"), b"ab")
        self.assertEqual(str(self.c.call("SET", "sib:k", "x", "CTX", "!!")),
                         "ERR invalid CTX token (use the one VGET returned)")

    def test_redis_benchmark_without_errors(self):
        for extra in ([], ["-P", "16"]):
            r = subprocess.run(["redis-benchmark", "-p", str(self.node.port), "-t", "set,get,mset",
                                "-n", "20000", "-c", "20", "-d", "100", "-r", "1000", "--csv"]
                               + extra, capture_output=True, timeout=120)
            out = r.stdout.decode() + r.stderr.decode()
            self.assertEqual(r.returncode, 0, out)
            self.assertNotRegex(out.lower(), r"error|warning", out)
            rows = [line for line in out.splitlines() if line.startswith('"')]
            tests = {row.split(",")[0].strip('"') for row in rows[1:]}
            self.assertTrue({"SET", "GET", "MSET (10 keys)"} <= tests, out)
        # -r 1000: the keys are key:000000000000 .. key:000000000999. 40,000 SETs and
        # 400,000 MSET keys drawn from 1000 cover every one (a miss has odds ~e^-400),
        # each holding a 100-byte (-d 100) value.
        keys = [f"key:{i:012d}" for i in range(1000)]
        self.assertEqual(self.c.call("EXISTS", *keys), 1000)
        self.assertEqual(self.c.call("EXISTS", "key:000000001000"), 0)
        values = self.c.call("MGET", *keys)
        self.assertEqual({len(v) for v in values}, {100})


class BadInput(NodeTest):
    node_args = ("--set", "limits.max_args=8", "--set", "limits.max_bulk_bytes=65536",
                 "--set", "limits.max_query_buffer_bytes=262144",
                 "--set", "limits.max_output_buffer_bytes=1048576")

    def setUp(self):
        super().setUp()
        self.assertEqual(self.c.call("SET", "good", "yes"), "OK")

    def tearDown(self):
        # The well-behaved client was never disturbed.
        self.assertEqual(self.c.call("GET", "good"), b"yes")
        super().tearDown()

    def assertRejected(self, data, reply):
        bad = self.node.client()
        bad.send_raw(data)
        got = bad.read_until_closed()
        bad.close()
        if reply is None:
            return got
        self.assertEqual(got, b"-ERR Protocol error: " + reply + b"\r\n")
        self.assertEqual(self.c.call("PING"), "PONG")

    def test_garbage_gets_error_and_close(self):
        cases = [
            (b"*-5\r\n", b"invalid multibulk length"),
            (b"*abc\r\n", b"invalid multibulk length"),
            (b"*9\r\n", b"invalid multibulk length"),  # over limits.max_args
            (b"*1\r\n$99999999999\r\n", b"invalid bulk length"),
            (b"*1\r\n$65537\r\n", b"invalid bulk length"),  # over limits.max_bulk_bytes
            (b"*1\r\n$abc\r\n", b"invalid bulk length"),
            (b"*1\r\n:1\r\n", b"expected '$', got ':'"),
            (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", b"HTTP requests are not accepted on this port"),
            (b"POST /api HTTP/1.1\r\n", b"HTTP requests are not accepted on this port"),
            (b"x" * 70000, b"too big inline request"),
            (b"SET \"unbalanced\r\n", b"unbalanced quotes in request"),
        ]
        for data, reply in cases:
            with self.subTest(data=data[:40]):
                self.assertRejected(data, reply)
        self.assertGreaterEqual(int(self.stat("protocol_errors")), len(cases))

    def test_replies_before_the_error_are_delivered(self):
        got = self.assertRejected(b"PING\r\n*1\r\n$x\r\n", None)
        self.assertEqual(got, b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n")

    def test_query_buffer_limit(self):
        # 8 arguments of 60,000 bytes: each bulk is allowed, the 480 kB request is not.
        big = b"".join(b"$60000\r\n" + b"x" * 60000 + b"\r\n" for _ in range(7))
        bad = self.node.client()
        try:
            bad.send_raw(b"*8\r\n" + big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = bad.read_until_closed()
        self.assertIn(b"query buffer limit exceeded", got)
        bad.close()

    def test_partial_request_does_not_block_others(self):
        stalled = self.node.client()
        stalled.send_raw(b"*2\r\n$3\r\nGET\r\n$10\r\nabc")
        for _ in range(20):
            self.assertEqual(self.c.call("PING"), "PONG")
        stalled.send_raw(b"defghij\r\n")
        self.assertIsNone(stalled.read())
        stalled.close()

    def test_output_buffer_limit_disconnects_a_client_that_does_not_read(self):
        self.assertEqual(self.c.call("SET", "big", "z" * 60000), "OK")
        before = int(self.stat("output_buffer_disconnects"))
        slow = self.node.client()
        slow.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
        request = Client.encode("GET", "big") * 500  # 30 MB of replies
        try:
            slow.send_raw(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        wait_until(lambda: int(self.stat("output_buffer_disconnects")) > before, timeout=10,
                   what="the slow client to be disconnected")
        slow.close()


class IdleAndAdmin(unittest.TestCase):
    def test_idle_clients_are_closed(self):
        node = Node("--set", "server.idle_timeout_s=1").start()
        try:
            c = node.client()
            self.assertEqual(c.call("PING"), "PONG")
            self.assertEqual(c.read_until_closed(timeout=10), b"")  # closed by the server
            self.assertEqual(node.client().call("PING"), "PONG")
        finally:
            node.cleanup()

    def test_itsuka_admin_status(self):
        import json
        admin = os.path.join(os.path.dirname(ITSUKAD), "itsuka-admin")
        node = Node("--requirepass", "pw").start()
        try:
            # `info` is one node's INFO by section (what `status` printed before it
            # became the cluster view, tests/integration/test_admin_ops.py).
            r = subprocess.run([admin, "--host", f"127.0.0.1:{node.port}", "--password", "pw",
                                "--json", "info"], capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            status = json.loads(r.stdout)
            self.assertEqual(status["Server"]["node_id"], "node1")
            # Numbers are JSON numbers, names stay strings.
            self.assertEqual(status["Server"]["tcp_port"], node.port)
            # `status` of a node without a cluster: itself, up, owning everything.
            r = subprocess.run([admin, "--host", f"127.0.0.1:{node.port}", "--password", "pw",
                                "--json", "status"], capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            nodes = json.loads(r.stdout)["nodes"]
            self.assertEqual([(n["id"], n["state"]) for n in nodes], [("node1", "up")])
            self.assertEqual(nodes[0]["ownership_pct"], 100.0)
            for cmd in ("info", "status"):
                r = subprocess.run([admin, "--host", f"127.0.0.1:{node.port}", cmd],
                                   capture_output=True, timeout=30)
                self.assertNotEqual(r.returncode, 0)  # no password: NOAUTH, reported
                self.assertIn(b"NOAUTH", r.stderr)
                r = subprocess.run([admin, "--host", "127.0.0.1:1", cmd], capture_output=True, timeout=30)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(b"cannot connect", r.stderr)
        finally:
            node.cleanup()


class MaxClients(unittest.TestCase):
    def test_connections_over_the_limit_are_refused_with_an_error(self):
        node = Node("--set", "server.max_clients=4").start()
        try:
            first = node.client()
            # The readiness probe's connection may not be reaped yet: wait until only
            # this client is counted.
            wait_until(lambda: b"connected_clients:1\r\n" in first.call("INFO", "clients"),
                       what="the probe connection to close")
            clients = [first] + [node.client() for _ in range(3)]
            for c in clients:
                self.assertEqual(c.call("PING"), "PONG")
            extra = node.client()
            self.assertEqual(extra.read_until_closed(), b"-ERR max number of clients reached\r\n")
            clients.pop().close()
            def slot_free():
                try:
                    c = node.client()
                    ok = c.call("PING") == "PONG"
                    clients.append(c)
                    return ok
                except (Closed, OSError):
                    return False
            wait_until(slot_free, timeout=5, what="a free client slot")
            for c in clients:
                c.close()
        finally:
            node.cleanup()


class Auth(NodeTest):
    node_args = ("--requirepass", "secret")

    def test_commands_need_auth(self):
        self.assertEqual(str(self.c.call("GET", "k")), "NOAUTH Authentication required.")
        self.assertEqual(str(self.c.call("PING")), "NOAUTH Authentication required.")
        self.assertEqual(str(self.c.call("AUTH", "wrong")),
                         "WRONGPASS invalid username-password pair or user is disabled.")
        self.assertEqual(self.c.call("AUTH", "secret"), "OK")
        self.assertEqual(self.c.call("SET", "k", "v"), "OK")
        self.assertEqual(redis_cli(self.node.port, "GET", "k", password="secret"), "v")
        self.assertEqual(self.c.call("AUTH", "default", "secret"), "OK")

    def test_hello_with_auth(self):
        self.assertTrue(str(self.c.call("HELLO", "2")).startswith("NOAUTH"))
        hello = self.c.call("HELLO", "2", "AUTH", "default", "secret")
        self.assertIn(b"itsuka", hello)
        self.assertEqual(self.c.call("PING"), "PONG")

    def test_stricter_bounds_before_auth(self):
        for data, reply in [(Client.encode(*(["PING"] * 11)), b"invalid multibulk length"),
                            (b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", b"invalid bulk length")]:
            bad = self.node.client()
            bad.send_raw(data)
            self.assertEqual(bad.read_until_closed(), b"-ERR Protocol error: " + reply + b"\r\n")
            bad.close()
        # After AUTH the normal bounds apply.
        self.assertEqual(self.c.call("AUTH", "secret"), "OK")
        self.assertEqual(self.c.call("SET", "large", "x" * 100000), "OK")


class Durability(unittest.TestCase):
    def writer(self, port, acked, stop, prefix):
        """Pipelines SETs in batches, recording each key whose +OK arrived."""
        try:
            c = Client(port, timeout=5)
            i = 0
            while not stop.is_set() and i < 200000:
                batch = [f"{prefix}{j}" for j in range(i, i + 50)]
                c.send_raw(b"".join(Client.encode("SET", k, "value-" + k) for k in batch))
                for k in batch:
                    if c.read() == "OK":
                        acked.append(k)
                i += 50
        except (Closed, OSError):
            pass  # the node was killed mid-batch

    def kill_and_check(self, *args, target=3000):
        node = Node(*args).start()
        try:
            acked, stop = [], threading.Event()
            t = threading.Thread(target=self.writer, args=(node.port, acked, stop, "dur:"))
            t.start()
            wait_until(lambda: len(acked) >= target, timeout=60, what=f"{target} acked writes")
            node.kill9()
            stop.set()
            t.join(timeout=30)
            self.assertFalse(t.is_alive())
            node.start()
            c = node.client()
            missing = []
            for i in range(0, len(acked), 500):
                chunk = acked[i:i + 500]
                values = c.call("MGET", *chunk)
                missing += [k for k, v in zip(chunk, values) if v != ("value-" + k).encode()]
            self.assertEqual(missing, [], f"{len(missing)} of {len(acked)} acknowledged writes lost")
            c.close()
            return len(acked)
        finally:
            node.cleanup()

    def test_kill9_keeps_every_acknowledged_write(self):
        self.assertGreaterEqual(self.kill_and_check(target=5000), 5000)

    def test_kill9_in_fsync_mode(self):
        self.assertGreaterEqual(
            self.kill_and_check("--set", "storage.durability=fsync", target=1000), 1000)

    def test_sigterm_exits_cleanly_and_keeps_data(self):
        node = Node().start()
        try:
            c = node.client()
            for i in range(100):
                self.assertEqual(c.call("SET", f"t:{i}", str(i)), "OK")
            # A request in flight when SIGTERM arrives still gets its reply.
            c.send_raw(Client.encode("SET", "t:last", "x"))
            self.assertEqual(node.terminate(), 0)
            self.assertEqual(c.read(), "OK")
            node.start()
            c = node.client()
            self.assertEqual(c.call("MGET", "t:0", "t:99", "t:last"), [b"0", b"99", b"x"])
            c.close()
        finally:
            node.cleanup()

    def test_data_dir_keeps_its_node_identity(self):
        node = Node().start()
        try:
            node.stop()
            r = subprocess.run([ITSUKAD, "--data-dir", node.data_dir, "--node-id", "other",
                                "--port", "0"], capture_output=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"belongs to node 'node1'", r.stderr)
        finally:
            node.cleanup()


class ConfigErrors(unittest.TestCase):
    # A bad configuration must stop startup at once: well before this bound (a node that
    # started serving instead would be killed when it runs out).
    BOUND_S = 10

    def run_itsukad(self, *argv):
        start = time.monotonic()
        r = subprocess.run([ITSUKAD, *argv], capture_output=True, timeout=self.BOUND_S)
        self.assertLess(time.monotonic() - start, self.BOUND_S)
        return r

    def run_with_config(self, text, *extra):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(text)
        try:
            return self.run_itsukad("--config", f.name, *extra), f.name
        finally:
            os.unlink(f.name)

    def test_bad_settings_stop_startup_naming_the_setting(self):
        for text, name in [("[server]\nport = \"abc\"\n", b"server.port"),
                           ("[server]\nport = 70000\n", b"server.port"),
                           ("[server]\nbogus = 1\n", b"server.bogus"),
                           ("[storage]\ndurability = \"maybe\"\n", b"storage.durability")]:
            with self.subTest(config=text):
                r, _ = self.run_with_config(text)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(name, r.stderr)

    def test_toml_syntax_error_names_the_file(self):
        r, path = self.run_with_config("[server\nport = 1\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(path.encode(), r.stderr)

    def test_bad_flags_name_the_setting(self):
        for argv, name in [(["--port", "99999"], b"server.port"),
                           (["--port", "abc"], b"server.port"),
                           (["--set", "limits.max_args=abc"], b"limits.max_args"),
                           (["--set", "nosuch.key=1"], b"nosuch.key")]:
            with self.subTest(argv=argv):
                r = self.run_itsukad(*argv)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(name, r.stderr)

    def test_missing_file_and_bad_flags(self):
        r = self.run_itsukad("--config", "/nonexistent.toml")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"/nonexistent.toml", r.stderr)
        r = self.run_itsukad("--bogus")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"unknown option '--bogus'", r.stderr)

    def test_check_config_accepts_the_shipped_file(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        r = subprocess.run([ITSUKAD, "--config", os.path.join(root, "conf", "itsuka.toml"),
                            "--check-config"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_port_in_use_is_a_clear_error(self):
        node = Node().start()
        other = tempfile.mkdtemp(prefix="itsuka-it-")
        try:
            r = self.run_itsukad("--data-dir", other + "/d", "--port", str(node.port))
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"server.bind/server.port", r.stderr)
        finally:
            node.cleanup()
            shutil.rmtree(other, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
