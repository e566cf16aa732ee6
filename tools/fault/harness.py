"""The itsuka fault harness: real itsukad processes, nemeses, recorded histories, checkers.

    run(options) -> results dict (also written as JSON and HTML into options.report_dir)

A run starts N nodes (in network namespaces, or on loopback), lets several client
threads drive one workload against different nodes while a seeded nemesis injects
faults, then heals everything, lets the cluster quiesce, reads the final state with
R=all (which also repairs replicas), measures convergence and runs the checkers.
Processes are signalled only by the pids this harness recorded when it started them.
"""
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import checkers
import membership
import report
from hosts import LoopbackHosts, NetnsHosts, free_tag, netns_available
from resp import Client, Closed, RespError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def now_ns():
    return time.monotonic_ns()


# ---- the cluster ------------------------------------------------------------------------

class Cluster:
    """Node slots 0..slots-1: the first n are the initial members, the rest spares that
    a membership nemesis may join. `members` is who the harness counts as a member
    (joined and not decommissioned); `held` are members a nemesis keeps down; `zombies`
    are decommissioned nodes restarted from their stale data directory."""

    def __init__(self, hosts, n, itsukad, workdir, extra_settings, tls_dir=None, slots=None):
        self.hosts, self.n, self.itsukad, self.workdir = hosts, n, itsukad, workdir
        self.slots = slots or n
        self.extra = extra_settings
        self.tls_dir = tls_dir  # certificates from tools/make-certs: peers speak TLS
        self.procs = {}      # i -> Popen
        self.skew = {}       # i -> seconds of clock skew the node was started with
        self.logs = {}       # i -> the node's stderr file
        self.members = set(range(n))
        self.held, self.zombies = set(), set()
        self.closing = False  # set by stop_all: nothing starts any more
        self.lock = threading.Lock()

    def node_id(self, i):
        return f"node{i + 1}"

    def active(self):
        return sorted(self.members)

    def targets(self):
        """Nodes clients may talk to: members, and left nodes running from a stale view."""
        return sorted(self.members | self.zombies)

    def spare(self):
        """A slot never started yet, or None."""
        return next((i for i in range(self.n, self.slots) if i not in self.procs), None)

    def add_member(self, i):
        self.members.add(i)
        self.start(i)

    def remove_member(self, i):
        self.members.discard(i)

    def stop(self, i):
        """SIGTERM (after SIGCONT) to the node this harness started, SIGKILL after 10 s."""
        self.signal(i, signal.SIGCONT)
        self.signal(i, signal.SIGTERM)
        p = self.procs.get(i)
        if p is not None:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def member_view(self, i, timeout=1.0):
        """Node i's INFO cluster member list, id -> status ({} if it does not answer)."""
        if not self.alive(i):
            return {}
        try:
            c = self.client(i, timeout=timeout)
            info = c.call("INFO", "cluster")
            c.close()
        except (OSError, Closed, ValueError):
            return {}
        if not isinstance(info, bytes):
            return {}
        view = {}
        for line in info.decode().split("\r\n"):
            if line.startswith("member") and ":id=" in line:
                fields = dict(f.split("=", 1) for f in line.split(":", 1)[1].split(",") if "=" in f)
                view[fields.get("id")] = fields.get("status")
        return view

    def secret_file(self):
        """The cluster's secret (cluster.secret_file), made once per cluster (mode 0600)."""
        path = os.path.join(self.workdir, "cluster.secret")
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"cluster-id {secrets.token_hex(16)}\nsecret {secrets.token_hex(32)}\n")
        return path

    def config(self, i):
        d = os.path.join(self.workdir, f"node{i + 1}")
        os.makedirs(d, exist_ok=True)
        # The current members (a spare joins through them; a restarted node has its
        # saved view and uses seeds only to bootstrap).
        seeds = ", ".join(f'"node{j + 1}@{self.hosts.ip(j)}:{self.hosts.peer_port(j)}"'
                          for j in sorted(self.members) if j != i)
        path = os.path.join(d, "itsuka.toml")
        with open(path, "w") as f:
            f.write(f'[node]\nid = "node{i + 1}"\ndata_dir = "{d}/data"\n'
                    f'[server]\nbind = "{self.hosts.ip(i)}"\nport = {self.hosts.client_port(i)}\n'
                    f'[cluster]\npeer_port = {self.hosts.peer_port(i)}\nseeds = [{seeds}]\n'
                    f'request_timeout_ms = 1000\nsecret_file = "{self.secret_file()}"\n'
                    f'[log]\nfile = "{d}/itsukad.log"\n')
            if self.tls_dir:
                t = self.tls_dir
                f.write(f'[tls]\npeers = true\ncert_file = "{t}/node.crt"\nkey_file = "{t}/node.key"\n'
                        f'ca_cert_file = "{t}/ca.crt"\n')
        return path

    def start(self, i, skew_s=0):
        with self.lock:
            if self.closing:
                return
            cmd = self.hosts.prefix(i)
            env = dict(os.environ)
            if skew_s:
                # The wall clock moves; the monotonic clock (timeouts) is left alone.
                # libfaketime is preloaded directly rather than through the faketime
                # program, which would run itsukad as its child: the pid recorded here
                # must be itsukad's, or kill -9 and SIGSTOP would miss it.
                env["LD_PRELOAD"] = FAKETIME_LIB
                env["FAKETIME"] = f"{skew_s:+d}s"
                env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
                # libfaketime is preloaded; let an ASan build accept that.
                env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                             "verify_asan_link_order=0"]))
            cmd += [self.itsukad, "--config", self.config(i)]
            for kv in self.extra:
                cmd += ["--set", kv]
            if i in self.logs:
                self.logs[i].close()
            self.logs[i] = open(os.path.join(self.workdir, f"node{i + 1}", "stderr.log"), "ab")
            self.procs[i] = subprocess.Popen(cmd, stdout=self.logs[i], stderr=self.logs[i], env=env)
            self.skew[i] = skew_s

    def wait_serving(self, i, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = self.client(i, timeout=1)
                ok = c.call("PING") == "PONG"
                c.close()
                if ok:
                    return True
            except (OSError, Closed):
                pass
            if self.procs[i].poll() is not None:
                with open(os.path.join(self.workdir, f"node{i + 1}", "stderr.log"), "rb") as f:
                    tail = f.read()[-1500:].decode(errors="replace")
                raise RuntimeError(f"node{i + 1} exited: {self.procs[i].returncode}\n{tail}")
            time.sleep(0.05)
        raise RuntimeError(f"node{i + 1} does not answer")

    def peers_up(self, i):
        """Node i's connected peers, once its view has every member up and nothing
        joining or leaving (0 before; -1 if it does not answer)."""
        try:
            c = self.client(i, timeout=2)
            info = c.call("INFO", "cluster")
            c.close()
            if not isinstance(info, bytes):
                return 0
            text = info.decode()
            if ",status=joining" in text or ",status=leaving" in text:
                return 0
            if any(f"id={self.node_id(j)},status=up" not in text for j in self.members):
                return 0
            return text.count("state=up")
        except (OSError, Closed):
            return -1

    def wait_formed(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.active()
            if all(self.peers_up(i) >= len(m) - 1 for i in m):
                return True
            time.sleep(0.1)
        return False

    def client(self, i, timeout=3.0):
        return Client(self.hosts.client_port(i), host=self.hosts.ip(i), timeout=timeout)

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def signal(self, i, sig):
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            p.send_signal(sig)   # only ever the pid this harness started

    def kill(self, i):
        self.signal(i, signal.SIGCONT)
        self.signal(i, signal.SIGKILL)
        if i in self.procs:
            self.procs[i].wait(timeout=10)

    def wipe(self, i):
        self.kill(i)
        shutil.rmtree(os.path.join(self.workdir, f"node{i + 1}", "data"), ignore_errors=True)
        self.start(i)

    def stop_all(self):
        with self.lock:
            self.closing = True
        for i in list(self.procs):
            self.signal(i, signal.SIGCONT)
            self.signal(i, signal.SIGTERM)
        for i, p in self.procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self.logs.values():
            f.close()


# ---- nemeses ----------------------------------------------------------------------------

PARTITIONS = ("halves", "isolate", "bridge", "ring", "asymmetric")
PROCESS_FAULTS = ("kill", "stop", "skew")


def partition_pairs(kind, n, rng):
    """Directed (from, to) pairs to cut for a partition shape over nodes 0..n-1 (or
    over the node list n)."""
    everyone = list(range(n)) if isinstance(n, int) else list(n)
    n = len(everyone)
    nodes = list(everyone)
    rng.shuffle(nodes)
    if kind == "halves":
        a = set(nodes[: n // 2])
        return [(x, y) for x in everyone for y in everyone if (x in a) != (y in a)]
    if kind == "isolate":
        v = nodes[0]
        return [(x, y) for x in everyone for y in everyone if x != y and v in (x, y)]
    if kind == "bridge":
        # Two halves that cannot talk, and one node that talks to both.
        b = nodes[0]
        left, right = set(nodes[1: 1 + (n - 1) // 2]), set(nodes[1 + (n - 1) // 2:])
        return [(x, y) for x in left for y in right] + [(y, x) for x in left for y in right]
    if kind == "ring":
        # Each node sees only its neighbours on a ring: every node has a majority, no two
        # the same one.
        pos = {v: k for k, v in enumerate(nodes)}
        near = lambda x, y: (pos[x] - pos[y]) % n in (1, n - 1)
        return [(x, y) for x in everyone for y in everyone if x != y and not near(x, y)]
    if kind == "asymmetric":
        v = nodes[0]
        return [(v, y) for y in everyone if y != v]   # v's packets are lost; it hears the others
    raise ValueError(kind)


class Nemesis(threading.Thread):
    """Every `interval` seconds (or a uniform draw in [interval, interval_max]), heals
    what it did and injects one random fault. Membership kinds (membership.MEMBERSHIP)
    act through `members`; a kind that cannot act now (no spare, too few members, a
    change in flight) injects nothing that tick."""

    def __init__(self, cluster, hosts, kinds, rng, interval, t0, stop_event, interval_max=None):
        super().__init__(daemon=True)
        self.cluster, self.hosts, self.kinds, self.rng = cluster, hosts, kinds, rng
        self.interval, self.t0, self.stop_event = interval, t0, stop_event
        self.interval_max = interval_max
        self.schedule = []  # {"start": s, "end": s, "fault": str}
        self.active = None
        self.members = (membership.Membership(cluster, rng, self.note)
                        if any(k in membership.MEMBERSHIP for k in kinds) else None)

    def now(self):
        return (now_ns() - self.t0) / 1e9

    def note(self, what):
        """A membership event: a point in the schedule (it is not healed)."""
        t = self.now()
        self.schedule.append({"start": t, "end": t, "fault": what})

    def log(self, fault):
        """fault: a new fault joins those in effect; None: everything was healed."""
        t = self.now()
        if fault is None:
            for a in self.active or []:
                a["end"] = t
            self.active = []
            return
        entry = {"start": t, "end": None, "fault": fault}
        self.active = (self.active or []) + [entry]
        self.schedule.append(entry)

    def heal(self):
        if self.hosts.partitions:
            self.hosts.heal()
        for i in self.cluster.targets():
            self.cluster.signal(i, signal.SIGCONT)
            if not self.cluster.alive(i) and i not in self.cluster.held and i in self.cluster.members:
                self.cluster.start(i, self.cluster.skew.get(i, 0))
        self.log(None)

    def wait(self):
        if self.interval_max:
            return self.rng.uniform(self.interval, self.interval_max)
        return self.interval * self.rng.uniform(0.5, 1.0)

    def run(self):
        while not self.stop_event.wait(self.wait()):
            if self.cluster.closing:
                return
            kind = self.rng.choice(self.kinds)
            if self.members:
                self.members.tick()
            if kind in membership.MEMBERSHIP:
                what = self.members.act(kind)
                if what:
                    self.note(what)
                    continue
                # No membership change possible now: another kind of fault instead.
                others = [k for k in self.kinds if k not in membership.MEMBERSHIP]
                if not others:
                    continue
                kind = self.rng.choice(others)
            # Faults combine: a third of the time a process fault joins what is already
            # in effect (say, a kill during a partition) instead of replacing it.
            if kind in PARTITIONS or self.rng.random() < 2 / 3:
                self.heal()
            self.inject(kind)
        self.heal()
        if self.members:
            self.members.release()

    def inject(self, kind):
        running = [i for i in self.cluster.targets() if self.cluster.alive(i)]
        if kind in PARTITIONS:
            pairs = partition_pairs(kind, running, self.rng)
            self.hosts.cut(pairs)
            self.log(f"partition {kind}: " + ", ".join(f"{a + 1}->{b + 1}" for a, b in pairs))
            return
        if not running:
            return
        v = self.rng.choice(running)
        if kind == "kill":
            self.cluster.kill(v)
            self.log(f"kill -9 node{v + 1}")
        elif kind == "stop":
            self.cluster.signal(v, signal.SIGSTOP)
            self.log(f"SIGSTOP node{v + 1}")
        elif kind == "skew":
            skew = self.rng.choice([-120, -30, 30, 120])
            self.cluster.kill(v)
            self.cluster.start(v, skew)
            self.log(f"clock skew node{v + 1} {skew:+d}s")


# ---- workloads --------------------------------------------------------------------------

class Recorder:
    def __init__(self, t0):
        self.t0, self.events, self.lock = t0, [], threading.Lock()

    def add(self, process, type, f, key, value, node):
        with self.lock:
            self.events.append({"process": process, "type": type, "f": f, "key": key,
                                "value": value, "time": now_ns() - self.t0, "node": node})


def classify(reply):
    """ok / fail / info for a reply. -TIMEOUT is "outcome unknown", never a failure;
    -UNAVAILABLE and other errors mean nothing was applied."""
    if isinstance(reply, RespError):
        return "info" if str(reply).startswith("TIMEOUT") else "fail"
    return "ok"


class Worker(threading.Thread):
    def __init__(self, process, cluster, workload, rec, deadline, rng, max_ops):
        super().__init__(daemon=True)
        self.p, self.cluster, self.workload, self.rec = process, cluster, workload, rec
        self.deadline, self.rng, self.max_ops = deadline, rng, max_ops
        members = cluster.active()
        self.node = members[process % len(members)]
        self.conn = None
        self.counter = 0

    def connection(self):
        if self.conn is None:
            if self.node not in self.cluster.targets():
                self.node = self.rng.choice(self.cluster.targets())
            self.conn = self.cluster.client(self.node, timeout=3.0)
        return self.conn

    def invoke(self, f, key, value, *cmd):
        """Runs one command, recording invoke and completion; returns (type, reply)."""
        node = f"node{self.node + 1}"
        self.rec.add(self.p, "invoke", f, key, value, node)
        try:
            reply = self.connection().call(*cmd)
        except (OSError, Closed, ValueError):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            # A timeout or a broken connection: the outcome is unknown.
            t = "info"
            self.rec.add(self.p, t, f, key, None, node)
            self.node = self.rng.choice(self.cluster.targets())   # try another node next
            time.sleep(0.05)
            return t, None
        t = classify(reply)
        self.rec.add(self.p, t, f, key, reply if t == "ok" else None, node)
        return t, reply

    def run(self):
        ops = 0
        while time.monotonic() < self.deadline and ops < self.max_ops:
            ops += 1
            getattr(self, "op_" + self.workload)()
        if self.conn is not None:
            self.conn.close()

    # register: quorum reads and writes of small integers; plus default (R=1) reads
    # recorded separately for the stale-read figure.
    def op_register(self):
        time.sleep(0.005)  # paced, so that per-key histories stay checkable
        key = f"r{self.rng.randrange(8)}"
        x = self.rng.random()
        if x < 0.4:
            self.counter += 1
            v = self.p * 1_000_000 + self.counter
            self.invoke("write", key, v, "SET", key, str(v), "W", "quorum")
        elif x < 0.8:
            t, r = self.invoke("read", key, None, "GET", key, "R", "quorum")
            self.fix_read()
        else:
            self.invoke("read1", key, None, "GET", key, "R", "one")
            self.fix_read()

    # cregister: the register workload with CONSISTENT writes and reads (which must be
    # linearizable), plus default R=1 reads of the same keys recorded as "read1" (the
    # same history with default reads, which is expected not to be).
    def op_cregister(self):
        time.sleep(0.005)
        key = f"c{self.rng.randrange(8)}"
        x = self.rng.random()
        if x < 0.4:
            self.counter += 1
            v = self.p * 1_000_000 + self.counter
            self.invoke("write", key, v, "SET", key, str(v), "CONSISTENT")
        elif x < 0.75:
            self.invoke("read", key, None, "GET", key, "CONSISTENT")
            self.fix_read()
        else:
            self.invoke("read1", key, None, "GET", key, "R", "one")
            self.fix_read()

    def fix_read(self):
        """Stores a read's result as an int (or a list when siblings came back)."""
        # This worker's completion: other workers may have recorded events since.
        with self.rec.lock:
            e = next(ev for ev in reversed(self.rec.events) if ev["process"] == self.p)
        v = e["value"]
        if e["type"] == "ok":
            if isinstance(v, list):
                e["value"] = sorted(int(x) for x in v)
            elif v is not None:
                e["value"] = int(v)

    # set: read siblings with their context, write back their union plus a new element.
    def op_set(self):
        key = f"s{self.rng.randrange(3)}"
        self.counter += 1
        element = self.p * 1_000_000 + self.counter
        node = f"node{self.node + 1}"
        try:
            ctx, sibs = self.connection().call("VGET", key, "R", "quorum")
        except (OSError, Closed, ValueError, TypeError):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            self.node = self.rng.choice(self.cluster.targets())
            return
        union = set()
        for s in sibs:
            union |= parse_set(s)
        union.add(element)
        value = ",".join(str(x) for x in sorted(union))
        self.invoke("add", key, element, "SET", key, value, "CTX", ctx, "W", "quorum")

    # durability: every key written once.
    def op_durability(self):
        time.sleep(0.002)
        self.counter += 1
        key = f"d{self.p}-{self.counter}"
        self.invoke("write", key, f"v{key}", "SET", key, f"v{key}", "W", "quorum")

    # delete: write a key, then delete it.
    def op_delete(self):
        time.sleep(0.002)
        self.counter += 1
        key = f"x{self.p}-{self.counter}"
        t, _ = self.invoke("write", key, f"v{key}", "SET", key, f"v{key}", "W", "quorum")
        if t != "fail":
            self.invoke("delete", key, None, "DEL", key)


def parse_set(value):
    if value is None or value == b"":
        return set()
    return {int(x) for x in value.decode().split(",")}


# ---- final reads and convergence --------------------------------------------------------

def pipelined(client, commands, batch=500):
    """Sends commands in pipelined batches; returns their replies in order."""
    replies = []
    for i in range(0, len(commands), batch):
        chunk = commands[i:i + batch]
        client.send_raw(b"".join(Client.encode(*c) for c in chunk))
        replies += [client.read() for _ in chunk]
    return replies


def final_reads(cluster, keys, rounds=2):
    """Reads every key with R=all through every node (repairing replicas), returns
    key -> list of sibling values from the last round."""
    final = {}
    for _ in range(rounds):
        for i in cluster.active():
            c = cluster.client(i, timeout=10)
            for key, r in zip(keys, pipelined(c, [("VGET", k, "R", "all") for k in keys])):
                if not isinstance(r, RespError):
                    final[key] = r[1]
            c.close()
    return final


def replica_views(cluster, keys):
    """Each member's answer to VGET R=one for every key: (context, sorted values)."""
    views = []
    for i in cluster.active():
        c = cluster.client(i, timeout=10)
        replies = pipelined(c, [("VGET", k, "R", "one") for k in keys])
        views.append([(r[0], tuple(sorted(r[1]))) if isinstance(r, list) else None for r in replies])
        c.close()
    return views


def convergence(cluster, keys, since, bound_s=30.0, sample=2000):
    """Seconds from `since` (time.monotonic() at the final heal) until the replicas
    agree: first no node keeps a hint or replays one (hinted handoff done: polled
    through INFO, which changes nothing), then every member returns the same version
    (context and values) of every key with R=one, which a replica answers from its own
    copy first. Those reads also repair what is behind, so they start only once the
    hints are gone. Converged only within `bound_s` seconds of the heal. At most
    `sample` keys (evenly spread) are compared, so that a round takes well under a
    second; the R=all final reads and the checkers still see every key."""
    if len(keys) > sample:
        keys = keys[::-(-len(keys) // sample)]
    deadline = since + bound_s
    hints_s, rounds, differing = None, 0, None
    while time.monotonic() < deadline:
        if hints_s is None:
            # Hints for nodes that are no longer members are never replayed (what they
            # held reached the new owners through the move); they do not count.
            members = {cluster.node_id(i) for i in cluster.active()}
            pending = sum(k for t, k in hints_by_target(cluster).items() if t in members)
            if pending or handoff_counters(cluster).get("hints_replaying", 0):
                time.sleep(0.2)
                continue
            hints_s = round(time.monotonic() - since, 3)
        views = replica_views(cluster, keys)
        rounds += 1
        differing = sum(1 for k in range(len(keys)) if any(v[k] != views[0][k] for v in views))
        if differing == 0:
            return {"converged": True, "seconds": round(time.monotonic() - since, 3),
                    "hints_drained_s": hints_s, "read_rounds": rounds, "keys_compared": len(keys),
                    "bound_s": bound_s}
        time.sleep(0.2)
    return {"converged": False, "seconds": None, "hints_drained_s": hints_s, "bound_s": bound_s,
            "read_rounds": rounds, "keys_differing": differing,
            "hints_left": hints_by_target(cluster)}


def info_counters(cluster, section, prefix):
    """The numeric INFO `section` fields named `prefix`* summed over the nodes (since
    each node's last start); {} if no node reports them."""
    total = {}
    for i in cluster.active():
        try:
            c = cluster.client(i, timeout=10)
            text = c.call("INFO", section).decode()
            c.close()
        except (OSError, RespError, Closed, AttributeError):
            continue
        for line in text.split("\r\n"):
            k, _, v = line.partition(":")
            if k.startswith(prefix) and v.isdigit():
                total[k] = total.get(k, 0) + int(v)
    return total


def hints_by_target(cluster):
    """target id -> hints stored for it, summed over the members (INFO handoff)."""
    out = {}
    for i in cluster.active():
        try:
            c = cluster.client(i, timeout=10)
            text = c.call("INFO", "handoff").decode()
            c.close()
        except (OSError, RespError, Closed, AttributeError):
            continue
        for line in text.split("\r\n"):
            if line.startswith("target") and ":id=" in line:
                f = dict(x.split("=", 1) for x in line.split(":", 1)[1].split(",") if "=" in x)
                out[f["id"]] = out.get(f["id"], 0) + int(f.get("keys", 0))
    return out


def handoff_counters(cluster):
    """The INFO handoff counters, plus the hints still stored."""
    return info_counters(cluster, "handoff", "hints_")


def tls_counters(cluster):
    """INFO tls peer counters: handshakes, refused handshakes, errors."""
    return info_counters(cluster, "tls", "tls_peer_")


def make_certs(directory, ips):
    """A throwaway CA and one node certificate naming every node's IP (tools/make-certs)."""
    subprocess.run([os.path.join(ROOT, "tools", "make-certs"), directory, *sorted(set(ips))],
                   check=True, capture_output=True, timeout=60)
    return directory


def repair_heal(cluster, itsukad):
    """Anti-entropy as the healing step: `itsuka-admin repair` through node 1, then a
    dry run that must find no key differing between any replicas (read repair has not
    run yet: the final reads come after)."""
    # Hinted handoff first: a hint replayed while the repair runs changes keys under it,
    # and a tombstone purged before a hint for its key was handed off could come back
    # (in production the tombstone grace, longer than the hint age, guarantees this).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        h = handoff_counters(cluster)
        if h.get("hints_stored", 0) == 0 and h.get("hints_replaying", 0) == 0:
            break
        time.sleep(0.2)
    admin = os.path.join(os.path.dirname(itsukad), "itsuka-admin")
    first = cluster.active()[0]
    host = f"{cluster.hosts.ip(first)}:{cluster.hosts.client_port(first)}"
    start = time.monotonic()
    out = {}
    for label, extra in (("repair", []), ("check", ["--dry-run"])):
        r = subprocess.run([admin, "--host", host, "--json", "repair", *extra],
                           capture_output=True, timeout=600)
        lines = r.stdout.decode().strip().splitlines()
        try:
            out[label] = json.loads(lines[-1]) if lines else {}
        except ValueError:
            out[label] = {}
        if not out[label]:
            out[label] = {"error": r.stderr.decode()[-500:]}
    rep, chk = out["repair"], out["check"]
    # A replica still suspected is skipped (and reported), not compared: not healed.
    return {"valid": rep.get("partitions_failed") == 0 and chk.get("keys_differing") == 0 and
                     rep.get("replicas_skipped", 0) == 0 and chk.get("replicas_skipped", 0) == 0,
            "seconds": round(time.monotonic() - start, 3),
            "keys_differing": rep.get("keys_differing"), "keys_moved": rep.get("keys_moved"),
            "partitions_failed": rep.get("partitions_failed"),
            "replicas_skipped": rep.get("skipped_replicas"),
            "tombstones_purged": rep.get("tombstones_purged"),
            "differing_after": chk.get("keys_differing"),
            "error": rep.get("error") or chk.get("error") or ""}


# ---- a run ------------------------------------------------------------------------------

class Interrupted(Exception):
    """SIGTERM (or SIGINT) during a run: cleanup runs, then the caller sees this."""


def _interrupt(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


class _Signals:
    """While a run is in progress in the main thread, SIGTERM and SIGINT raise
    Interrupted, so the run's `finally` stops its nodes and removes its namespaces;
    during that cleanup both are ignored (a second ^C cannot leave things behind)."""

    def __init__(self):
        self.main = threading.current_thread() is threading.main_thread()
        self.saved = {}

    def catch(self):
        if self.main:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.saved[sig] = signal.signal(sig, _interrupt)

    def ignore(self):
        if self.main:
            for sig in self.saved:
                signal.signal(sig, signal.SIG_IGN)

    def restore(self):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def run(o):
    """One run (see the module docstring); cleans up whatever way it ends."""
    rng = random.Random(o.seed)
    use_netns = not o.loopback and netns_available()
    if not o.loopback and not use_netns:
        print("fault: network namespaces unavailable; running on loopback (process faults only)")
    moves = getattr(o, "moves", False)
    if "skew" in o.nemesis and not os.path.exists(FAKETIME_LIB):
        print(f"fault: {FAKETIME_LIB} missing (apt-get install faketime); no clock skew")
        o.nemesis = [k for k in o.nemesis if k != "skew"]
    uses_membership = moves or any(k in membership.MEMBERSHIP for k in o.nemesis)
    spares = getattr(o, "spares", None)
    spares = (2 if uses_membership else 0) if spares is None else spares
    slots = o.nodes + spares
    hosts = (NetnsHosts(slots, tag=free_tag(os.getpid() + o.seed)) if use_netns
             else LoopbackHosts(slots, o.base_port))
    # A majorities ring needs at least 5 nodes to cut anything.
    kinds = [k for k in o.nemesis if k in PROCESS_FAULTS or k in membership.MEMBERSHIP or
             (k in PARTITIONS and hosts.partitions and (k != "ring" or o.nodes >= 5))]
    if moves:
        kinds = [k for k in kinds if k not in membership.MEMBERSHIP]
    workdir = tempfile.mkdtemp(prefix=f"itsuka-fault-{o.workload}-")
    tls = getattr(o, "tls", False)
    tls_dir = make_certs(os.path.join(workdir, "certs"), [hosts.ip(i) for i in range(slots)]) if tls else None
    cluster = Cluster(hosts, o.nodes, o.itsukad, workdir, o.settings, tls_dir=tls_dir, slots=slots)
    result = {"workload": o.workload, "seed": o.seed, "nodes": o.nodes, "spares": spares,
              "duration_s": o.duration,
              "mode": ("netns" if use_netns else "loopback") + (", tls peers" if tls else "")
              + (", moves" if moves else ""), "nemeses": kinds}
    where = (f"namespaces {hosts.ns(0)}..{hosts.ns(slots - 1)}, bridge {hosts.bridge}" if use_netns
             else f"ports {o.base_port}..{o.base_port + 100 + slots - 1}")
    print(f"fault: {o.workload} seed {o.seed}: {where}, workdir {workdir}", flush=True)
    signals = _Signals()
    signals.catch()
    try:
        hosts.setup()
        for i in range(o.nodes):
            cluster.start(i)
        for i in range(o.nodes):
            cluster.wait_serving(i)
        if not cluster.wait_formed():
            raise RuntimeError("cluster did not form")
        rec, nemesis, script = drive(o, cluster, hosts, kinds, rng, moves)
        return finish(o, cluster, hosts, rec, nemesis, script, result)
    finally:
        signals.ignore()
        try:
            cluster.stop_all()
            hosts.teardown()
            if not o.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        finally:
            signals.restore()


def drive(o, cluster, hosts, kinds, rng, moves):
    """The workload under the nemesis (and, with --moves, the join/decommission script)
    for o.duration seconds; returns (recorder, nemesis or None, move script or None)."""
    t0 = now_ns()
    rec = Recorder(t0)
    stop = threading.Event()
    interval_max = getattr(o, "interval_max", None)
    nemesis = (Nemesis(cluster, hosts, kinds, random.Random(rng.random()), o.interval, t0, stop,
                       interval_max=interval_max) if kinds else None)
    script = (membership.MoveScript(cluster, t0, stop, random.Random(rng.random()),
                                    join_at=getattr(o, "move_at", 10.0)) if moves else None)
    deadline = time.monotonic() + o.duration
    workers = [Worker(p, cluster, o.workload, rec, deadline, random.Random(rng.random()), o.max_ops)
               for p in range(o.clients)]
    threads = ([nemesis] if nemesis else []) + ([threading.Thread(target=script.run, daemon=True)]
                                                if script else [])
    for t in threads + workers:
        t.start()
    for w in workers:
        w.join(timeout=o.duration + 60)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    if o.scenario:
        o.scenario(cluster, hosts, rec)
    return rec, nemesis, script


def settle(cluster, timeout):
    """After the final heal: waits until no view has a member joining or leaving (the
    moves in flight finished), stops nodes that are no longer members, and returns
    the moves_settled figure."""
    start = time.monotonic()
    st = membership.statuses(cluster)
    while membership.moving(st) and time.monotonic() - start < timeout:
        time.sleep(0.5)
        st = membership.statuses(cluster)
    for i in list(cluster.procs):
        if i not in cluster.members and cluster.alive(i):
            cluster.stop(i)
    return {"valid": not membership.moving(st), "seconds": round(time.monotonic() - start, 3),
            "members": ",".join(cluster.node_id(i) for i in cluster.active()),
            "statuses": ",".join(f"{k}={v}" for k, v in sorted(st.items()))}


def finish(o, cluster, hosts, rec, nemesis, script, result):
    """Heals, restarts every member, lets moves finish and the replicas converge, reads
    the final state, runs the checkers and writes the report."""
    hosts.heal()
    healed_at = time.monotonic()
    for i in cluster.targets():
        cluster.signal(i, signal.SIGCONT)
        if i in cluster.members and not cluster.alive(i):
            cluster.start(i)
    for i in cluster.active():
        cluster.wait_serving(i)
    membership_used = script is not None or (nemesis is not None and nemesis.members is not None)
    settled = settle(cluster, getattr(o, "settle_timeout", 90)) if membership_used else None
    result["formed_after_heal"] = cluster.wait_formed(timeout=60)
    history = sorted(rec.events, key=lambda e: e["time"])
    keys = sorted({e["key"] for e in history if e["key"] is not None})
    # Convergence before the R=all final reads, which repair replicas (with --repair the
    # anti-entropy run is the healing step: it comes first, and the figure counts from
    # its end).
    repaired = repair_heal(cluster, o.itsukad) if getattr(o, "repair", False) else None
    since = time.monotonic() if repaired is not None else healed_at
    result["convergence"] = convergence(cluster, keys, since, getattr(o, "convergence_bound", 30.0))
    final = final_reads(cluster, keys)
    result["handoff"] = handoff_counters(cluster)
    if getattr(o, "tls", False):
        result["tls"] = tls_counters(cluster)
    result["schedule"] = nemesis.schedule if nemesis else []
    result["operations"] = sum(1 for e in history if e["type"] == "invoke")
    result["checkers"] = check(o.workload, history, final,
                               sloppy=sloppy_substitutes(o, cluster.slots))
    result["checkers"]["convergence"] = {"valid": result["convergence"]["converged"],
                                         **result["convergence"]}
    if settled is not None:
        result["checkers"]["moves_settled"] = settled
    if script is not None:
        result["checkers"]["moves_under_nemesis"] = script.verdict(nemesis.schedule if nemesis else [])
        result["move_samples"] = script.samples
    if repaired is not None:
        result["checkers"]["repair"] = repaired
    result["valid"] = all(c["valid"] for name, c in result["checkers"].items()
                          if name not in o.informational)
    os.makedirs(o.report_dir, exist_ok=True)
    base = os.path.join(o.report_dir, f"{o.workload}-seed{o.seed}")
    with open(base + ".json", "w") as f:
        json.dump({**result, "history": history}, f, indent=1, default=str)
    report.write_html(base + ".html", result, history)
    result["report"] = base + ".html"
    return result


def write_then_read_across_a_partition(o):
    """A fixed scenario for the harness's self-test: isolate node1, write a key through
    it with W=quorum, then read the key with R=quorum through node2 on the majority
    side. A correct node cannot acknowledge that write (it reaches no other replica)
    and answers -TIMEOUT; a node that acknowledges before W replicas answered says OK,
    and the read that follows misses the acknowledged write. Returns the
    linearizability verdict of the recorded history. Needs network namespaces."""
    if not netns_available():
        raise RuntimeError("this scenario needs root and network namespaces")
    hosts = NetnsHosts(3, tag=free_tag(os.getpid()))
    workdir = tempfile.mkdtemp(prefix="itsuka-fault-scenario-")
    cluster = Cluster(hosts, 3, o.itsukad, workdir, o.settings)
    try:
        hosts.setup()
        for i in range(3):
            cluster.start(i)
        for i in range(3):
            cluster.wait_serving(i)
        if not cluster.wait_formed():
            raise RuntimeError("cluster did not form")
        rec = Recorder(now_ns())
        hosts.cut(partition_pairs("isolate", 3, _FirstIs(0)))
        writer = Worker(0, cluster, "register", rec, 0, random.Random(1), 0)
        writer.node = 0
        writer.invoke("write", "k", 1, "SET", "k", "1", "W", "quorum")
        reader = Worker(1, cluster, "register", rec, 0, random.Random(2), 0)
        reader.node = 1
        reader.invoke("read", "k", None, "GET", "k", "R", "quorum")
        reader.fix_read()
        for w in (writer, reader):
            if w.conn is not None:
                w.conn.close()
        history = sorted(rec.events, key=lambda e: e["time"])
        return checkers.check_register(history), history
    finally:
        cluster.stop_all()
        hosts.teardown()
        shutil.rmtree(workdir, ignore_errors=True)


class _FirstIs(random.Random):
    """A 'random' source whose shuffle leaves node `first` first (for fixed scenarios)."""

    def __init__(self, first):
        super().__init__(0)
        self.first = first

    def shuffle(self, x):
        x.sort(key=lambda v: v != self.first)


def sloppy_substitutes(o, slots):
    """True if a W=quorum write may be acknowledged by substitutes outside the key's
    primaries (sloppy quorum on, the default, and more nodes than N=3): R=quorum then
    asks only primaries and can miss it, so R+W>N visibility is not promised."""
    off = any(kv.replace(" ", "") in ("cluster.sloppy_quorum=0", "cluster.sloppy_quorum=false")
              for kv in o.settings)
    return not off and slots > 3


def check(workload, history, final, sloppy=False):
    if workload == "register":
        strong = [e for e in history if e["f"] != "read1"]
        default_reads = [dict(e, f="read") if e["f"] == "read1" else e for e in history
                         if e["f"] in ("read1", "write")]
        lin = checkers.check_register(strong)
        stale = checkers.stale_reads(default_reads)
        visibility = "quorum_visibility_sloppy" if sloppy else "quorum_visibility"
        return {"linearizable": lin, visibility: checkers.check_quorum_visibility(strong),
                "stale_reads_R1": {"valid": True, **stale}}
    if workload == "cregister":
        strong = [e for e in history if e["f"] != "read1"]
        default_reads = [dict(e, f="read") if e["f"] == "read1" else e for e in history
                         if e["f"] in ("read1", "write")]
        return {"linearizable_consistent": checkers.check_register(strong),
                "linearizable_default_reads": checkers.check_register(default_reads),
                "stale_reads_R1": {"valid": True, **checkers.stale_reads(default_reads)}}
    if workload == "set":
        sets = {k: [sorted(parse_set(v)) for v in vs] for k, vs in final.items()}
        return {"set": checkers.check_set(history, sets)}
    if workload == "durability":
        return {"durability": checkers.check_durability(
            history, {k: [v.decode() for v in vs] for k, vs in final.items()})}
    if workload == "delete":
        return {"deletes": checkers.check_deletes(
            history, {k: [v.decode() for v in vs] for k, vs in final.items()})}
    raise ValueError(workload)
