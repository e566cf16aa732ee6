"""MULTI/EXEC/DISCARD/WATCH and the string commands on a 3-node loopback cluster: queued
commands never run before EXEC; a bad command makes EXEC answer EXECABORT with nothing
applied; several keys are refused with nothing applied; a WATCHed key changed through
another node makes EXEC answer nil; concurrent read-modify-writes through every node
lose no update; each string command's replies and errors; real clients (redis-py's
pipeline and transaction helper, ioredis' multi) where they are installed."""
import os
import shutil
import subprocess
import threading
import time
import unittest

from harness import Client, Closed, Cluster, Node, RespError, redis_py_interpreter

HERE = os.path.dirname(os.path.abspath(__file__))
REDIS_PY = redis_py_interpreter()
NODE = shutil.which("node")
NODE_CLIENTS = os.path.join(HERE, "node_clients")
HAS_IOREDIS = NODE is not None and os.path.isdir(os.path.join(NODE_CLIENTS, "node_modules", "ioredis"))


def error(reply):
    """The text of an error reply (fails the test if it is not one)."""
    assert isinstance(reply, RespError), f"expected an error, got {reply!r}"
    return str(reply)


class Transactions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A small object limit, so that a command can fail inside EXEC (APPEND past it).
        cls.cluster = Cluster(3, "--set", "limits.max_object_bytes=4096").start()
        cls.n1, cls.n2, cls.n3 = cls.cluster.nodes

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def client(self, node=None):
        c = (node or self.n1).client()
        self.clients.append(c)
        return c

    def test_queued_commands_do_not_run_before_exec(self):
        c, other = self.client(self.n1), self.client(self.n2)
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "q:k", "v"), "QUEUED")
        self.assertEqual(c.call("APPEND", "q:k", "w"), "QUEUED")
        self.assertEqual(c.call("GET", "q:k"), "QUEUED")
        # Not run: another client through another node sees nothing, even CONSISTENT.
        self.assertIsNone(other.call("GET", "q:k", "CONSISTENT"))
        self.assertIsNone(other.call("GET", "q:k", "R", "all"))
        self.assertEqual(c.call("EXEC"), ["OK", 2, b"vw"])
        self.assertEqual(other.call("GET", "q:k", "CONSISTENT"), b"vw")
        self.assertEqual(error(c.call("EXEC")), "ERR EXEC without MULTI")
        self.assertEqual(error(c.call("DISCARD")), "ERR DISCARD without MULTI")

    def test_bad_command_aborts_the_whole_transaction(self):
        c = self.client()
        for bad in (("SET", "a:k"), ("NOSUCH", "a:k"), ("SET", "a:k", "v", "BADOPT"),
                    ("EXPIRE", "a:k", "soon"), ("GET", "a:k", "R", "2"),
                    ("CONFIG", "GET", "x"), ("VGET", "a:k")):
            self.assertEqual(c.call("MULTI"), "OK")
            self.assertEqual(c.call("SET", "a:k", "1"), "QUEUED")
            self.assertIsInstance(c.call(*bad), RespError, bad)
            self.assertEqual(c.call("SET", "a:k", "2"), "QUEUED")  # still queued after the error
            self.assertEqual(error(c.call("EXEC")),
                             "EXECABORT Transaction discarded because of previous errors.", bad)
            self.assertIsNone(c.call("GET", "a:k", "CONSISTENT"), bad)
        # Errors about the transaction itself answer and leave it running, as in Redis.
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(error(c.call("MULTI")), "ERR MULTI calls can not be nested")
        self.assertEqual(error(c.call("WATCH", "a:k")), "ERR WATCH inside MULTI is not allowed")
        self.assertEqual(c.call("SET", "a:k", "3"), "QUEUED")
        self.assertEqual(c.call("EXEC"), ["OK"])

    def test_discard(self):
        c = self.client()
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "d:k", "v"), "QUEUED")
        self.assertEqual(c.call("DISCARD"), "OK")
        self.assertIsNone(c.call("GET", "d:k", "CONSISTENT"))
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("EXEC"), [])

    def test_several_keys_are_refused_with_nothing_applied(self):
        c = self.client()
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "m:x", "1"), "QUEUED")
        self.assertEqual(c.call("SET", "m:y", "2"), "QUEUED")
        msg = error(c.call("EXEC"))
        self.assertTrue(msg.startswith("EXECABORT Transaction discarded: it touches 2 keys ('m:x', 'm:y'"), msg)
        self.assertEqual(c.call("MGET", "m:x", "m:y"), [None, None])
        self.assertEqual(self.client(self.n3).call("EXISTS", "m:x", "m:y"), 0)
        # A WATCH on another key than the one written counts as a second key.
        self.assertEqual(c.call("WATCH", "m:w"), "OK")
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "m:x", "1"), "QUEUED")
        self.assertTrue(error(c.call("EXEC")).startswith("EXECABORT"))
        self.assertIsNone(c.call("GET", "m:x", "CONSISTENT"))
        # EXEC cleared the watch: the same transaction now commits.
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "m:x", "1"), "QUEUED")
        self.assertEqual(c.call("DEL", "m:x", "m:x"), "QUEUED")
        self.assertEqual(c.call("EXEC"), ["OK", 1])

    def test_watch_conflict_returns_nil(self):
        c, other = self.client(self.n1), self.client(self.n2)
        self.assertEqual(c.call("SET", "w:k", "old", "CONSISTENT"), "OK")
        self.assertEqual(c.call("WATCH", "w:k"), "OK")
        self.assertEqual(c.call("GET", "w:k"), b"old")
        self.assertEqual(other.call("SET", "w:k", "theirs", "CONSISTENT"), "OK")
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "w:k", "mine"), "QUEUED")
        self.assertIsNone(c.call("EXEC"))
        self.assertEqual(other.call("GET", "w:k", "CONSISTENT"), b"theirs")
        # An eventual write acknowledged by two primaries counts as a change too.
        self.assertEqual(c.call("WATCH", "w:k"), "OK")
        self.assertEqual(other.call("SET", "w:k", "eventual", "W", "2", "PW", "2"), "OK")
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("GET", "w:k"), "QUEUED")
        self.assertIsNone(c.call("EXEC"))
        # Unchanged: commits, and the replies are Redis's.
        self.assertEqual(c.call("WATCH", "w:k", "w:k"), "OK")
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("GET", "w:k"), "QUEUED")
        self.assertEqual(c.call("SET", "w:k", "mine"), "QUEUED")
        self.assertEqual(c.call("EXEC"), [b"eventual", "OK"])
        # UNWATCH forgets the watch: a change after it does not abort.
        self.assertEqual(c.call("WATCH", "w:k"), "OK")
        self.assertEqual(c.call("UNWATCH"), "OK")
        self.assertEqual(other.call("SET", "w:k", "again", "CONSISTENT"), "OK")
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("GET", "w:k"), "QUEUED")
        self.assertEqual(c.call("EXEC"), [b"again"])

    def test_a_huge_watch_is_refused_at_once(self):
        # Past the 1,024-key cap by argument count: refused before any work on the
        # arguments (deduplicating 200,000 keys on the loop thread used to stall the node).
        c, other = self.client(self.n1), self.client(self.n1)
        keys = [f"hw:{i}" for i in range(200000)]
        started = time.monotonic()
        reply = c.call("WATCH", *keys)
        self.assertIn("too many WATCHed keys", error(reply))
        self.assertEqual(other.call("PING"), "PONG")
        self.assertLess(time.monotonic() - started, 10.0)
        # Nothing was watched: a transaction on one key still commits.
        self.assertEqual(c.call("MULTI"), "OK")
        self.assertEqual(c.call("SET", "hw:0", "v"), "QUEUED")
        self.assertEqual(c.call("EXEC"), ["OK"])

    def test_pipelined_watch_multi_exec(self):
        # Commands after a WATCH wait for its read, and EXEC for everything before it: the
        # SET pipelined after the WATCH is a change the EXEC sees, as in Redis.
        c = self.client()
        c.send_raw(b"".join(Client.encode(*cmd) for cmd in (
            ("WATCH", "p:k"), ("SET", "p:k", "before"), ("MULTI",), ("SET", "p:k", "tx"), ("EXEC",),
            ("WATCH", "p:k"), ("MULTI",), ("APPEND", "p:k", "!"), ("EXEC",), ("GET", "p:k"))))
        self.assertEqual([c.read() for _ in range(10)],
                         ["OK", "OK", "OK", "QUEUED", None, "OK", "OK", "QUEUED", [7], b"before!"])

    def test_exec_replies_and_runtime_errors(self):
        c = self.client()
        self.assertEqual(c.call("MULTI"), "OK")
        for cmd in (("SET", "r:k", "1"), ("APPEND", "r:k", "23"), ("GET", "r:k"), ("STRLEN", "r:k"),
                    ("GETRANGE", "r:k", "1", "-1"), ("SETRANGE", "r:k", "0", "9"), ("EXPIRE", "r:k", "100"),
                    ("TTL", "r:k"), ("PERSIST", "r:k"), ("GETSET", "r:k", "x"), ("SET", "r:k", "y", "GET"),
                    ("MGET", "r:k", "r:k"), ("EXISTS", "r:k"), ("PING",), ("ECHO", "e"), ("GETDEL", "r:k"),
                    ("SETNX", "r:k", "n"), ("APPEND", "r:k", "x" * 5000)):
            self.assertEqual(c.call(*cmd), "QUEUED", cmd)
        got = c.call("EXEC")
        self.assertEqual(got[:-1], ["OK", 3, b"123", 3, b"23", 3, 1, 100, 1, b"923", b"x", [b"y", b"y"], 1,
                                    "PONG", b"e", b"y", 1])
        # A command failing as it runs answers its error; the others still apply (Redis).
        self.assertEqual(error(got[-1]), "ERR string exceeds maximum allowed size (limits.max_object_bytes)")
        self.assertEqual(c.call("GET", "r:k", "CONSISTENT"), b"n")

    def test_concurrent_read_modify_writes_lose_nothing(self):
        # APPEND, MULTI/EXEC and WATCH retries through all three nodes at once.
        per = 15
        errors = []

        def appender(node, tag):
            c = node.client()
            try:
                for _ in range(per):
                    r = c.call("APPEND", "cc:append", tag)
                    if not isinstance(r, int):
                        errors.append(r)
                    c.call("MULTI")
                    c.call("APPEND", "cc:multi", tag)
                    c.call("STRLEN", "cc:multi")
                    r = c.call("EXEC")
                    if not (isinstance(r, list) and r[0] == r[1]):
                        errors.append(r)
                    while True:  # optimistic increment, as clients write it with WATCH
                        c.call("WATCH", "cc:counter")
                        v = int(c.call("GET", "cc:counter") or 0)
                        c.call("MULTI")
                        c.call("SET", "cc:counter", str(v + 1))
                        if c.call("EXEC") is not None:
                            break
            finally:
                c.close()

        threads = [threading.Thread(target=appender, args=(n, t)) for n, t in
                   ((self.n1, "a"), (self.n2, "b"), (self.n3, "c"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        c = self.client()
        self.assertEqual(c.call("STRLEN", "cc:append", "CONSISTENT"), 3 * per)
        self.assertEqual(c.call("STRLEN", "cc:multi", "CONSISTENT"), 3 * per)
        value = c.call("GET", "cc:append", "CONSISTENT")
        self.assertEqual(sorted(value.decode()), sorted("abc" * per))
        self.assertEqual(c.call("GET", "cc:counter", "CONSISTENT"), str(3 * per).encode())

    def test_string_commands(self):
        c, other = self.client(self.n1), self.client(self.n2)
        self.assertEqual(c.call("SETNX", "s:nx", "1"), 1)
        self.assertEqual(c.call("SETNX", "s:nx", "2"), 0)
        self.assertEqual(other.call("GET", "s:nx", "R", "all"), b"1")
        self.assertEqual(c.call("SETEX", "s:ex", "100", "v"), "OK")
        self.assertTrue(98 <= other.call("TTL", "s:ex") <= 100)
        self.assertEqual(c.call("PSETEX", "s:ex", "100000", "v", "W", "all"), "OK")
        self.assertTrue(98000 <= other.call("PTTL", "s:ex") <= 100000)
        self.assertEqual(c.call("GETSET", "s:ex", "w"), b"v")
        self.assertEqual(other.call("TTL", "s:ex"), -1)  # GETSET drops the expiry, as SET
        self.assertEqual(c.call("SET", "s:ex", "x", "GET"), b"w")
        self.assertIsNone(c.call("SET", "s:none", "x", "XX", "GET"))
        self.assertIsNone(other.call("GET", "s:none", "CONSISTENT"))
        self.assertEqual(c.call("APPEND", "s:ap", "Hello"), 5)
        self.assertEqual(other.call("APPEND", "s:ap", " World"), 11)
        self.assertEqual(c.call("STRLEN", "s:ap", "R", "all"), 11)
        self.assertEqual(c.call("GETRANGE", "s:ap", "-5", "-1", "CONSISTENT"), b"World")
        self.assertEqual(other.call("SETRANGE", "s:ap", "6", "Redis"), 11)
        self.assertEqual(c.call("GET", "s:ap", "CONSISTENT"), b"Hello Redis")
        self.assertEqual(c.call("GETDEL", "s:ap"), b"Hello Redis")
        self.assertIsNone(other.call("GETDEL", "s:ap"))
        self.assertEqual(c.call("STRLEN", "s:ap", "R", "all"), 0)
        self.assertEqual(c.call("GETEX", "s:ex", "EX", "50"), b"x")
        self.assertEqual(other.call("EXPIRETIME", "s:ex") - other.call("TTL", "s:ex") > 1_000_000_000, True)
        self.assertEqual(c.call("GETEX", "s:ex", "PERSIST"), b"x")
        self.assertEqual(other.call("PEXPIRETIME", "s:ex"), -1)
        self.assertEqual(c.call("EXPIRE", "s:ex", "30", "NX"), 1)
        self.assertEqual(c.call("EXPIRE", "s:ex", "60", "NX"), 0)
        self.assertEqual(c.call("PEXPIRE", "s:ex", "90000", "GT"), 1)
        self.assertTrue(88 <= other.call("TTL", "s:ex", ) <= 90)
        self.assertEqual(c.call("PERSIST", "s:ex"), 1)
        self.assertEqual(c.call("PERSIST", "s:ex"), 0)
        self.assertEqual(c.call("EXPIREAT", "s:ex", "1"), 1)  # in the past: deleted
        self.assertIsNone(other.call("GET", "s:ex", "CONSISTENT"))
        self.assertEqual(c.call("PEXPIREAT", "s:ex", "1"), 0)
        self.assertEqual(c.call("MSETNX", "s:m", "1"), 1)
        self.assertEqual(c.call("MSETNX", "s:m", "2"), 0)
        self.assertTrue(error(c.call("MSETNX", "s:m1", "1", "s:m2", "2")).startswith(
            "ERR MSETNX over several keys cannot be atomic"))
        self.assertEqual(c.call("MGET", "s:m1", "s:m2"), [None, None])
        # Wrong arity and bad arguments.
        for cmd, msg in ((("SETNX", "k"), "ERR wrong number of arguments for 'setnx' command"),
                         (("GETDEL", "k", "x"), "ERR wrong number of arguments for 'getdel' command"),
                         (("APPEND", "k"), "ERR wrong number of arguments for 'append' command"),
                         (("SETRANGE", "k", "1"), "ERR wrong number of arguments for 'setrange' command"),
                         (("GETRANGE", "k", "1"), "ERR wrong number of arguments for 'getrange' command"),
                         (("EXPIRE", "k"), "ERR wrong number of arguments for 'expire' command"),
                         (("PERSIST",), "ERR wrong number of arguments for 'persist' command"),
                         (("SETEX", "k", "0", "v"), "ERR invalid expire time in 'setex' command"),
                         (("SETEX", "k", "ten", "v"), "ERR value is not an integer or out of range"),
                         (("GETEX", "k", "EX", "-1"), "ERR invalid expire time in 'getex' command"),
                         (("GETEX", "k", "EX"), "ERR syntax error"),
                         (("SETRANGE", "k", "-1", "v"), "ERR offset is out of range"),
                         (("EXPIRE", "k", "1", "NX", "XX"),
                          "ERR NX and XX, GT or LT options at the same time are not compatible"),
                         (("STRLEN", "k", "R", "9"), "ERR R must be one, quorum, all or a number from 1 to 3"),
                         (("APPEND", "k", "v", "CONSISTENT"), "ERR wrong number of arguments for 'append' command"),
                         (("SET", "k", "v", "GET", "W", "2"),
                          "ERR W does not apply to SET with these options: it reads and writes the key CONSISTENT"),
                         (("MSETNX", "k", "v", "k2"), "ERR wrong number of arguments for 'msetnx' command")):
            self.assertEqual(error(c.call(*cmd)), msg, cmd)

    def test_siblings_in_read_modify_writes(self):
        # Two writes from one context through different nodes: siblings (README, "Talk to it").
        c1, c2 = self.client(self.n1), self.client(self.n2)
        self.assertEqual(c1.call("SET", "sb:k", "base", "W", "all"), "OK")
        ctx, _ = c1.call("VGET", "sb:k", "R", "all")
        self.assertEqual(c1.call("SET", "sb:k", "one", "CTX", ctx, "W", "all"), "OK")
        self.assertEqual(c2.call("SET", "sb:k", "two", "CTX", ctx, "W", "all"), "OK")
        self.assertEqual(sorted(c1.call("GET", "sb:k", "CONSISTENT")), [b"one", b"two"])
        self.assertTrue(error(c1.call("APPEND", "sb:k", "x")).startswith("SIBLINGS the key has 2"))
        self.assertTrue(error(c1.call("STRLEN", "sb:k", "CONSISTENT")).startswith("SIBLINGS"))
        self.assertEqual(c1.call("MULTI"), "OK")
        self.assertEqual(c1.call("STRLEN", "sb:k"), "QUEUED")
        self.assertEqual(c1.call("SET", "sb:k", "resolved"), "QUEUED")
        self.assertEqual(c1.call("STRLEN", "sb:k"), "QUEUED")
        got = c1.call("EXEC")
        self.assertTrue(error(got[0]).startswith("SIBLINGS"))
        self.assertEqual(got[1:], ["OK", 8])
        self.assertEqual(c2.call("GET", "sb:k", "CONSISTENT"), b"resolved")

    def test_info_counts_transactions(self):
        c = self.client()
        c.call("MULTI")
        c.call("PING")
        c.call("EXEC")
        text = c.call("INFO", "stats").decode()
        stats = dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)
        for field in ("transactions_committed", "transactions_aborted", "transactions_watch_failed",
                      "cas_retries"):
            self.assertIn(field, stats)
        self.assertGreaterEqual(int(stats["transactions_committed"]), 1)

    @unittest.skipUnless(REDIS_PY, "needs redis-py (apt python3-redis)")
    def test_redis_py_pipeline_and_transaction(self):
        script = (
            "import sys, redis\n"
            "r = redis.Redis(port=int(sys.argv[1]))\n"
            "p = r.pipeline(transaction=True)\n"
            "p.set('py:k', 'a').append('py:k', 'b').get('py:k').expire('py:k', 100).ttl('py:k')\n"
            "print(p.execute())\n"
            "p = r.pipeline(transaction=True)\n"
            "p.set('py:x', '1').set('py:y', '2')\n"
            "try:\n"
            "    p.execute()\n"
            "    print('no error')\n"
            "except redis.exceptions.ResponseError as e:\n"
            "    print(type(e).__name__, str(e)[:40])\n"
            "print(r.mget('py:x', 'py:y'))\n"
            "p = r.pipeline(transaction=True)\n"
            "p.set('py:z', '1').execute_command('NOSUCH')\n"
            "try:\n"
            "    p.execute()\n"
            "except redis.exceptions.ResponseError as e:\n"
            "    print(type(e).__name__)\n"
            "print(r.get('py:z'))\n"
            "def incr(pipe):\n"
            "    v = int(pipe.get('py:n') or 0)\n"
            "    pipe.multi()\n"
            "    pipe.set('py:n', v + 1)\n"
            "for _ in range(5):\n"
            "    r.transaction(incr, 'py:n')\n"
            "print(r.get('py:n'))\n")
        r = subprocess.run([REDIS_PY, "-c", script, str(self.n1.port)], capture_output=True, timeout=60)
        self.assertEqual(r.stdout.decode().splitlines(), [
            "[True, 2, b'ab', True, 100]",
            "ExecAbortError Transaction discarded: it touches 2 keys",
            "[None, None]",
            "ResponseError",
            "None",
            "b'5'"], r.stderr.decode()[-2000:])

    @unittest.skipUnless(HAS_IOREDIS, "needs node and ioredis (cd tests/integration/node_clients && "
                                      "npm install --no-save ioredis)")
    def test_ioredis_multi(self):
        script = (
            "const Redis = require('ioredis');\n"
            "const r = new Redis(Number(process.argv[1]), '127.0.0.1', {lazyConnect: false});\n"
            "(async () => {\n"
            "  console.log(JSON.stringify(await r.multi().set('io:k', 'a').append('io:k', 'b')"
            ".get('io:k').exec()));\n"
            "  try { await r.multi().set('io:x', '1').set('io:y', '2').exec(); console.log('no error'); }\n"
            "  catch (e) { console.log(e.message.slice(0, 9)); }\n"
            "  console.log(JSON.stringify(await r.mget('io:x', 'io:y')));\n"
            "  await r.watch('io:k');\n"
            "  const other = new Redis(Number(process.argv[2]), '127.0.0.1');\n"
            "  await other.set('io:k', 'changed', 'CONSISTENT');\n"
            "  console.log(JSON.stringify(await r.multi().set('io:k', 'mine').exec()));\n"
            "  console.log(await r.get('io:k', 'CONSISTENT'));\n"
            "  r.disconnect(); other.disconnect();\n"
            "})().catch(e => { console.log('failed', e.message); process.exit(1); });\n")
        r = subprocess.run([NODE, "-e", script, "--", str(self.n1.port), str(self.n2.port)],
                           capture_output=True, timeout=60, cwd=NODE_CLIENTS)
        self.assertEqual(r.stdout.decode().splitlines(), [
            '[[null,"OK"],[null,2],[null,"ab"]]',
            "EXECABORT",
            "[null,null]",
            "null",
            "changed"], r.stderr.decode()[-2000:])


class ServerCommands(unittest.TestCase):
    """COMMAND DOCS/INFO/COUNT from the command table, CLIENT LIST/INFO/KILL/NO-EVICT."""

    @classmethod
    def setUpClass(cls):
        cls.node = Node().start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def test_command_docs_info_count_cover_every_command(self):
        c = self.node.client()
        names = sorted(n.decode() for n in c.call("COMMAND", "LIST"))
        self.assertEqual(c.call("COMMAND", "COUNT"), len(names))
        for name in ("multi", "exec", "watch", "append", "getex", "expire", "persist", "msetnx"):
            self.assertIn(name, names)
        docs = c.call("COMMAND", "DOCS")
        self.assertEqual(sorted(d.decode() for d in docs[0::2]), names)
        fields = dict(zip(docs[1][0::2], docs[1][1::2]))
        self.assertEqual(set(fields), {b"summary", b"since", b"group"})
        got = dict(zip(c.call("COMMAND", "DOCS", "exec")[0::2], c.call("COMMAND", "DOCS", "exec")[1::2]))
        self.assertEqual(dict(zip(got[b"exec"][0::2], got[b"exec"][1::2]))[b"group"], b"transactions")
        self.assertEqual(len(c.call("COMMAND", "INFO")), len(names))
        info = c.call("COMMAND", "INFO", "getrange", "nosuch")
        self.assertEqual(info[0][:2], [b"getrange", -4])
        self.assertIsNone(info[1])
        c.close()

    def test_config_set_of_live_settings(self):
        c = self.node.client()
        self.assertEqual(c.call("CONFIG", "SET", "cluster.read_quorum", "all",
                                "limits.max_output_buffer_bytes", "4194304"), "OK")
        self.assertEqual(c.call("CONFIG", "GET", "cluster.read_quorum"), [b"cluster.read_quorum", b"all"])
        self.assertEqual(c.call("ITSUKA.DEFAULTS")[1], b"all")  # the connection's effective R
        self.assertEqual(c.call("CONFIG", "GET", "limits.max_output_buffer_bytes")[1], b"4194304")
        # All or none: one bad pair changes nothing.
        msg = str(c.call("CONFIG", "SET", "cluster.read_quorum", "one", "server.max_memory_bytes", "5"))
        self.assertTrue(msg.startswith("ERR CONFIG SET failed: setting 'server.max_memory_bytes'"), msg)
        self.assertEqual(c.call("CONFIG", "GET", "cluster.read_quorum")[1], b"all")
        msg = str(c.call("CONFIG", "SET", "server.port", "1"))
        self.assertIn("cannot be changed on a running node", msg)
        self.assertEqual(str(c.call("CONFIG", "SET", "cluster.read_quorum")),
                         "ERR wrong number of arguments for 'config|set' command")
        self.assertEqual(c.call("CONFIG", "SET", "cluster.read_quorum", "one"), "OK")
        c.close()

    def test_client_list_info_kill_no_evict(self):
        a, b = self.node.client(), self.node.client()
        self.assertEqual(b.call("CLIENT", "SETNAME", "victim"), "OK")
        self.assertEqual(b.call("MULTI"), "OK")
        self.assertEqual(b.call("SET", "k", "v"), "QUEUED")
        b_id = None
        for line in a.call("CLIENT", "LIST").decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" "))
            if fields["name"] == "victim":
                b_id = fields["id"]
                self.assertEqual(fields["flags"], "x")
                self.assertEqual(fields["multi"], "1")
                self.assertEqual(fields["cmd"], "set")
        self.assertIsNotNone(b_id)
        me = a.call("CLIENT", "INFO").decode()
        self.assertTrue(me.startswith("id=%d " % a.call("CLIENT", "ID")), me)
        self.assertEqual(a.call("CLIENT", "NO-EVICT", "on"), "OK")
        self.assertIn("flags=e", a.call("CLIENT", "INFO").decode())
        self.assertEqual(str(a.call("CLIENT", "NO-EVICT", "maybe")), "ERR syntax error")
        self.assertEqual(a.call("CLIENT", "KILL", "ID", b_id), 1)
        with self.assertRaises((Closed, OSError)):
            b.call("EXEC")
        self.assertEqual(str(a.call("CLIENT", "KILL", "10.9.9.9:1")), "ERR No such client")
        self.assertEqual(a.call("CLIENT", "KILL", "ID", "999999"), 0)
        # The killed client's transaction never ran.
        self.assertIsNone(a.call("GET", "k", "CONSISTENT"))
        self.assertEqual(a.call("CLIENT", "KILL", "ID", str(a.call("CLIENT", "ID")), "SKIPME", "no"), 1)
        with self.assertRaises((Closed, OSError)):
            a.call("PING")
        a.close()
        b.close()


if __name__ == "__main__":
    unittest.main()
