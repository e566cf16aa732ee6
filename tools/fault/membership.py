"""Membership faults for the fault harness: nodes that come and go.

    Membership(cluster, rng, log).act(kind) -> a description of what it did, or None
    Membership.tick()                        -> housekeeping between faults (stops nodes
                                                that became left, restarts held nodes)
    MoveScript(cluster, log, ...)            -> the `--moves` run: one join, then one
                                                decommission, with progress samples

The kinds (`--nemesis`, or `member` for all four):
- join: start a spare node (a slot with an empty data directory whose seeds are the
  current members); it enters as `joining` and the cluster moves partitions to it;
- decommission: ITSUKA.DECOMMISSION of a live member through another; once it is
  `left` the harness stops it;
- decommission-stopped: kill -9 a member, decommission it while it is down; once it is
  `left`, restart it from its old data directory (its saved view says it is `up` in
  the old ring: the issue's stale node) for one nemesis interval, then stop it;
- stale-restart: kill -9 a member, change membership while it is down (join a spare,
  or decommission another member), and restart it from its old data directory at the
  next tick, with a view that predates the change.

Bounded: joins use the run's spare slots (`--spares`), a decommission never leaves
fewer than `min_members` members (N, 3), and a change starts only when no other is in
flight (no member joining or leaving in any view that answers). Every choice comes
from the nemesis's seeded random source.
"""
import time

from resp import Closed, RespError

MEMBERSHIP = ("join", "decommission", "decommission-stopped", "stale-restart")


def statuses(cluster):
    """id -> status, merged over the views of the live members that answer: `left` is
    final, so one view saying it wins; otherwise a transition (joining, leaving) in any
    view wins over `up` (a move is in flight until every view agrees it is done)."""
    rank = {"up": 0, "joining": 1, "leaving": 1, "left": 2}
    merged = {}
    for i in cluster.targets():
        for member, status in cluster.member_view(i).items():
            if rank.get(status, 1) >= rank.get(merged.get(member), -1):
                merged[member] = status
    return merged


def moving(st):
    return any(s in ("joining", "leaving") for s in st.values())


def request_decommission(cluster, v, order):
    """ITSUKA.DECOMMISSION of node v through the first of the live members in `order`
    (v excluded) that accepts it; that member's slot, or None."""
    for i in order:
        if i == v or not cluster.alive(i):
            continue
        try:
            conn = cluster.client(i, timeout=2)
            reply = conn.call("ITSUKA.DECOMMISSION", cluster.node_id(v))
            conn.close()
        except (OSError, Closed):
            continue
        if not isinstance(reply, RespError):
            cluster.remove_member(v)
            return i
    return None


class Membership:
    def __init__(self, cluster, rng, log, min_members=3):
        self.cluster, self.rng, self.log = cluster, rng, log
        self.min_members = min_members
        self.leaving = set()      # live members decommissioned: stopped once left
        self.stopped_out = set()  # decommissioned while down: restarted once left
        self.zombies = set()      # left nodes running from their stale view
        self.held = {}            # slot -> ticks to stay down (stale-restart)
        self.changes = 0

    # ---- between faults ----

    def tick(self):
        c = self.cluster
        for i in sorted(self.zombies):
            c.stop(i)
            c.zombies.discard(i)
            self.zombies.discard(i)
            self.log(f"stop node{i + 1} (left; ran from its stale view)")
        st = statuses(c) if (self.leaving or self.stopped_out) else {}
        for i in sorted(self.leaving):
            if st.get(c.node_id(i)) == "left":
                c.stop(i)
                self.leaving.discard(i)
                self.log(f"node{i + 1} is left: stopped")
        for i in sorted(self.stopped_out):
            if st.get(c.node_id(i)) == "left":
                self.stopped_out.discard(i)
                self.zombies.add(i)
                c.zombies.add(i)
                c.start(i)
                self.log(f"restart node{i + 1} (decommissioned while down, now left) from its stale view")
        for i in sorted(self.held):
            self.held[i] -= 1
            if self.held[i] <= 0:
                del self.held[i]
                c.held.discard(i)
                if not c.alive(i):
                    c.start(i, c.skew.get(i, 0))
                self.log(f"restart node{i + 1} from its stale view (membership changed while it was down)")

    def busy(self):
        return bool(self.leaving or self.stopped_out or self.held or self.zombies) or moving(statuses(self.cluster))

    # ---- faults ----

    def act(self, kind):
        if self.busy():
            return None
        if kind == "join":
            return self.join()
        if kind == "decommission":
            v = self.pick_member()
            return None if v is None else self.decommission(v, live=True)
        if kind == "decommission-stopped":
            v = self.pick_member()
            if v is None:
                return None
            self.cluster.kill(v)
            return self.decommission(v, live=False)
        if kind == "stale-restart":
            return self.stale_restart()
        raise ValueError(kind)

    def pick_member(self, exclude=()):
        c = self.cluster
        pool = [i for i in c.active() if i not in exclude and i not in c.held]
        if len(c.active()) <= self.min_members or not pool:
            return None
        return self.rng.choice(pool)

    def join(self):
        i = self.cluster.spare()
        if i is None:
            return None
        self.cluster.add_member(i)
        self.changes += 1
        return f"join node{i + 1}"

    def decommission(self, v, live):
        c = self.cluster
        order = c.active()
        self.rng.shuffle(order)
        i = request_decommission(c, v, order)
        if i is None:
            if not live:
                c.start(v)   # nobody took the decommission: put it back
            return None
        (self.leaving if live else self.stopped_out).add(v)
        self.changes += 1
        return (f"decommission node{v + 1} via node{i + 1}" if live else
                f"kill -9 node{v + 1}, decommission it via node{i + 1} while down")

    def stale_restart(self):
        c = self.cluster
        v = self.rng.choice([i for i in c.active() if i not in c.held])
        c.kill(v)
        c.held.add(v)
        self.held[v] = 1
        change = self.join()
        if change is None:
            other = self.pick_member(exclude=(v,))
            change = self.decommission(other, live=True) if other is not None else None
        if change is None:
            self.held[v] = 0   # nothing to change: the next tick restarts it
            return f"kill -9 node{v + 1} (no membership change possible)"
        return f"kill -9 node{v + 1}, {change} while it is down"

    def release(self):
        """The final heal: held nodes come back; zombies stop; nodes decommissioned
        while down stay down."""
        c = self.cluster
        for i in list(self.held):
            c.held.discard(i)
        self.held.clear()
        for i in list(self.zombies):
            c.stop(i)
            c.zombies.discard(i)
        self.zombies.clear()


def ring_progress(cluster):
    """One progress sample over the live members that answer: the most partitions any
    view counts as moving (read and write preference lists differ), the partitions and
    objects copied to each node, and the nodes' INFO cluster move_* progress fields
    where the build reports them."""
    sample = {"moving": None, "copying_here": {}, "copied_objects": {}, "move": {}}
    for i in cluster.targets():
        if not cluster.alive(i):
            continue
        try:
            conn = cluster.client(i, timeout=1)
            summary, parts = conn.call("ITSUKA.RING")
            conn.close()
        except (OSError, Closed, ValueError, TypeError):
            continue
        fields = dict(zip(summary[0::2], summary[1::2]))
        n_moving = sum(1 for p in parts if p[1] != p[2])
        sample["moving"] = max(sample["moving"] or 0, n_moving)
        name = f"node{i + 1}"
        sample["copying_here"][name] = int(fields.get(b"copying_here", b"0"))
        sample["copied_objects"][name] = int(fields.get(b"copied_objects", b"0"))
        progress = move_fields(cluster, i)
        if progress:
            sample["move"][name] = progress
    return sample


def move_fields(cluster, i):
    """Node i's INFO cluster move_* fields (name without the prefix -> int)."""
    try:
        conn = cluster.client(i, timeout=1)
        text = conn.call("INFO", "cluster")
        conn.close()
    except (OSError, Closed, ValueError):
        return {}
    if not isinstance(text, bytes):
        return {}
    out = {}
    for line in text.decode().split("\r\n"):
        k, _, v = line.partition(":")
        if k.startswith("move_") and v.isdigit():
            out[k[len("move_"):]] = int(v)
    return out


class MoveScript:
    """The `--moves` run: at `join_at` s (`--move-at`, after the workload has written
    some data) a spare joins; once every view has it `up`, a
    member (one of the initial ones) is decommissioned; both under whatever nemesis
    runs meanwhile. Samples progress every second until the end of the workload."""

    def __init__(self, cluster, t0_ns, stop_event, rng, join_at=10.0):
        self.cluster, self.t0, self.stop_event, self.rng = cluster, t0_ns, stop_event, rng
        self.join_at = join_at
        self.events = {}     # join_started, join_finished, decommission_started, ...
        self.samples = []
        self.victim = None

    def now(self):
        return round((time.monotonic_ns() - self.t0) / 1e9, 2)

    def sample(self, st):
        s = ring_progress(self.cluster)
        s["t"] = self.now()
        s["statuses"] = {k: v for k, v in sorted(st.items()) if v != "up"}
        self.samples.append(s)

    def run(self):
        c = self.cluster
        if self.stop_event.wait(self.join_at):
            return
        spare = c.spare()
        if spare is None:
            return
        c.add_member(spare)
        self.events["join_started"] = self.now()
        phase = "join"
        while not self.stop_event.wait(1.0):
            st = statuses(c)
            self.sample(st)
            if phase == "join" and st.get(c.node_id(spare)) == "up" and not moving(st):
                self.events["join_finished"] = self.now()
                phase = self.start_decommission(spare)
            elif phase == "decommission":
                if st.get(c.node_id(self.victim)) == "left":
                    self.events["decommission_finished"] = self.now()
                    c.stop(self.victim)
                    phase = "done"
            elif phase == "retry-decommission":
                phase = self.start_decommission(spare)

    def start_decommission(self, spare):
        c = self.cluster
        pool = [i for i in c.active() if i != spare]
        victim = self.rng.choice(pool)
        if request_decommission(c, victim, c.active()) is None:
            return "retry-decommission"
        self.victim = victim
        self.events["decommission_started"] = self.now()
        self.events["decommissioned"] = f"node{victim + 1}"
        return "decommission"

    def verdict(self, schedule=()):
        """The moves checker: did the join and the decommission finish while the nemesis
        ran, how long each took, how many faults began while each was in flight, and
        progress samples every ~5 s for the report."""
        e = dict(self.events)
        took = lambda a, b: round(e[b] - e[a], 2) if a in e and b in e else None

        def faults(a, b):
            if a not in e:
                return None
            end = e.get(b, float("inf"))
            return sum(1 for f in schedule if e[a] <= f["start"] <= end)

        finished = "join_finished" in e and "decommission_finished" in e
        return {"valid": finished, **e,
                "join_seconds": took("join_started", "join_finished"),
                "faults_during_join": faults("join_started", "join_finished"),
                "decommission_seconds": took("decommission_started", "decommission_finished"),
                "faults_during_decommission": faults("decommission_started", "decommission_finished"),
                "progress": progress_lines(self.samples)}


def progress_lines(samples, every=5.0):
    lines, last = [], None
    for s in samples:
        if last is not None and s["t"] - last < every:
            continue
        last = s["t"]
        copying = sum(s["copying_here"].values())
        copied = sum(s["copied_objects"].values())
        states = ",".join(f"{k}={v}" for k, v in s["statuses"].items()) or "all up"
        move = s.get("move", {})
        done = sum(m.get("partitions_done", 0) for m in move.values())
        total = sum(m.get("partitions_total", 0) for m in move.values())
        keys = sum(m.get("keys_copied", 0) for m in move.values())
        moved = f" move_partitions={done}/{total} move_keys_copied={keys}" if move else ""
        lines.append(f"{s['t']:6.1f}s moving={s['moving']} copying_here={copying} "
                     f"copied_objects={copied}{moved} {states}")
    return lines

