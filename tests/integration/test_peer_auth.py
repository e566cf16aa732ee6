"""Peer authentication, spoken as a stranger on the peer port: frames are a 4-byte
big-endian length and msgpack ([type, fields...], src/wire/peer_codec.h); the handshake
is the mutual HMAC challenge-response of src/server/peers.h (the client side is in
peerwire.py). Each attack here worked against protocol version 1 (any Hello was trusted)."""
import os
import re
import socket
import struct
import subprocess
import threading
import time
import unittest

from harness import ITSUKAD, SANITIZED, Cluster, Node, free_port, make_secret, read_secret, redis_cli, wait_until
from peerwire import PeerSocket, frame, peer_port_of, proof


def old_hello(node_id):  # protocol version 1: [0, cluster, version, node id]
    return [0, "itsuka", 1, node_id]


def forward_put(key, value):  # ForwardPut: W=1, no context, nothing seen (an empty object)
    return [5, 77, key.encode(), False, value.encode(), 0, int(time.time() * 1000), False, "kA", 0,
            False, 1, 0, b"\x93\x01\x90\x90"]


def gossip_syn(member_id, peer_port):
    # [50, [[id, incarnation, heartbeat, client_addr, peer_addr, synced, version, status, seen]]]
    return [50, [[member_id, 1, 1, "127.0.0.1:1", f"127.0.0.1:{peer_port}", 0, 1, 1, 1]]]


def info(node):
    c = node.client()
    try:
        text = c.call("INFO").decode()
    finally:
        c.close()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def member_ids(node):
    c = node.client()
    try:
        view = c.call("ITSUKA.MEMBERS")
    finally:
        c.close()
    ids = []
    for entry in view:
        fields = dict(zip(entry[::2], entry[1::2]))
        ids.append(fields[b"id"].decode())
    return sorted(ids)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def extra_node(cluster, name, node_id, seed_port, *extra):
    """A node (not started) in the cluster's directory, with the cluster's secret,
    seeded with node1 at seed_port."""
    d = os.path.join(cluster.tmp, name)
    os.makedirs(d)
    node = Node("--set", f"cluster.peer_port={free_port()}",
                "--set", f"cluster.seeds=node1@127.0.0.1:{seed_port}", *extra,
                data_dir=os.path.join(d, "data"), node_id=node_id, secret_file=cluster.secret_file)
    node.log_path = os.path.join(d, "itsukad.log")
    return node


def run_itsukad(*args, timeout=20):
    """Runs itsukad to completion (a start that must fail); (exit code, output)."""
    r = subprocess.run([ITSUKAD, *args], capture_output=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


class StrangersOnThePeerPort(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).start()
        cls.cluster_id, cls.secrets = read_secret(cls.cluster.secret_file)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def get_everywhere(self, key):
        return [redis_cli(n.port, "GET", key) for n in self.cluster.nodes]

    def test_a_unauthenticated_writes_write_nothing(self):
        n1 = self.cluster.nodes[0]
        port = peer_port_of(n1)
        refused_before = int(info(n1)["peer_handshakes_refused"])
        # Version 1: a Hello naming a real member, then a forwarded write (the attack of
        # issue 11). Then the current version (5) without a proof: an AuthHello and the same write.
        attempts = [
            [old_hello("node2"), forward_put("stranger:a", "pwned")],
            [old_hello("node9"), forward_put("stranger:b", "pwned")],
            [[60, "itsuka", self.cluster_id, 5, "node9", "x.1", os.urandom(32)],
             forward_put("stranger:c", "pwned")],
        ]
        for msgs in attempts:
            s = PeerSocket(port)
            s.send(*msgs)
            self.assertTrue(s.closed(), "the node kept a connection that never authenticated")
            s.close()
        # A write that would have gone through is visible at once; give it a moment anyway.
        time.sleep(0.5)
        for key in ("stranger:a", "stranger:b", "stranger:c"):
            self.assertEqual(self.get_everywhere(key), ["", "", ""], key)
        self.assertGreaterEqual(int(info(n1)["peer_handshakes_refused"]) - refused_before, 3)
        # The cluster itself still writes.
        self.assertEqual(redis_cli(n1.port, "SET", "member:a", "ok"), "OK")
        self.assertEqual(redis_cli(self.cluster.nodes[2].port, "GET", "member:a"), "ok")

    def test_b_wrong_secret_is_refused_and_its_gossip_ignored(self):
        n1 = self.cluster.nodes[0]
        port = peer_port_of(n1)
        before = member_ids(n1)
        self.assertEqual(before, ["node1", "node2", "node3"])
        failures_before = int(info(n1)["peer_auth_failures"])
        # Control: the right secret authenticates (so the refusals below are about the
        # secret, not a broken test client).
        s = PeerSocket(port)
        verified, result = s.handshake("node8", self.cluster_id, self.secrets[0], "node1")
        self.assertTrue(verified, "node1's proof does not verify with the cluster secret")
        self.assertEqual(result, [62, 0, ""])
        s.close()
        # The wrong secret, with gossip pipelined right after the proof.
        s = PeerSocket(port)
        n_i = os.urandom(32)
        s.send([60, "itsuka", self.cluster_id, 5, "evil", "evil.1", n_i])
        hello, their_proof = s.recv(), s.recv()
        self.assertEqual(hello[0], 60)
        self.assertEqual(their_proof[0], 61)
        wrong = os.urandom(32)
        s.send([61, [proof(wrong, "initiator", self.cluster_id, "evil", "node1", n_i, hello[6])]],
               gossip_syn("evil", 1))
        result = s.recv()
        self.assertEqual(result[0], 62)
        self.assertEqual(result[1], 1)
        self.assertIn("authentication failed", result[2])
        self.assertTrue(s.closed())
        s.close()
        # A replayed proof (the acceptor's own, reflected) fails too.
        s = PeerSocket(port)
        n_i = os.urandom(32)
        s.send([60, "itsuka", self.cluster_id, 5, "evil", "evil.1", n_i])
        hello, their_proof = s.recv(), s.recv()
        s.send([61, their_proof[1]], gossip_syn("evil", 1))
        self.assertEqual(s.recv()[1], 1)
        s.close()
        # Another cluster id is refused before any proof.
        s = PeerSocket(port)
        s.send([60, "itsuka", os.urandom(16), 5, "evil", "evil.1", os.urandom(32)])
        result = s.recv()
        self.assertEqual(result[0], 62)
        self.assertIn("cluster id", result[2])
        s.close()
        time.sleep(1.0)  # several gossip rounds
        for n in self.cluster.nodes:
            self.assertEqual(member_ids(n), before)
        self.assertGreaterEqual(int(info(n1)["peer_auth_failures"]) - failures_before, 2)

    def test_b2_a_dialled_stranger_gets_nothing(self):
        """A node dialling an address a stranger controls (a bad seed or gossip entry)
        verifies the stranger first: it never sends its own proof or any message."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        got = []

        def fake_acceptor():
            listener.settimeout(20)
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                return
            s = PeerSocket.__new__(PeerSocket)
            s.sock = conn
            hello = s.recv()
            got.append(hello)
            s.send([60, "itsuka", hello[2], 5, "node1", "fake.1", os.urandom(32)],
                   [61, [os.urandom(32)]])
            while True:
                m = s.recv()
                if m is None:
                    break
                got.append(m)
            conn.close()

        t = threading.Thread(target=fake_acceptor, daemon=True)
        t.start()
        dialler = extra_node(self.cluster, "dialler", "node7", listener.getsockname()[1])
        try:
            dialler.start()
            t.join(timeout=20)
            self.assertTrue(got, "the node never dialled the stranger")
            self.assertEqual(got[0][0], 60)
            self.assertEqual([m[0] for m in got[1:]], [], "the node sent more than its AuthHello")
            wait_until(lambda: int(info(dialler)["peer_auth_failures"]) >= 1, timeout=10,
                       what="the dialler to count the failed proof")
        finally:
            dialler.cleanup()
            listener.close()

    def test_b3_a_squatter_cannot_shut_a_node_down(self):
        """Whoever answers a node's dial (a stopped member's port, a gossiped address)
        may claim the node's id is a duplicate; without having proved it holds the
        secret that is an ordinary refusal, not a reason for the node to exit. Its
        reason, with a newline and a terminal escape, is logged escaped."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        answered = []

        def squatter():
            listener.settimeout(20)
            while len(answered) < 3:
                try:
                    conn, _ = listener.accept()
                except (socket.timeout, OSError):
                    return
                s = PeerSocket.__new__(PeerSocket)
                s.sock = conn
                if s.recv() is not None:
                    s.send([62, 2, "node id is already in use\nFORGED ERROR line\x1b[2J"])
                    answered.append(1)
                conn.close()

        t = threading.Thread(target=squatter, daemon=True)
        t.start()
        dialler = extra_node(self.cluster, "squatted", "node8", listener.getsockname()[1])
        try:
            dialler.start()
            t.join(timeout=25)
            self.assertGreaterEqual(len(answered), 2, "the node did not dial the squatter again")
            self.assertIsNone(dialler.proc.poll(), "a stranger's duplicate verdict stopped the node")
            self.assertEqual(redis_cli(dialler.port, "PING"), "PONG")
            with open(dialler.log_path, "rb") as f:
                log = f.read()
            self.assertIn(b"already in use\\x0aFORGED", log)
            self.assertNotIn(b"\nFORGED", log)
            self.assertNotIn(b"\x1b", log)
        finally:
            dialler.cleanup()
            listener.close()

    def test_b4_a_flood_of_strangers_is_logged_at_a_bounded_rate(self):
        node = self.cluster.nodes[2]
        port = peer_port_of(node)
        with open(node.log_path, "rb") as f:
            before = f.read().count(b"refused")
        start = time.monotonic()
        for _ in range(300):  # bounded: 300 connections, each one garbage frame
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(frame([0, "itsuka", 1, "stranger"]))
                try:
                    s.recv(16)
                except OSError:
                    pass
        elapsed = time.monotonic() - start
        wait_until(lambda: int(info(node)["peer_handshakes_refused"]) >= 300, timeout=10,
                   what="every refusal counted")
        with open(node.log_path, "rb") as f:
            lines = f.read().count(b"refused") - before
        # At most 10 lines a second (plus the window in progress and a summary line each).
        self.assertLessEqual(lines, 10 * (elapsed + 2) + elapsed + 2, f"{lines} lines in {elapsed:.1f}s")

    def test_c_strangers_announcing_huge_frames_cost_little(self):
        n1, n2 = self.cluster.nodes[0], self.cluster.nodes[1]
        port = peer_port_of(n1)
        rss_before = rss_kib(n1.pid)
        # 24 strangers, each: a version-1 Hello, then a frame announcing 64 MiB and
        # 4 MiB of its body. Version 1 buffered all of it (about 100 MiB).
        socks = []
        sent = 0
        for i in range(24):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.settimeout(2)
            try:
                s.sendall(frame(old_hello(f"node{100 + i}")))
                s.recv(100)  # version 1 answered with its Hello (and raised the frame limit)
                s.sendall(struct.pack(">I", 64 << 20))
                for _ in range(64):
                    s.sendall(b"\0" * (64 << 10))
                    sent += 64 << 10
            except (OSError, socket.timeout):
                pass  # refused: the node closed the connection or stopped reading
            socks.append(s)
        # 40 silent strangers more (over cluster.max_handshaking_peers): a member
        # restarted meanwhile still rejoins, its handshake taking the oldest one's slot.
        socks += [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        n2.stop()
        n2.start()
        self.cluster.wait_connected()
        rss_after = rss_kib(n1.pid)
        print(f"\n  24 strangers announcing 64 MiB frames: sent {sent >> 20} MiB before being cut off, "
              f"node1 RSS {rss_before >> 10} -> {rss_after >> 10} MiB", flush=True)
        self.assertLess(rss_after - rss_before, 48 << 10, "node RSS grew by more than 48 MiB")
        for s in socks:
            s.close()

    def test_c2_authenticated_peers_share_one_buffer_budget(self):
        """Even authenticated connections cannot hold more than
        cluster.max_peer_buffer_bytes of receive buffers together: a frame over the
        budget waits (the connection stops reading) instead of being buffered."""
        node = extra_node(self.cluster, "budget", "budget", 1,
                          "--set", "cluster.max_peer_buffer_bytes=16777216")
        try:
            node.start()
            port = peer_port_of(node)
            rss_before = rss_kib(node.pid)
            socks = []
            for i in range(8):
                s = PeerSocket(port)
                verified, result = s.handshake(f"m{i}", self.cluster_id, self.secrets[0], "budget",
                                               instance=f"m{i}.1")
                self.assertTrue(verified)
                self.assertEqual(result, [62, 0, ""])
                socks.append(s)
            # Each announces a 30 MiB frame and sends up to 24 MiB of it.
            accepted = 0
            for s in socks:
                s.sock.settimeout(0.5)
                try:
                    s.sock.sendall(struct.pack(">I", 30 << 20))
                    for _ in range(24 * 16):
                        s.sock.sendall(b"\0" * (64 << 10))
                        accepted += 64 << 10
                except (OSError, socket.timeout):
                    pass
            wait_until(lambda: int(info(node)["peer_reads_paused"]) >= 1, timeout=5,
                       what="a connection to wait for buffer budget")
            buffered = int(info(node)["peer_buffer_bytes"])
            rss_after = rss_kib(node.pid)
            print(f"\n  8 members x 30 MiB frames, budget 16 MiB: node buffered {buffered >> 20} MiB "
                  f"(charged), RSS {rss_before >> 10} -> {rss_after >> 10} MiB", flush=True)
            # One frame may exceed the budget on its own (it is always admitted when
            # nobody else holds budget); the others wait holding a read chunk each.
            self.assertLess(buffered, (30 << 20) + (2 << 20))
            if not SANITIZED:  # ASan's RSS holds freed chunks (quarantine) and shadow memory
                self.assertLess(rss_after - rss_before, 64 << 10)
            for s in socks:
                s.close()
            # Everything is given back once they go.
            wait_until(lambda: int(info(node)["peer_buffer_bytes"]) == 0, timeout=5,
                       what="the budget to be returned")
        finally:
            node.cleanup()


class StartChecks(unittest.TestCase):
    def setUp(self):
        self.nodes = []
        self.clusters = []

    def tearDown(self):
        for n in self.nodes:
            n.cleanup()
        for c in self.clusters:
            c.cleanup()

    def test_d_data_dir_of_another_cluster_is_refused(self):
        node = Node()
        self.nodes.append(node)
        node.start()
        node.stop()
        other = make_secret(os.path.join(node.tmp, "other.secret"))
        code, out = run_itsukad("--port", str(free_port()), "--data-dir", node.data_dir,
                                "--node-id", "node1", "--set", f"cluster.secret_file={other}")
        self.assertNotEqual(code, 0)
        self.assertIn(f"node.data_dir '{node.data_dir}' belongs to cluster", out)
        self.assertIn("but this node is configured for cluster", out)
        # Its own secret still opens it.
        node.start()

    def test_d2_secret_file_must_be_private_and_well_formed(self):
        node = Node()
        self.nodes.append(node)
        os.chmod(node.secret_file, 0o644)
        code, out = run_itsukad("--port", str(free_port()), "--data-dir", node.data_dir,
                                "--set", f"cluster.secret_file={node.secret_file}")
        self.assertNotEqual(code, 0)
        self.assertIn(node.secret_file, out)
        self.assertIn("chmod 600", out)
        short = os.path.join(node.tmp, "short.secret")
        fd = os.open(short, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"cluster-id " + b"ab" * 16 + b"\nsecret " + b"cd" * 8 + b"\n")
        os.close(fd)
        code, out = run_itsukad("--port", str(free_port()), "--data-dir", node.data_dir,
                                "--set", f"cluster.secret_file={short}")
        self.assertNotEqual(code, 0)
        self.assertIn("too short", out)
        # --gen-secret makes a private, valid file that a node starts with.
        made = os.path.join(node.tmp, "made.secret")
        code, out = run_itsukad("--gen-secret", made)
        self.assertEqual(code, 0, out)
        self.assertEqual(os.stat(made).st_mode & 0o777, 0o600)
        self.assertNotIn(open(made).read().split("secret ")[-1].strip(), out)  # never printed
        node.secret_file = made
        node.start()
        self.assertNotIn(read_secret(made)[1][0].hex(), redis_cli(node.port, "CONFIG", "GET", "*"))

    def test_e_duplicate_node_id_is_refused(self):
        cluster = Cluster(2)
        self.clusters.append(cluster)
        cluster.start()
        n1, n2 = cluster.nodes
        # A second "node2" (its own data directory) joins through node1.
        dup = extra_node(cluster, "node2-again", "node2", peer_port_of(n1))
        self.nodes.append(dup)
        with open(dup.log_path, "ab") as log:
            dup.proc = subprocess.Popen(dup.argv(), stdout=log, stderr=subprocess.STDOUT)
        code = dup.proc.wait(timeout=20)
        self.assertEqual(code, 1)
        self.assertIn("node id 'node2' is already in use", dup.log_tail())
        self.assertIn("give this node its own node.id", dup.log_tail())
        self.assertIn("node id 'node2' is already in use", n1.log_tail())
        self.assertGreaterEqual(int(info(n1)["peer_duplicate_nodes_refused"]), 1)
        self.assertEqual(member_ids(n1), ["node1", "node2"])
        # The real node2, restarted with its own data directory, is back at once.
        n2.stop()
        n2.start()
        cluster.wait_connected()
        self.assertEqual(redis_cli(n1.port, "SET", "k", "v", "W", "all"), "OK")

    def test_g_secret_rotation_in_two_rolling_restarts(self):
        cluster = Cluster(2)
        self.clusters.append(cluster)
        cluster.start()
        n1, n2 = cluster.nodes
        cid, (old,) = read_secret(cluster.secret_file)

        def write(name, keys):
            path = os.path.join(cluster.tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"cluster-id {cid.hex()}\n" + "".join(f"secret {k.hex()}\n" for k in keys))
            return path

        new = os.urandom(32)
        both, only_new = write("both.secret", [old, new]), write("new.secret", [new])
        # Step 1: every node gets both secrets, one at a time; each restart rejoins.
        for n in (n1, n2):
            n.stop()
            n.secret_file = both
            n.start()
            cluster.wait_connected()
        # Step 2: the old secret goes, again one at a time.
        n1.stop()
        n1.secret_file = only_new
        n1.start()
        cluster.wait_connected()  # node1 (new only) and node2 (both) still agree
        n2.stop()
        n2.secret_file = only_new
        n2.start()
        cluster.wait_connected()
        self.assertEqual(redis_cli(n1.port, "SET", "rotated", "yes", "W", "all"), "OK")
        # A node still holding only the old secret is now refused.
        stale = extra_node(cluster, "stale", "node3", peer_port_of(n1))  # the original file
        self.nodes.append(stale)
        stale.start()
        wait_until(lambda: int(info(stale)["peer_auth_failures"]) >= 1, timeout=10,
                   what="the stale node to fail node1's proof")
        self.assertEqual(member_ids(n1), ["node1", "node2"])

    def test_f_no_secret_refuses_to_start_unless_insecure(self):
        base = [ITSUKAD, "--port", str(free_port())]
        node = Node(secret_file="")
        self.nodes.append(node)
        def seeds():
            return ["--set", "cluster.seeds=node2@127.0.0.1:1", "--set", f"cluster.peer_port={free_port()}"]
        code, out = run_itsukad(*base[1:], "--data-dir", node.data_dir, *seeds())
        self.assertEqual(code, 2)
        self.assertIn("cluster.secret_file", out)
        self.assertIn("insecure_no_auth", out)
        insecure = Node(*seeds(), "--set", "cluster.insecure_no_auth=true", secret_file="")
        self.nodes.append(insecure)
        insecure.start()
        self.assertEqual(info(insecure)["peer_auth"], "off")
        self.assertIn("peers are NOT authenticated", insecure.log_tail())
        secure = Node(*seeds())
        self.nodes.append(secure)
        secure.start()
        self.assertEqual(info(secure)["peer_auth"], "on")


if __name__ == "__main__":
    unittest.main()
