"""One client must not exhaust a node's memory (issue 11, section 2). Each attack runs
against its own node; the node's peak RSS (VmHWM) is checked against a stated ceiling,
another client's PING must answer within a bound during the attack, the attacker gets
a clear error (or is slowed/closed), and the node serves afterwards.

Before the fix (same attacks): MGET of a 1 MB key x600 peaked at 1.6 GB, x2000 at 4 GB
(and stalled PING 9 s); 20k pipelined GETs of 1 MB without reading 1.1 GB; 20 clients
with most of a 1,048,576-argument command 660 MB. The ceiling attacks (F3-F5 of the red
team) are the last classes; their before/after figures are in README `### Memory limits`."""
import re
import socket
import threading
import time
import unittest

from harness import Client, Closed, Node, RespError, wait_until

MB = 1 << 20
SAFETY_CAP = 3 << 30  # a node we started that grows past this is killed (test fails)
# Under AddressSanitizer freed memory sits in a quarantine (256 MB by default) before it
# is reused, so RSS runs that much higher (with shadow memory): the ceilings get this
# allowance there (320 MB was not enough once: a CI run peaked 9 MB over it).
ASAN_ALLOWANCE = 400 * MB


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def proc_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} missing")


class Watch:
    """During an attack: pings the node from another client and records the slowest
    answer; kills the node if its RSS passes SAFETY_CAP."""

    def __init__(self, node, password=None):
        self.node = node
        self.password = password
        self.stop = threading.Event()
        self.worst_ping = 0.0
        self.ping_errors = []
        self.killed = False
        self.threads = [threading.Thread(target=self._ping, daemon=True),
                        threading.Thread(target=self._guard, daemon=True)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def _ping(self):
        c = Client(self.node.port, timeout=30)
        if self.password is not None:
            c.call("AUTH", self.password)
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                r = c.call("PING")
            except (OSError, Closed) as e:
                self.ping_errors.append(repr(e))
                return
            if r != "PONG":
                self.ping_errors.append(repr(r))
            self.worst_ping = max(self.worst_ping, time.monotonic() - t)
            time.sleep(0.02)
        c.close()

    def _guard(self):
        while not self.stop.is_set():
            try:
                if proc_kb(self.node.pid, "VmRSS") > SAFETY_CAP:
                    self.killed = True
                    self.node.kill9()
                    return
            except (OSError, AssertionError):
                return
            time.sleep(0.01)


class LimitTest(unittest.TestCase):
    node_args = ()

    def setUp(self):
        self.node = Node(*self.node_args).start()
        self.c = self.node.client()

    def tearDown(self):
        self.c.close()
        self.node.cleanup()

    def info(self, name, section="stats"):
        text = self.c.call("INFO", section).decode()
        m = re.search(r"^%s:(\S+)" % re.escape(name), text, re.M)
        self.assertIsNotNone(m, f"{name} missing from INFO {section}")
        return int(m.group(1))

    def assertBounded(self, watch, ceiling, ping_bound=1.0):
        self.assertFalse(watch.killed, "node passed the safety cap and was killed")
        peak = proc_kb(self.node.pid, "VmHWM")
        if sanitized(self.node.pid):
            ceiling += ASAN_ALLOWANCE
        self.assertLess(peak, ceiling, f"peak RSS {peak >> 20} MB over {ceiling >> 20} MB")
        self.assertEqual(watch.ping_errors, [])
        if sanitized(self.node.pid):
            ping_bound *= 3  # ASan runs the node several times slower (seen: 1.16 s in CI)
        self.assertLess(watch.worst_ping, ping_bound, "another client's PING was stalled")
        return peak

    def assertServes(self):
        c = self.node.client()
        self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(c.call("SET", "after", "ok"), "OK")
        self.assertEqual(c.call("GET", "after"), b"ok")
        c.close()


class LargeReplies(LimitTest):
    """Default limits: limits.max_output_buffer_bytes = 256 MB bounds one reply."""

    def mget_attack(self, repeats):
        self.assertEqual(self.c.call("SET", "big", b"x" * MB), "OK")
        with Watch(self.node) as w:
            a = Client(self.node.port, timeout=30)
            a.send_raw(Client.encode("MGET", *(["big"] * repeats)))
            reply = a.read()
            a.close()
        self.assertIsInstance(reply, RespError)
        self.assertIn("limits.max_output_buffer_bytes", str(reply))
        self.assertBounded(w, 400 * MB)
        self.assertGreaterEqual(self.info("reply_limit_refusals"), 1)
        self.assertServes()
        # A smaller MGET of the same key still works.
        self.assertEqual(self.c.call("MGET", *(["big"] * 20)), [b"x" * MB] * 20)

    def test_mget_of_a_1mb_key_600_times(self):
        self.mget_attack(600)

    def test_mget_of_a_1mb_key_2000_times(self):
        self.mget_attack(2000)


class SlowReader(LimitTest):
    def test_pipelined_gets_of_a_1mb_value_without_reading(self):
        self.assertEqual(self.c.call("SET", "big", b"y" * MB), "OK")
        a = Client(self.node.port, timeout=2)
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        batch = Client.encode("GET", "big") * 1000
        sent = 0
        with Watch(self.node) as w:
            deadline = time.monotonic() + 15
            try:
                while sent < 20000 and time.monotonic() < deadline:
                    a.send_raw(batch)
                    sent += 1000
            except socket.timeout:
                pass  # the node stopped reading us: that is the backpressure
            wait_until(lambda: self.info("deferred_commands") >= 1, timeout=10,
                       what="the slow reader's commands to be deferred")
            time.sleep(1)  # a second for memory to grow if it were going to
        self.assertBounded(w, 150 * MB)
        self.assertLess(self.info("mem_clients_normal", "memory"), 32 * MB)
        # A slow reader is slowed, not dropped: its replies arrive when it reads.
        a.sock.settimeout(30)
        for _ in range(5):
            self.assertEqual(a.read(), b"y" * MB)
        a.close()
        self.assertEqual(self.info("output_buffer_disconnects"), 0)
        self.assertServes()


    def test_large_reads_after_many_small_ones_are_charged_at_once(self):
        # Small values first teach the node to expect small results; then 64 pipelined
        # GETs of a 16 MB value, never read. Each local read is charged what it read, so
        # the next one waits: not 64 x 16 MB at once.
        self.assertEqual(self.c.call("SET", "small", "s"), "OK")
        self.assertEqual(self.c.call("SET", "huge", b"h" * (16 * MB)), "OK")
        a = Client(self.node.port, timeout=2)
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        with Watch(self.node) as w:
            a.send_raw(Client.encode("GET", "small") * 500)
            for _ in range(500):
                self.assertEqual(a.read(), b"s")
            a.send_raw(Client.encode("GET", "huge") * 64)
            wait_until(lambda: self.info("deferred_commands") >= 1, timeout=10,
                       what="the reader's commands to be deferred")
            time.sleep(1)
        self.assertBounded(w, 200 * MB)
        a.close()
        self.assertServes()


class ManyHugeCommands(LimitTest):
    node_args = ("--set", "server.max_memory_bytes=134217728")

    def test_20_clients_each_sending_most_of_a_1m_argument_command(self):
        body = b"*1048576\r\n" + b"$1\r\na\r\n" * 1000000
        outcomes = []

        def attack():
            s = socket.create_connection(("127.0.0.1", self.node.port), timeout=20)
            try:
                s.sendall(body)
            except OSError:
                pass
            got = b""
            try:
                s.settimeout(10)
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    got += d
            except OSError:
                pass
            outcomes.append(got)
            s.close()

        with Watch(self.node) as w:
            threads = [threading.Thread(target=attack) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
        self.assertEqual(len(outcomes), 20)
        for got in outcomes:
            # Each attacker was told why it was closed.
            self.assertTrue(b"query buffer limit exceeded" in got or b"-OOM" in got, got[:200])
        self.assertBounded(w, 300 * MB)
        self.assertGreaterEqual(self.info("clients_closed_for_limits"), 20)
        self.assertServes()


class MemoryCeiling(LimitTest):
    def test_oom_on_set_while_ping_and_info_answer(self):
        # A 12 MiB value is written with no ceiling (under a 4 MiB one the SET's own
        # partial input would be evicted), then the node restarts with the ceiling.
        self.assertEqual(self.c.call("SET", "big", b"z" * (12 * MB)), "OK")
        self.c.close()
        self.node.stop()
        self.node.extra += ["--set", "server.max_memory_bytes=4194304"]
        self.node.start()
        self.c = self.node.client()
        # A reader that does not read holds the 12 MiB reply (started while under the
        # ceiling; the GETs after it are refused): over the 4 MiB ceiling.
        a = Client(self.node.port, timeout=2)
        a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            a.send_raw(Client.encode("GET", "big") * 2000)
        except socket.timeout:
            pass
        wait_until(lambda: self.info("over_max_memory", "memory") == 1, timeout=10,
                   what="the node to pass server.max_memory_bytes")
        r = self.c.call("SET", "k", "v")
        self.assertIsInstance(r, RespError)
        self.assertEqual(str(r), "OOM command not allowed when used memory > 'server.max_memory_bytes'.")
        self.assertIsInstance(self.c.call("GET", "k"), RespError)
        self.assertEqual(self.c.call("PING"), "PONG")
        self.assertEqual(self.c.call("CONFIG", "GET", "server.max_memory_bytes"),
                         [b"server.max_memory_bytes", b"4194304"])
        self.assertGreaterEqual(self.info("oom_refusals"), 2)
        self.assertEqual(self.info("maxmemory", "memory"), 4194304)
        self.assertIsInstance(self.c.call("ITSUKA.MEMBERS"), (bytes, list))
        a.close()
        # Memory is given back when the client goes: writes are accepted again.
        wait_until(lambda: self.info("over_max_memory", "memory") == 0, timeout=10,
                   what="memory to be released")
        self.assertEqual(self.c.call("SET", "k", "v"), "OK")


class UnauthenticatedClients(LimitTest):
    node_args = ("--requirepass", "secret", "--set", "limits.unauth_idle_timeout_s=1")

    def test_unauthenticated_idle_connections_are_closed(self):
        authed = self.node.client()
        self.assertEqual(authed.call("AUTH", "secret"), "OK")
        stranger = self.node.client()
        self.assertEqual(str(stranger.call("GET", "k")), "NOAUTH Authentication required.")
        t = time.monotonic()
        self.assertEqual(stranger.read_until_closed(timeout=10), b"")
        self.assertLess(time.monotonic() - t, 5)
        # An authenticated connection idle as long is kept (server.idle_timeout_s = 0).
        self.assertEqual(authed.call("PING"), "PONG")
        self.assertGreaterEqual(int(re.search(rb"unauth_idle_disconnects:(\d+)",
                                              authed.call("INFO", "stats")).group(1)), 1)
        authed.close()



class AuthRateLimit(LimitTest):
    node_args = ("--requirepass", "secret", "--set", "limits.auth_max_failures=5",
                 "--set", "limits.auth_failure_window_s=30",
                 "--set", "limits.auth_failure_delay_ms=300")

    def test_auth_failures_are_delayed_then_refused(self):
        authed = self.node.client()
        self.assertEqual(authed.call("AUTH", "secret"), "OK")
        bad = self.node.client()
        times = []
        for _ in range(4):
            t = time.monotonic()
            bad.send_raw(Client.encode("AUTH", "guess"))
            # While the failed AUTH's reply is held, the node serves others.
            t_ping = time.monotonic()
            self.assertEqual(authed.call("PING"), "PONG")
            ping = time.monotonic() - t_ping
            self.assertTrue(str(bad.read()).startswith("WRONGPASS"))
            times.append(time.monotonic() - t)
            self.assertLess(ping, times[-1])
        self.assertGreaterEqual(times[0], 0.25)  # 1st failure: 300 ms
        self.assertGreaterEqual(times[3], 1.1)   # 4th failure: 1.2 s
        self.assertTrue(str(bad.call("AUTH", "guess")).startswith("WRONGPASS"))  # 5th: blocks
        # The address is refused for a while, even with the right password.
        other = Client(self.node.port)
        r = other.call("AUTH", "secret")
        self.assertIsInstance(r, RespError)
        self.assertIn("too many failed AUTH attempts", str(r))
        r = other.call("HELLO", "2", "AUTH", "default", "secret")
        self.assertIn("too many failed AUTH attempts", str(r))
        info = authed.call("INFO", "stats")
        self.assertGreaterEqual(int(re.search(rb"auth_failures:(\d+)", info).group(1)), 5)
        self.assertGreaterEqual(int(re.search(rb"auth_rate_limited:(\d+)", info).group(1)), 2)
        # Connections already authenticated are not affected.
        self.assertEqual(authed.call("SET", "k", "v"), "OK")
        for c in (authed, bad, other):
            c.close()


def partial_holders(port, n, payload, auth=None):
    """Opens n raw connections, each (after AUTH if given) sending `payload` (a command
    that never completes). Returns the sockets."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if auth is not None:
            s.sendall(Client.encode("AUTH", auth))
            assert s.recv(64).startswith(b"+OK")
        try:
            s.sendall(payload)
        except OSError:
            pass  # already evicted and closed
        socks.append(s)
    return socks


class PartialInputAtCeiling(LimitTest):
    """F3: clients holding partial input below the old 1 MiB eviction threshold were
    never evicted (9000 unauthenticated ones held 2.34 GB RSS, accounted peak 1.475 GB,
    0 evictions). Now, over server.max_memory_bytes, the largest holders are closed
    (strangers first) until the node is back under it."""
    CEILING = 32 * MB
    node_args = ("--requirepass", "secret", "--set", f"server.max_memory_bytes={32 * MB}")

    def setUp(self):
        super().setUp()
        self.assertEqual(self.c.call("AUTH", "secret"), "OK")

    def check_bounded(self, socks, w, held_each):
        # Without eviction these would account n * held_each (> 3x the ceiling).
        self.assertGreater(len(socks) * held_each, 3 * self.CEILING)
        wait_until(lambda: self.info("mem_clients_normal", "memory") <= self.CEILING, timeout=10,
                   what="mem_clients_normal to be back under the ceiling")
        self.assertGreaterEqual(self.info("memory_evictions"), 1)
        self.assertLess(self.info("mem_clients_normal_peak", "memory"), 2 * self.CEILING + 8 * MB)
        self.assertBounded(w, 200 * MB)
        # An evicted client was told why.
        told = 0
        for s in socks:
            s.settimeout(0.2)
            try:
                if b"-OOM" in s.recv(256):
                    told += 1
            except OSError:
                pass
            s.close()
        self.assertGreaterEqual(told, 1)
        self.assertServes_auth()

    def assertServes_auth(self):
        c = self.node.client()
        self.assertEqual(c.call("AUTH", "secret"), "OK")
        self.assertEqual(c.call("SET", "after", "ok"), "OK")
        self.assertEqual(c.call("GET", "after"), b"ok")
        c.close()

    def test_unauthenticated_partial_commands_are_evicted(self):
        # 10 x 16 KiB arguments, the last one unfinished: ~160 KiB each, under the
        # unauthenticated command bounds.
        chunk = b"x" * 16384
        payload = b"*10\r\n" + (b"$16384\r\n" + chunk + b"\r\n") * 9 + b"$16384\r\n" + chunk[:-10]
        with Watch(self.node, "secret") as w:
            socks = partial_holders(self.node.port, 800, payload)
        self.check_bounded(socks, w, 150 * 1024)

    def test_authenticated_unfinished_sets_are_evicted(self):
        value = b"v" * (900 * 1024)
        payload = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (len(value) + 1000) + value
        with Watch(self.node, "secret") as w:
            socks = partial_holders(self.node.port, 120, payload, auth="secret")
        self.check_bounded(socks, w, 900 * 1024)


class RepliesAtCeiling(LimitTest):
    """F4: clients pipelining large MGETs and never reading each built its first reply
    whatever the node held (20 x 50 MGETs of 8 x 16 MiB: 3.99 GB RSS, accounted peak
    3.32 GB, 0 refusals). Now no request starts while the node is over
    server.max_memory_bytes: the reply becomes -OOM."""
    CEILING = 64 * MB
    node_args = ("--set", f"server.max_memory_bytes={64 * MB}")

    def test_pipelined_large_mgets_without_reading(self):
        for i in range(8):
            self.assertEqual(self.c.call("SET", f"v{i}", b"m" * (4 * MB)), "OK")
        cmd = Client.encode("MGET", *[f"v{i}" for i in range(8)]) * 20  # 32 MiB replies
        readers = []
        with Watch(self.node) as w:
            for _ in range(12):
                a = Client(self.node.port, timeout=2)
                a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                try:
                    a.send_raw(cmd)
                except socket.timeout:
                    pass
                readers.append(a)
            wait_until(lambda: self.info("oom_refusals") >= 1, timeout=20,
                       what="an MGET to be refused at the ceiling")
            time.sleep(1)  # a second for memory to grow if it were going to
        # Before: 12 x 32 MiB replies built (> 384 MiB accounted).
        peak = self.info("mem_clients_normal_peak", "memory")
        self.assertLess(peak, self.CEILING + 12 * 8 * MB + 16 * MB, f"mem_clients_normal_peak {peak >> 20} MB")
        self.assertBounded(w, 400 * MB)
        for a in readers:
            a.close()
        wait_until(lambda: self.info("over_max_memory", "memory") == 0, timeout=10,
                   what="memory to be released")
        self.assertServes()
        self.assertEqual(self.c.call("MGET", "v0", "v1"), [b"m" * (4 * MB)] * 2)


class UnauthenticatedSlots(LimitTest):
    """F5: unauthenticated connections filled every server.max_clients slot (10,050
    idle connections in 4.4 s; real clients got -ERR max number of clients reached).
    Now at most limits.max_unauth_clients (and half of max_clients) may be open without
    AUTH; past it the oldest of them is closed."""
    node_args = ("--requirepass", "secret", "--set", "server.max_clients=200",
                 "--set", "limits.max_unauth_clients=50")

    def test_strangers_cannot_take_every_slot(self):
        self.assertEqual(self.c.call("AUTH", "secret"), "OK")
        base = self.info("total_connections_received")
        strangers = []
        for batch in range(10):
            # In batches the accept queue never overflows (past it the kernel delays
            # the accept by seconds while the client believes it is connected).
            strangers += [socket.create_connection(("127.0.0.1", self.node.port), timeout=10)
                          for _ in range(25)]
            wait_until(lambda: self.info("total_connections_received") >= base + 25 * (batch + 1),
                       timeout=10, what="the node to accept the strangers")
        wait_until(lambda: self.info("unauth_evictions") >= 200, timeout=10,
                   what="the oldest unauthenticated connections to be closed")
        # 1 authenticated + 50 strangers.
        wait_until(lambda: self.info("connected_clients", "clients") <= 51, timeout=10,
                   what="unauthenticated connections to be bounded")
        # A newcomer that authenticates at once still gets in, and the connection
        # already authenticated is kept.
        late = self.node.client()
        self.assertEqual(late.call("AUTH", "secret"), "OK")
        self.assertEqual(late.call("SET", "k", "v"), "OK")
        self.assertEqual(self.c.call("GET", "k"), b"v")
        self.assertEqual(self.info("rejected_connections"), 0)
        late.close()
        for s in strangers:
            s.close()


if __name__ == "__main__":
    unittest.main()
