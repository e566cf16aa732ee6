"""A rolling upgrade of a loaded 3-node cluster, node by node, shared by
test_upgrade.py (the new build capped at the old protocol version stands in for the old
build) and tools/upgrade-test (a real older build, built from a git revision).

While writers and readers run against every node, each node in turn is stopped
(SIGTERM), given the new binary and arguments, restarted, and waited for until every
node sees its peers again. Every acknowledged write must then read back with R=all,
and the only client errors allowed are the ones a restarting node causes: -TIMEOUT,
-UNAVAILABLE, -TRYAGAIN (the restarted node's membership gate), and a refused or closed
connection to the node that is down."""
import threading
import time

from harness import Closed, Cluster, RespError, info, wait_until

# -TRYAGAIN is what a just-restarted node answers until its membership gate opens
# (docs/DESIGN.md 4.3.1): part of "the moment a node restarts" too. Counted apart.
ALLOWED = ("TIMEOUT", "UNAVAILABLE", "TRYAGAIN")


class Load:
    """Writers (SET, W=quorum) and readers (GET of acknowledged keys) on every node."""

    def __init__(self, nodes, threads_per_node=1):
        self.nodes = nodes
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}        # key -> value last acknowledged
        self.allowed = {}      # error class -> count
        self.bad = []          # anything else (wrong value, other errors)
        self.ops = 0
        self.threads = [threading.Thread(target=self.run, args=(i, t), daemon=True)
                        for i in range(len(nodes)) for t in range(threads_per_node)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def count(self, what):
        with self.lock:
            self.allowed[what] = self.allowed.get(what, 0) + 1

    def run(self, i, t):
        seq = 0
        client = None
        while not self.stop_flag.is_set():
            node = self.nodes[i]
            key = f"u:{i}:{t}:{seq % 400}"
            value = f"v{seq}"
            try:
                if client is None:
                    client = node.client()
                r = client.call("SET", key, value)
                if r == "OK":
                    with self.lock:
                        self.acked[key] = value
                        self.ops += 1
                elif isinstance(r, RespError) and str(r).split(" ")[0] in ALLOWED:
                    self.count(str(r).split(" ")[0])
                    time.sleep(0.01)  # a gated node answers at once: no busy loop
                    # An unacknowledged write may or may not have landed: forget the key.
                    with self.lock:
                        self.acked.pop(key, None)
                else:
                    with self.lock:
                        self.bad.append(f"SET {key} on {node.node_id}: {r!r}")
                seq += 1
                if seq % 4 == 0:
                    self.read_one(client, node)
            except (OSError, Closed, ConnectionError):
                self.count("connection")
                with self.lock:
                    self.acked.pop(key, None)  # a SET in flight may or may not have landed
                seq += 1
                client = None
                time.sleep(0.05)
        if client is not None:
            client.close()

    def read_one(self, client, node):
        with self.lock:
            if not self.acked:
                return
            key, value = next(iter(self.acked.items()))
        r = client.call("GET", key)
        if isinstance(r, RespError):
            if str(r).split(" ")[0] in ALLOWED:
                self.count(str(r).split(" ")[0])
            else:
                with self.lock:
                    self.bad.append(f"GET {key} on {node.node_id}: {r!r}")
        # A GET may race a newer SET of the same key; values are checked at the end.

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)


def get_all(node, key, timeout=20):
    c = node.client()
    try:
        deadline = time.monotonic() + timeout
        while True:
            r = c.call("GET", key, "R", "all")
            if not (isinstance(r, RespError) and str(r).split(" ")[0] in ALLOWED) or \
                    time.monotonic() > deadline:
                return r
            time.sleep(0.1)
    finally:
        c.close()


def peer_protocols(node):
    """The protocol of each of the node's outgoing peer connections (INFO cluster),
    {} from a build that does not report it."""
    out = {}
    for k, v in info(node, "cluster").items():
        if k.startswith("peer") and k[4:].isdigit() and ",protocol=" in v:
            fields = dict(f.split("=", 1) for f in v.split(",") if "=" in f)
            out[fields["id"]] = int(fields["protocol"])
    return out


def rolling_upgrade(old_exe, new_exe, old_args=(), new_args=(), settle_s=3.0, log=print,
                    on_mixed=None):
    """Runs the upgrade; returns a report dict. `on_mixed(cluster, upgraded)` is called
    after each restart, while old and new builds run side by side."""
    common = ("--set", "cluster.partitions=16")
    cluster = Cluster(3, *common)
    report = {"restarts": []}
    try:
        for node in cluster.nodes:
            node.exe = old_exe
            node.base_extra = list(node.extra)
            node.extra = node.base_extra + list(old_args)
        cluster.start()
        load = Load(cluster.nodes).start()
        time.sleep(settle_s)
        for idx, node in enumerate(cluster.nodes):
            t0 = time.monotonic()
            node.stop()
            node.exe = new_exe
            node.extra = node.base_extra + list(new_args)
            node.start()
            cluster.wait_connected()
            took = time.monotonic() - t0
            report["restarts"].append(round(took, 2))
            log(f"{node.node_id} restarted on the new build in {took:.1f} s; "
                f"{load.ops} writes acknowledged so far")
            # What the upgraded node speaks with each peer while old and new run side by side.
            report.setdefault("mixed_protocols", []).append(
                {node.node_id: peer_protocols(node)})
            if on_mixed is not None:
                on_mixed(cluster, idx + 1)
            time.sleep(settle_s)
        load.finish()
        report["writes_acked"] = load.ops
        report["allowed_errors"] = dict(load.allowed)
        report["bad"] = list(load.bad)
        lost = []
        for key, value in sorted(load.acked.items()):
            r = get_all(cluster.nodes[hash(key) % 3], key)
            if r != value.encode():
                lost.append(f"{key}: {r!r}, expected {value}")
        report["keys_checked"] = len(load.acked)
        report["lost"] = lost
        report["protocols"] = {n.node_id: peer_protocols(n) for n in cluster.nodes}
        report["refused"] = {n.node_id: int(info(n, "cluster").get("peer_messages_refused", "0"))
                             for n in cluster.nodes}
        return report
    finally:
        cluster.cleanup()
