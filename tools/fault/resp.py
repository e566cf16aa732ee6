"""A minimal blocking RESP2 client (binary safe), shared by the fault harness and the
multi-process tests."""
import socket


class RespError(Exception):
    """An error reply (-ERR ...), returned as a value so callers can compare it."""


class Closed(Exception):
    pass


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=10.0, ssl_context=None):
        """With ssl_context (an ssl.SSLContext), the connection speaks TLS."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            try:
                self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
            except BaseException:
                self.sock.close()
                raise
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.read()

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise Closed("connection closed by server")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            val, self.buf = self.buf[:n], self.buf[n + 2:]
            return val
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(f"malformed reply line {line!r}")

    def read_until_closed(self, timeout=5.0):
        """Everything the server sends until it closes the connection."""
        self.sock.settimeout(timeout)
        out = self.buf
        self.buf = b""
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                raise AssertionError(f"server did not close the connection; got {out[:200]!r}")
            except ConnectionResetError:
                return out
            if not data:
                return out
            out += data
