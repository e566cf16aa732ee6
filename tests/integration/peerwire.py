"""Speaking the peer protocol from a test: frames are a 4-byte big-endian length and
msgpack ([type, fields...], src/wire/peer_codec.h); the handshake is the mutual HMAC
challenge-response of src/server/peers.h (protocol version 5), proofs as in
src/server/peer_auth.h. Shared by the tests that speak as a stranger (test_peer_auth)
and as an authenticated peer (test_peer_checks)."""
import hashlib
import hmac
import os
import socket
import struct

from harness import read_secret


# ---- A tiny msgpack (python3-msgpack is not a dependency) ---------------------------

def pack(o):
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack(">b", o)
        if o < 0:
            return b"\xd3" + struct.pack(">q", o)
        if o < 1 << 8:
            return b"\xcc" + struct.pack(">B", o)
        if o < 1 << 16:
            return b"\xcd" + struct.pack(">H", o)
        if o < 1 << 32:
            return b"\xce" + struct.pack(">I", o)
        return b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + struct.pack(">B", len(b)) + b
        return (b"\xda" + struct.pack(">H", len(b)) if len(b) < 1 << 16 else
                b"\xdb" + struct.pack(">I", len(b))) + b
    if isinstance(o, bytes):
        if len(o) < 256:
            return b"\xc4" + struct.pack(">B", len(o)) + o
        return (b"\xc5" + struct.pack(">H", len(o)) if len(o) < 1 << 16 else
                b"\xc6" + struct.pack(">I", len(o))) + o
    if isinstance(o, list):
        head = (bytes([0x90 | len(o)]) if len(o) < 16 else
                b"\xdc" + struct.pack(">H", len(o)) if len(o) < 1 << 16 else
                b"\xdd" + struct.pack(">I", len(o)))
        return head + b"".join(pack(x) for x in o)
    raise TypeError(type(o))


def unpack(b, i=0):
    """(value, next index) for the subset the handshake uses."""
    t = b[i]
    if t < 0x80:
        return t, i + 1
    if 0x90 <= t <= 0x9f or t == 0xdc:
        n, i = (t & 15, i + 1) if t != 0xdc else (struct.unpack(">H", b[i + 1:i + 3])[0], i + 3)
        out = []
        for _ in range(n):
            v, i = unpack(b, i)
            out.append(v)
        return out, i
    if 0xa0 <= t <= 0xbf:
        n = t & 31
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if t in (0xd9, 0xc4):
        n = b[i + 1]
        v = b[i + 2:i + 2 + n]
        return (v.decode() if t == 0xd9 else bytes(v)), i + 2 + n
    if t in (0xda, 0xc5):
        n = struct.unpack(">H", b[i + 1:i + 3])[0]
        v = b[i + 3:i + 3 + n]
        return (v.decode() if t == 0xda else bytes(v)), i + 3 + n
    if t == 0xcc:
        return b[i + 1], i + 2
    if t == 0xcd:
        return struct.unpack(">H", b[i + 1:i + 3])[0], i + 3
    if t == 0xce:
        return struct.unpack(">I", b[i + 1:i + 5])[0], i + 5
    if t == 0xcf:
        return struct.unpack(">Q", b[i + 1:i + 9])[0], i + 9
    if t in (0xc2, 0xc3):
        return t == 0xc3, i + 1
    raise ValueError(f"msgpack type {t:#x}")


def frame(msg):
    body = pack(msg)
    return struct.pack(">I", len(body)) + body


def proof(secret, role, cluster_id, initiator, acceptor, n_i, n_a):
    msg = b""
    for field in (b"itsuka-peer-auth-v2", role.encode(), cluster_id, initiator.encode(),
                  acceptor.encode(), n_i, n_a):
        msg += struct.pack(">I", len(field)) + field
    return hmac.new(secret, msg, hashlib.sha256).digest()


def peer_port_of(node):
    return int([a for a in node.argv() if a.startswith("cluster.peer_port=")][0].split("=")[1])


class PeerSocket:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, *msgs):
        self.sock.sendall(b"".join(frame(m) for m in msgs))

    def recv(self):
        """The next message, or None once the node closed the connection."""
        def exactly(n):
            buf = b""
            while len(buf) < n:
                try:
                    chunk = self.sock.recv(n - len(buf))
                except ConnectionResetError:
                    return None
                if not chunk:
                    return None
                buf += chunk
            return buf
        head = exactly(4)
        if head is None:
            return None
        body = exactly(struct.unpack(">I", head)[0])
        return None if body is None else unpack(body)[0]

    def closed(self, seconds=5):
        """True once the node closes (reading and discarding what it sends first)."""
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(4096):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def handshake(self, node_id, cluster_id, secret, acceptor_id, instance="stranger.1"):
        """Runs the dialler's side; returns (acceptor proof verified, AuthResult or None)."""
        n_i = os.urandom(32)
        self.send([60, "itsuka", cluster_id, 5, node_id, instance, n_i])
        hello = self.recv()
        if hello is None or hello[0] != 60:
            return False, hello
        n_a = hello[6]
        theirs = self.recv()
        good = theirs is not None and theirs[0] == 61 and any(
            hmac.compare_digest(m, proof(secret, "acceptor", cluster_id, node_id, acceptor_id, n_i, n_a))
            for m in theirs[1])
        self.send([61, [proof(secret, "initiator", cluster_id, node_id, acceptor_id, n_i, n_a)]])
        return good, self.recv()

    def close(self):
        self.sock.close()


def authenticated_session(node, node_id, instance):
    """A PeerSocket to `node` that completed the handshake as `node_id` (instance id
    `instance`) with the secret of node.secret_file; raises AssertionError if it did not."""
    cluster_id, secrets = read_secret(node.secret_file)
    s = PeerSocket(peer_port_of(node))
    verified, result = s.handshake(node_id, cluster_id, secrets[0], node.node_id, instance=instance)
    if not verified or result != [62, 0, ""]:
        s.close()
        raise AssertionError(f"the handshake as {node_id!r} (instance {instance!r}) failed: "
                             f"acceptor proof verified={verified}, AuthResult {result!r}")
    return s
