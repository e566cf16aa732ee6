"""Multi-process test helpers: start real itsukad processes, talk RESP to them.

Every process is started here and recorded by pid; only those pids are signalled.
Waits poll for a condition with a bound; nothing sleeps for readiness. Processes still
running when the interpreter exits (a test that crashed before its tearDown, Ctrl-C,
SIGTERM to the runner) are stopped by an atexit hook.
"""
import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ITSUKAD = os.environ.get("ITSUKAD", "build/bin/itsukad")
# True when the suite runs against the sanitizer build (tools/test sets ASAN_OPTIONS):
# figures such as RSS then include the sanitizer's own memory.
SANITIZED = "ASAN_OPTIONS" in os.environ

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "fault"))
from resp import Client, Closed, RespError  # noqa: E402,F401  (shared with the fault harness)


class PortRange:
    """Free loopback ports from [lo, hi), walked from `start` on; with `peer` set, a port
    is handed out only if port + 10000 (a node's default peer port) is free too."""

    def __init__(self, lo, hi, start, peer=False):
        self.lo, self.hi, self.next, self.peer = lo, hi, lo + (start - lo) % (hi - lo), peer

    def take(self):
        for _ in range(self.hi - self.lo):
            p = self.next
            self.next = self.lo + (p - self.lo + 1) % (self.hi - self.lo)
            try:
                for q in (p, p + 10000) if self.peer else (p,):
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", q))
            except OSError:
                continue
            return p
        raise AssertionError(f"no free port in {self.lo}-{self.hi - 1}")


# Ports are handed out from 11000-17999, below Linux's ephemeral range (32768-60999):
# a port picked there as free could be taken, before the node binds it, as the source
# port of some outgoing connection (a peer's dial), and the node would then fail to
# listen (a CI run under ASan timed out waiting for a cluster's peers). Each process
# starts at its own offset and walks the range, skipping ports it cannot bind.
_ports = PortRange(11000, 18000, 11000 + (os.getpid() * 37) % 7000)


def free_port():
    return _ports.take()


def wait_until(cond, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_secret(path, cluster_id=None):
    """Writes a cluster secret file (mode 0600) like `itsukad --gen-secret`; returns path."""
    cluster_id = cluster_id or secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"cluster-id {cluster_id}\nsecret {secrets.token_hex(32)}\n")
    return path


def read_secret(path):
    """(cluster id bytes, [secret bytes]) of a secret file."""
    cid, keys = None, []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "cluster-id":
                cid = bytes.fromhex(parts[1])
            elif len(parts) == 2 and parts[0] == "secret":
                keys.append(bytes.fromhex(parts[1]))
    return cid, keys


_running = set()  # Nodes whose process this module started and has not stopped yet


@atexit.register
def _stop_leftovers():
    for node in list(_running):
        node.cleanup()


class Node:
    """One itsukad process with its own data directory and port."""

    def __init__(self, *extra, data_dir=None, port=None, node_id="node1", secret_file=None):
        """secret_file: the cluster secret (cluster.secret_file); None makes one of its
        own next to the data directory, "" passes none."""
        self.tmp = None
        if data_dir is None:
            self.tmp = tempfile.mkdtemp(prefix="itsuka-it-")
            data_dir = os.path.join(self.tmp, "data")
        self.data_dir = data_dir
        if secret_file is None:
            secret_file = os.path.join(self.tmp or os.path.dirname(data_dir), "node.secret")
            if not os.path.exists(secret_file):
                make_secret(secret_file)
        self.secret_file = secret_file
        self.port = port or free_port()
        self.node_id = node_id
        self.extra = list(extra)
        self.proc = None
        self.log_path = os.path.join(self.tmp or os.path.dirname(data_dir), "itsukad.log")
        self.env = None  # environment of the process (None: this one's), e.g. for libfaketime
        self.exe = None  # another itsukad binary (None: ITSUKAD), e.g. an older build

    def argv(self):
        auth = ["--set", f"cluster.secret_file={self.secret_file}"] if self.secret_file else []
        return [self.exe or ITSUKAD, "--port", str(self.port), "--data-dir", self.data_dir,
                "--node-id", self.node_id] + auth + self.extra

    def start(self):
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env)
        _running.add(self)
        wait_until(self._ready, timeout=20, what=f"itsukad on port {self.port}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"itsukad exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            c = Client(self.port, timeout=1)
            c.close()
            return True
        except OSError:
            return False

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def client(self):
        return Client(self.port)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # a SIGSTOPped node cannot handle SIGTERM
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None
        _running.discard(self)

    def cleanup(self):
        self.stop()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def info(node, section):
    """One INFO section of a node as a dict."""
    c = node.client()
    try:
        text = c.call("INFO", section).decode()
    finally:
        c.close()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def redis_cli(port, *args, password=None):
    cmd = ["redis-cli", "-p", str(port)]
    if password:
        cmd += ["-a", password, "--no-auth-warning"]
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace").rstrip("\n")


def redis_py_interpreter():
    """A Python that can import redis-py: this one, or Debian's (python3-redis); None if
    neither can (tests that need it skip)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(exe) and subprocess.run([exe, "-c", "import redis"],
                                                  capture_output=True).returncode == 0:
            return exe
    return None


class Cluster:
    """N itsukad processes on loopback that know each other as seeds."""

    def __init__(self, n=3, *extra):
        self.tmp = tempfile.mkdtemp(prefix="itsuka-cl-")
        self.secret_file = make_secret(os.path.join(self.tmp, "cluster.secret"))
        ports = [free_port() for _ in range(n)]
        peer_ports = [free_port() for _ in range(n)]
        self.nodes = []
        for i in range(n):
            seeds = ",".join(f"node{j + 1}@127.0.0.1:{peer_ports[j]}" for j in range(n) if j != i)
            d = os.path.join(self.tmp, f"node{i + 1}")
            os.makedirs(d)
            node = Node("--set", f"cluster.peer_port={peer_ports[i]}", "--set", f"cluster.seeds={seeds}",
                        *extra, data_dir=os.path.join(d, "data"), port=ports[i],
                        node_id=f"node{i + 1}", secret_file=self.secret_file)
            node.log_path = os.path.join(d, "itsukad.log")
            self.nodes.append(node)

    def start(self):
        for node in self.nodes:
            node.start()
        self.wait_connected()
        return self

    def peers_up(self, node):
        c = node.client()
        try:
            return c.call("INFO", "cluster").decode().count("state=up")
        finally:
            c.close()

    def members_up(self, node):
        """Members this node's gossiped view shows as up, or -1 while any is joining."""
        c = node.client()
        try:
            info = c.call("INFO", "cluster").decode()
        finally:
            c.close()
        return -1 if ",status=joining" in info else info.count(",status=up")

    def wait_connected(self, nodes=None):
        nodes = nodes or [n for n in self.nodes if n.proc is not None]
        want = len(nodes) - 1
        wait_until(lambda: all(self.peers_up(n) >= want for n in nodes), timeout=20,
                   what="every node to see its peers")
        # ... and the gossiped membership has formed the ring (nobody still joining).
        wait_until(lambda: all(self.members_up(n) >= len(nodes) for n in nodes), timeout=20,
                   what="every node to see the members up")
        # ... and every node restarted from its data directory has heard a majority
        # (the membership gate, docs/DESIGN.md 4.3.1).
        wait_until(lambda: all(self.gate_open(n) for n in nodes), timeout=20,
                   what="every node's membership gate to open")

    def gate_open(self, node):
        c = node.client()
        try:
            return "membership_gate:waiting" not in c.call("INFO", "cluster").decode()
        finally:
            c.close()

    def cleanup(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
