"""What an authenticated-looking peer may send: values the object checks refuse are
refused at decode time without dropping the connection, non-members cannot write,
gossip cannot forge another member's departure, and a node whose clock is off from
its peers refuses to set expiries.

The peer-speaking code is in peer_session() alone: it completes today's Hello. Once
the cluster-secret handshake lands, only that function needs the secret added."""
import os
import socket
import struct
import unittest

from harness import Cluster, RespError, wait_until


# ---- a minimal msgpack encoder: enough for the peer messages these tests send ----
def mp(x):
    if isinstance(x, bool):
        return b"\xc3" if x else b"\xc2"
    if isinstance(x, int):
        if 0 <= x < 128:
            return bytes([x])
        if x >= 0:
            return b"\xcf" + struct.pack(">Q", x)
        if x >= -32:
            return struct.pack(">b", x)
        return b"\xd3" + struct.pack(">q", x)
    if isinstance(x, str):
        b = x.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(x, bytes):
        return b"\xc6" + struct.pack(">I", len(x)) + x
    if isinstance(x, list):
        return b"\xdd" + struct.pack(">I", len(x)) + b"".join(mp(e) for e in x)
    raise TypeError(type(x))


def peer_port_of(node):
    return int([a for a in node.argv() if a.startswith("cluster.peer_port=")][0].split("=")[1])


def send_frame(sock, msg):
    body = mp(msg)
    sock.sendall(struct.pack(">I", len(body)) + body)


def peer_session(node, node_id, cluster="itsuka"):
    """A peer connection to `node` on which this test speaks as `node_id`, handshake done.
    The only place that knows the handshake (adapt here for the cluster secret)."""
    s = socket.create_connection(("127.0.0.1", peer_port_of(node)), timeout=5)
    send_frame(s, [0, cluster, 1, node_id])  # Hello
    header = b""
    while len(header) < 4:
        chunk = s.recv(4 - len(header))
        if not chunk:
            raise AssertionError("the node closed the connection instead of its Hello")
        header += chunk
    n = struct.unpack(">I", header)[0]
    got = 0
    while got < n:
        got += len(s.recv(n - got))
    return s


def closed_within(sock, seconds):
    sock.settimeout(seconds)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def obj(node, counter, value, expire=0, written=1):
    """A stored-format object: one sibling with dot (node, counter)."""
    return mp([1, [[node, counter]], [[node, counter, 0, value, expire, written]]])


EMPTY_CONTEXT = "kA"  # base64url of an empty msgpack array


def forward_put(req, key, value, expire):
    return [5, req, key.encode(), False, value, expire, 1, False, EMPTY_CONTEXT, 0, False, 2, 0]


def info(node, section="cluster"):
    c = node.client()
    try:
        text = c.call("INFO", section).decode()
    finally:
        c.close()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def call(node, *args):
    c = node.client()
    try:
        return c.call(*args)
    finally:
        c.close()


def counter(node, name):
    return int(info(node).get(name, "0"))


def settle(node, name, before, want=1, timeout=5):
    """Waits (bounded) for counter `name` to pass before + want - 1; returns whether it did.
    The tests assert the attack's effect first, so an old binary fails on that."""
    try:
        wait_until(lambda: counter(node, name) >= before + want, timeout=timeout, what=name)
        return True
    except AssertionError:
        return False


def members(node):
    out = {}
    for m in call(node, "ITSUKA.MEMBERS"):
        kv = {m[i].decode(): m[i + 1].decode() for i in range(0, len(m), 2)}
        out[kv["id"]] = kv
    return out


class PeerChecks(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).start()
        cls.n1 = cls.cluster.nodes[0]

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_poisoned_expiry_is_refused_and_the_connection_kept(self):
        # As a member would (an authenticated peer): today's main stored the negative
        # expiry, after which `GET poison R all` failed on every node.
        s = peer_session(self.n1, "node2")
        try:
            before = counter(self.n1, "peer_messages_refused")
            send_frame(s, forward_put(901, "poison", b"v", -1))
            counted = settle(self.n1, "peer_messages_refused", before)
            # One bad value does not cost the connection: it stays open, and still works.
            send_frame(s, [3, 902, b"poison"])  # ReplicaRead
            self.assertFalse(closed_within(s, 1), "the connection was dropped over one bad value")
        finally:
            s.close()
        self.assertIsNone(call(self.n1, "GET", "poison", "R", "all"))
        self.assertEqual(call(self.n1, "SET", "poison", "good"), "OK")
        self.assertEqual(call(self.n1, "GET", "poison", "R", "all"), b"good")
        self.assertTrue(counted, "the refusal was not counted (peer_messages_refused)")

    def test_absurd_clock_counter_is_refused(self):
        s = peer_session(self.n1, "node2")
        try:
            before = counter(self.n1, "peer_messages_refused")
            send_frame(s, [1, 903, b"absurd", obj("node2.evil", 1 << 63, b"stuck"), ""])
            counted = settle(self.n1, "peer_messages_refused", before)
            self.assertFalse(closed_within(s, 0.5))
        finally:
            s.close()
        self.assertIsNone(call(self.n1, "GET", "absurd", "R", "all"))
        self.assertTrue(counted, "the refusal was not counted (peer_messages_refused)")

    def test_non_member_cannot_write_or_forward(self):
        s = peer_session(self.n1, "intruder")
        try:
            before = counter(self.n1, "peer_senders_refused")
            send_frame(s, [1, 904, b"stranger-rw", obj("intruder.x", 1, b"evil"), ""])
            send_frame(s, forward_put(905, "stranger-fp", b"evil", 0))
            counted = settle(self.n1, "peer_senders_refused", before, want=2)
        finally:
            s.close()
        # Today's main stored both.
        self.assertIsNone(call(self.n1, "GET", "stranger-rw", "R", "all"))
        self.assertIsNone(call(self.n1, "GET", "stranger-fp", "R", "all"))
        self.assertTrue(counted, "the refusals were not counted (peer_senders_refused)")

    def test_z_forged_left_is_refused(self):
        m3 = members(self.n1)["node3"]
        self.assertEqual(m3["status"], "up")
        forged = ["node3", int(m3["incarnation"]), 0, m3["client_addr"], m3["peer_addr"], 0,
                  int(m3["version"]) + 1, 3, 0]  # status 3 = left, one version up
        s = peer_session(self.n1, "intruder")
        try:
            before = counter(self.n1, "gossip_entries_refused")
            send_frame(s, [50, [forged]])
            counted = settle(self.n1, "gossip_entries_refused", before)
        finally:
            s.close()
        # Today's main evicted node3 at once.
        self.assertEqual(members(self.n1)["node3"]["status"], "up")
        self.assertTrue(counted, "the forged state was not counted (gossip_entries_refused)")
        self.assertEqual(members(self.cluster.nodes[1])["node3"]["status"], "up")
        # Nor can it tell node1 that node1 itself left (today's main: node1 took it).
        m1 = members(self.n1)["node1"]
        forged_self = ["node1", int(m1["incarnation"]), 0, m1["client_addr"], m1["peer_addr"], 0,
                       int(m1["version"]) + 1, 3, 0]
        s = peer_session(self.n1, "intruder")
        try:
            before = counter(self.n1, "gossip_entries_refused")
            send_frame(s, [50, [forged_self]])
            counted = settle(self.n1, "gossip_entries_refused", before)
        finally:
            s.close()
        self.assertEqual(members(self.n1)["node1"]["status"], "up")
        self.assertTrue(counted, "the forged state was not counted (gossip_entries_refused)")


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@unittest.skipUnless(os.path.exists(FAKETIME_LIB), "libfaketime is not installed")
class ClockSkew(unittest.TestCase):
    def test_a_node_an_hour_behind_refuses_ttl_writes(self):
        cluster = Cluster(3)
        env = dict(os.environ)
        env.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "-3600",
                    "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
        cluster.nodes[2].env = env  # node3's wall clock is an hour behind
        try:
            cluster.start()
            n1, n2, n3 = cluster.nodes

            def offset_of_node3(node):
                for k, v in info(node).items():
                    if k.startswith("peer") and "id=node3," in v and "offset_ms=" in v:
                        return int(v.split("offset_ms=")[1].split(",")[0])
                return None

            # Heartbeats measure the offsets within a second or two.
            try:
                wait_until(lambda: info(n3).get("clock_offset_exceeded") == "1", timeout=15,
                           what="node3 to see its own clock is off")
            except AssertionError:
                pass
            # Today's main answered OK, and the other nodes read the key as expired.
            r = call(n3, "SET", "ttl-key", "v", "EX", "600")
            self.assertIsInstance(r, RespError)
            self.assertIn("CLOCKSKEW", str(r))
            self.assertIn("cluster.max_clock_offset_ms", str(r))
            self.assertIn("3600", str(r))
            for node in (n1, n2):
                self.assertIsNotNone(offset_of_node3(node), "no offset_ms for node3 in INFO")
                self.assertAlmostEqual(offset_of_node3(node), -3600000, delta=1000)
            # Writes without an expiry still work there; the healthy nodes' TTL writes too.
            self.assertEqual(call(n3, "SET", "plain-key", "v"), "OK")
            self.assertEqual(info(n1)["clock_offset_exceeded"], "0")
            self.assertEqual(call(n1, "SET", "ttl-ok", "v", "EX", "600"), "OK")
            self.assertEqual(call(n2, "GET", "ttl-ok", "R", "all"), b"v")
        finally:
            cluster.cleanup()


if __name__ == "__main__":
    unittest.main()
