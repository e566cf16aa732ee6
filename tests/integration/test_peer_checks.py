"""What an authenticated peer may send: values the object checks refuse are refused at
decode time without dropping the connection, non-members cannot write, gossip cannot
forge another member's departure, and a node whose clock is off from its peers refuses
to set expiries.

The attacker here holds the cluster secret (a compromised or buggy member): it completes
the real handshake (protocol version 3, peerwire.py) with the cluster's secret file, so
what refuses it is the members-only checks (src/core/peer_checks.h) and the decoder,
not the transport. peer_session() and absent_member() are the only places that know the
handshake."""
import contextlib
import os
import re
import unittest

from harness import Cluster, RespError, wait_until
from harness import info as harness_info
from peerwire import authenticated_session, pack


def peer_session(node, node_id, instance=None):
    """A PeerSocket to `node` on which this test speaks as `node_id`, the handshake done
    with the cluster's secret (node.secret_file). The transport accepts any authenticated
    node id (members are learned by gossip), so a non-member id such as "intruder"
    authenticates too and only the members-only checks stand in its way."""
    return authenticated_session(node, node_id, instance or f"{node_id}.attacker")


def peer_state(node, member):
    """The state (up, suspect, down) of node's connection to `member` from INFO."""
    for v in info(node).values():
        if v.startswith(f"id={member},") and ",state=" in v:
            return v.split(",state=")[1].split(",")[0]
    return None


@contextlib.contextmanager
def absent_member(cluster, node, member):
    """A peer session to `node` speaking as `member`, a member in its view, while that
    member's process is stopped: the transport refuses another instance of a *connected*
    member as a duplicate node id (peers.h), so the attacker speaks for a member that is
    not connected, which the transport accepts as a replaced data directory. (Reusing
    the live member's own instance id would get past the duplicate rule too, but it is
    in the member's RocksDB and would make the test depend on that.) When the session
    ends the member is started again and the whole cluster reconnects."""
    real = next(n for n in cluster.nodes if n.node_id == member)
    authenticated = counter(node, "peer_connections_authenticated")
    real.stop()
    # Until `node` has seen the member's connections go, a session as it is a duplicate.
    wait_until(lambda: peer_state(node, member) == "down" and
               counter(node, "peer_connections_authenticated") < authenticated,
               timeout=10, what=f"{node.node_id} to see {member} go")
    s = peer_session(node, member)
    try:
        yield s
    finally:
        s.close()
        # The real member coming back while this session is still open would be refused
        # as a duplicate (and exit), so wait for `node` to drop it first.
        wait_until(lambda: counter(node, "peer_connections_authenticated") < authenticated,
                   timeout=10, what=f"{node.node_id} to drop the attacker's session")
        real.start()
        cluster.wait_connected()


def obj(node, counter, value, expire=0, written=1):
    """A stored-format object: one sibling with dot (node, counter)."""
    return pack([1, [[node, counter]], [[node, counter, 0, value, expire, written]]])


EMPTY_CONTEXT = "kA"  # base64url of an empty msgpack array
EMPTY_OBJECT = b"\x93\x01\x90\x90"  # an encoded empty object (ForwardPut.seen: nothing)


def forward_put(req, key, value, expire):
    return [5, req, key.encode(), False, value, expire, 1, False, EMPTY_CONTEXT, 0, False, 2, 0,
            EMPTY_OBJECT]


def info(node, section="cluster"):
    return harness_info(node, section)


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
        # As a member would (an authenticated peer speaking for node2, see absent_member):
        # today's main stored the negative expiry, after which `GET poison R all` failed
        # on every node.
        with absent_member(self.cluster, self.n1, "node2") as s:
            before = counter(self.n1, "peer_messages_refused")
            s.send(forward_put(901, "poison", b"v", -1))
            counted = settle(self.n1, "peer_messages_refused", before)
            # One bad value does not cost the connection: it stays open, and still works.
            s.send([3, 902, b"poison"])  # ReplicaRead
            self.assertFalse(s.closed(1), "the connection was dropped over one bad value")
        self.assertIsNone(call(self.n1, "GET", "poison", "R", "all"))
        self.assertEqual(call(self.n1, "SET", "poison", "good"), "OK")
        self.assertEqual(call(self.n1, "GET", "poison", "R", "all"), b"good")
        self.assertTrue(counted, "the refusal was not counted (peer_messages_refused)")

    def test_absurd_clock_counter_is_refused(self):
        with absent_member(self.cluster, self.n1, "node2") as s:
            before = counter(self.n1, "peer_messages_refused")
            s.send([1, 903, b"absurd", obj("node2.evil", 1 << 63, b"stuck"), ""])
            counted = settle(self.n1, "peer_messages_refused", before)
            self.assertFalse(s.closed(0.5))
        self.assertIsNone(call(self.n1, "GET", "absurd", "R", "all"))
        self.assertTrue(counted, "the refusal was not counted (peer_messages_refused)")

    def test_non_member_cannot_write_or_forward(self):
        # A non-member id: it authenticates (the secret is all the transport asks for),
        # so only the members-only checks can refuse what it sends.
        s = peer_session(self.n1, "intruder")
        try:
            before = counter(self.n1, "peer_senders_refused")
            s.send([1, 904, b"stranger-rw", obj("intruder.x", 1, b"evil"), ""])
            s.send(forward_put(905, "stranger-fp", b"evil", 0))
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
            s.send([50, [forged]])
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
            s.send([50, [forged_self]])
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
        # An ASan build refuses a preloaded library ahead of its runtime unless told not to
        # check (the faked clock is all libfaketime changes; ASan still instruments the rest).
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
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
            # The message names the measured offset (an hour, give or take the
            # measurement: "-3599982 ms" as well as "-3600012 ms").
            named = re.search(r"is (-?\d+) ms off", str(r))
            self.assertIsNotNone(named, "the CLOCKSKEW error does not name the offset")
            self.assertAlmostEqual(int(named.group(1)), -3600000, delta=1000)
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
