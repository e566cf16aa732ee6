"""The peer port bounds what a connection that has not shaken hands can cost: one small
frame, a few seconds, and a cap on handshaking connections (apart from the members')."""
import socket
import struct
import time
import unittest

from harness import Cluster, wait_until


def peer_port_of(node):
    return int([a for a in node.argv() if a.startswith("cluster.peer_port=")][0].split("=")[1])


def closed_within(sock, seconds):
    """True if the peer closes the socket (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def cluster_info(node):
    c = node.client()
    try:
        text = c.call("INFO", "cluster").decode()
    finally:
        c.close()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


class PeerPortLimits(unittest.TestCase):
    def test_strangers_are_bounded_in_size_time_and_number(self):
        cluster = Cluster(2, "--set", "cluster.max_handshaking_peers=2").start()
        try:
            n1 = cluster.nodes[0]
            port = peer_port_of(n1)
            # A frame far below the general limit but above the handshake limit is
            # refused from its header, without waiting for its body.
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(struct.pack(">I", 1 << 20) + b"x" * 16)
            self.assertTrue(closed_within(s, 3), "a 1 MiB frame before Hello was accepted")
            s.close()
            # Two silent strangers fill the two handshaking slots (node2's authenticated
            # connection is not counted); a third stranger takes the oldest one's slot.
            wait_until(lambda: int(cluster_info(n1)["peer_connections_refused"]) == 0, timeout=5,
                       what="info")
            oldest = socket.create_connection(("127.0.0.1", port), timeout=5)
            wait_until(lambda: int(cluster_info(n1)["peer_connections_handshaking"]) == 1, timeout=5,
                       what="the first stranger to be accepted")
            idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
            self.assertTrue(closed_within(oldest, 1.5), "the oldest handshake kept its slot")
            oldest.close()
            self.assertGreaterEqual(int(cluster_info(n1)["peer_connections_refused"]), 1)
            # Silent connections are closed after the handshake timeout (3 s).
            started = time.monotonic()
            for s in idle:
                self.assertTrue(closed_within(s, 10), "a silent connection was kept open")
                s.close()
            self.assertGreater(time.monotonic() - started, 2)
            self.assertGreaterEqual(int(cluster_info(n1)["peer_handshakes_timed_out"]), 2)
            # The members' own connections were never disturbed.
            c = n1.client()
            self.assertEqual(c.call("SET", "still", "fine", "W", "all"), "OK")
            c.close()
        finally:
            cluster.cleanup()


if __name__ == "__main__":
    unittest.main()
