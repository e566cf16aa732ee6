"""History checkers for the itsuka fault harness.

A history is a list of events, as the clients record them:
    {"process": int, "type": "invoke" | "ok" | "fail" | "info", "f": str,
     "key": str, "value": any, "time": int (monotonic ns), "node": str}
Each process has at most one operation outstanding: an "invoke" is followed by its
completion: "ok" (it happened), "fail" (it certainly did not happen) or "info" (the
outcome is unknown, e.g. a timeout -- never treated as a failure).

Checkers return a dict with at least {"valid": bool}; figures and counterexamples go
in the other fields.
"""
import math
import sys
from collections import defaultdict

INF = math.inf


class Op:
    __slots__ = ("id", "process", "f", "key", "value", "result", "call", "ret", "type", "node")

    def __init__(self, id, process, f, key, value, call, node):
        self.id, self.process, self.f, self.key, self.value = id, process, f, key, value
        self.result = None
        self.call, self.ret, self.type, self.node = call, INF, "info", node

    def __repr__(self):
        end = "?" if self.ret == INF else f"{self.ret / 1e6:.1f}ms"
        shown = self.result if self.f == "read" else self.value
        return f"p{self.process} {self.f} {self.key}={shown!r} [{self.call / 1e6:.1f}ms, {end}] {self.type}"


def pair(history):
    """Turns invoke/completion events into operations. Completions carry the value a
    read returned; an invoke without completion is 'info' (unknown)."""
    open_ops, ops = {}, []
    for e in history:
        p = e["process"]
        if e["type"] == "invoke":
            op = Op(len(ops), p, e["f"], e.get("key"), e.get("value"), e["time"], e.get("node"))
            open_ops[p] = op
            ops.append(op)
        else:
            op = open_ops.pop(p, None)
            if op is None:
                raise ValueError(f"completion without invoke: {e}")
            op.type = e["type"]
            if e["type"] != "info":
                op.ret = e["time"]
            if e["type"] == "ok" and op.f in ("read", "delete"):
                op.result = e.get("value")  # a delete's reply: how many keys it removed
    return ops


# ---- Linearizability of a register (Wing & Gong, with Lowe's memoisation) -------------

def _linearizable(ops, initial=None, budget=300_000):
    """True/False for one key's operations against a read/write register, or None if
    the search exceeded `budget` steps. 'fail' operations must be removed beforehand;
    'info' operations may take effect at any point after their call, or never."""
    ops = sorted(ops, key=lambda o: o.call)
    n = len(ops)
    # The search recurses once per linearized operation (Python 3.11+ does not use the
    # C stack for that, so only the interpreter's limit needs room).
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 2 * n + 1000))
    required = sum(1 for o in ops if o.ret != INF)
    seen = set()
    steps = [0]

    def search(done, done_required, state):
        if done_required == required:
            return True
        key = (done, state)
        if key in seen:
            return False
        seen.add(key)
        steps[0] += 1
        if steps[0] > budget:
            raise TimeoutError
        # The next operation to take effect must have been called before every other
        # pending operation returned.
        horizon = min((ops[i].ret for i in range(n) if not done >> i & 1), default=INF)
        for i in range(n):
            o = ops[i]
            if o.call > horizon:
                break
            if done >> i & 1:
                continue
            bit, req = 1 << i, done_required + (o.ret != INF)
            if o.f == "write":
                if search(done | bit, req, o.value):
                    return True
            elif o.type == "info" or o.result == state:   # an unknown read constrains nothing
                if search(done | bit, req, state):
                    return True
        return False

    try:
        return search(0, 0, initial)
    except TimeoutError:
        return None


def _minimise(ops, initial=None, seconds=5.0):
    """A small counterexample: the shortest failing prefix (by call time), then drops
    operations while the rest still fails, within `seconds`. A write whose value a
    remaining read returned is kept, so the counterexample shows where values came from."""
    import time
    deadline = time.monotonic() + seconds
    ops = sorted(ops, key=lambda o: o.call)
    current = ops
    for m in range(10, len(ops) + 10, 10):
        if _linearizable(ops[:m], initial, budget=50_000) is False:
            current = ops[:m]
            break
    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for i in range(len(current) - 1, -1, -1):
            o = current[i]
            if o.f == "write" and any(
                    r.f == "read" and r.type == "ok" and
                    (r.result == o.value or (isinstance(r.result, list) and o.value in r.result))
                    for r in current):
                continue
            trial = current[:i] + current[i + 1:]
            if _linearizable(trial, initial, budget=50_000) is False:
                current = trial
                changed = True
                break
            if time.monotonic() > deadline:
                break
    return sorted(current, key=lambda o: o.call)


def check_register(history):
    """Per-key linearizability of read/write operations on registers (initially nil)."""
    ops = [o for o in pair(history) if o.type != "fail" and o.f in ("read", "write")]
    by_key = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    bad, unknown = {}, []
    for key, key_ops in sorted(by_key.items()):
        verdict = _linearizable(key_ops)
        if verdict is None:
            unknown.append(key)
        elif not verdict:
            bad[key] = _minimise(key_ops)
    return {"valid": not bad and not unknown, "keys": len(by_key), "operations": len(ops),
            "nonlinearizable_keys": sorted(bad), "undecided_keys": unknown,
            "counterexamples": {k: [repr(o) for o in v] for k, v in bad.items()}}


def stale_reads(history):
    """Reads that returned an older value than a write completed before they began."""
    ops = [o for o in pair(history) if o.type == "ok"]
    writes = defaultdict(list)
    for o in ops:
        if o.f == "write":
            writes[o.key].append(o)
    reads = stale = 0
    for r in ops:
        if r.f != "read":
            continue
        reads += 1
        source = next((w for w in writes[r.key] if w.value == r.result), None)
        for w in writes[r.key]:
            if w.ret < r.call and w is not source and (source is None or w.call > source.ret):
                stale += 1
                break
    return {"reads": reads, "stale": stale, "stale_rate": stale / reads if reads else 0.0}


# ---- R+W>N: quorum reads see acknowledged quorum writes ---------------------------------

def check_quorum_visibility(history):
    """R=quorum reads against W=quorum writes of unique values (R+W>N): a read that
    began after a write was acknowledged must return that write's value, or some value
    not known to be older (written by a write that did not finish before the acked one
    began). A read may return siblings (a list); returning nil after an acked write is
    a miss. Reads and writes whose outcome is unknown constrain nothing (a write that
    timed out may or may not be there); failed writes never happened."""
    ops = [o for o in pair(history) if o.f in ("read", "write")]
    writes = defaultdict(list)
    for o in ops:
        if o.f == "write" and o.type != "fail":
            writes[o.key].append(o)
    source = {(o.key, o.value): o for ws in writes.values() for o in ws}
    reads = misses = unexplained = 0
    examples = []
    for r in ops:
        if r.f != "read" or r.type != "ok":
            continue
        reads += 1
        got = r.result if isinstance(r.result, list) else ([] if r.result is None else [r.result])
        sources = [source.get((r.key, v)) for v in got]
        if any(s is None for s in sources):
            unexplained += 1      # a value nobody wrote: reported, and invalid
            examples.append(f"{r!r} returned a value never written")
            continue
        for w in writes[r.key]:
            if w.type != "ok" or w.ret >= r.call or w in sources:
                continue
            # w was acknowledged before r began; r missed it unless something it
            # returned may be newer than w.
            if all(s.ret < w.call for s in sources):
                misses += 1
                examples.append(f"{r!r} missed {w!r}")
                break
    return {"valid": misses == 0 and unexplained == 0, "reads": reads, "misses": misses,
            "unexplained_values": unexplained, "examples": examples[:10]}


# ---- Eventual sets: unique elements added to shared keys --------------------------------

def check_set(history, final):
    """`final`: key -> list of sibling element lists read after heal and repair.
    Every acknowledged add must be present; nothing never added may appear; no
    element may appear twice within one sibling."""
    ops = pair(history)
    attempted = defaultdict(set)
    acked = defaultdict(set)
    for o in ops:
        if o.f == "add":
            attempted[o.key].add(o.value)
            if o.type == "ok":
                acked[o.key].add(o.value)
    lost, unexpected, duplicated = [], [], []
    for key in set(attempted) | set(final):
        siblings = final.get(key, [])
        present = set()
        for sib in siblings:
            if len(sib) != len(set(sib)):
                duplicated.append(key)
            present |= set(sib)
        lost += [(key, v) for v in sorted(acked[key] - present)]
        unexpected += [(key, v) for v in sorted(present - attempted[key])]
    n_acked = sum(len(v) for v in acked.values())
    return {"valid": not lost and not unexpected and not duplicated, "acknowledged": n_acked,
            "lost": lost[:20], "lost_count": len(lost), "unexpected": unexpected[:20],
            "unexpected_count": len(unexpected), "duplicated_keys": sorted(set(duplicated))}


# ---- Durability: unique keys, each written once -----------------------------------------

def check_durability(history, final):
    """`final`: key -> list of sibling values read after heal. Every acknowledged
    write must be readable with its value."""
    ops = pair(history)
    acked = [o for o in ops if o.f == "write" and o.type == "ok"]
    lost = [(o.key, o.value) for o in acked if o.value not in (final.get(o.key) or [])]
    return {"valid": not lost, "acknowledged": len(acked), "lost_count": len(lost), "lost": lost[:20]}


# ---- Deletes: a deleted key never comes back --------------------------------------------

def check_deletes(history, final):
    """Each key is written, then deleted, by one process. A key whose delete was
    acknowledged, and not written again after the delete began, must be absent."""
    ops = pair(history)
    by_key = defaultdict(list)
    for o in ops:
        if o.f in ("write", "delete"):
            by_key[o.key].append(o)
    zombies, deleted, unknown = [], 0, 0
    for key, key_ops in by_key.items():
        dels = [o for o in key_ops if o.f == "delete" and o.type == "ok"]
        if not dels:
            continue
        last_del = max(dels, key=lambda o: o.call)
        rewritten = any(o.f == "write" and o.type != "fail" and o.call > last_del.call for o in key_ops)
        if rewritten:
            continue
        # Deletes that found nothing (:0) after a write whose outcome is unknown prove
        # nothing: that write may take effect after them (it never completed).
        if all(d.result == 0 for d in dels) and any(o.f == "write" and o.type == "info" for o in key_ops):
            unknown += 1
            continue
        deleted += 1
        if final.get(key):
            zombies.append((key, final[key]))
    return {"valid": not zombies, "deleted": deleted, "zombies": zombies[:20], "zombie_count": len(zombies),
            "found_nothing_after_unknown_write": unknown}
