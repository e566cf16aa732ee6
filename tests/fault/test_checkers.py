"""Self-tests of the fault harness's checkers on hand-made histories: each checker must
accept valid histories and reject invalid ones (a checker that never fails proves
nothing)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "fault"))
import checkers  # noqa: E402


class H:
    """Builds histories: h.op(p, f, key, value, start, end, type, result)."""

    def __init__(self):
        self.events = []

    def op(self, p, f, key, value, start, end, type="ok", result=None):
        self.events.append({"process": p, "type": "invoke", "f": f, "key": key, "value": value,
                            "time": start})
        if end is not None:
            self.events.append({"process": p, "type": type, "f": f, "key": key,
                                "value": result if f == "read" else value, "time": end})
        return self

    def history(self):
        return sorted(self.events, key=lambda e: e["time"])


class Linearizability(unittest.TestCase):
    def check(self, h):
        return checkers.check_register(h.history())

    def test_sequential_history_is_linearizable(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(0, "read", "k", None, 20, 30, result=1)
        self.assertTrue(self.check(h)["valid"])

    def test_initial_nil(self):
        self.assertTrue(self.check(H().op(0, "read", "k", None, 0, 1, result=None))["valid"])
        self.assertFalse(self.check(H().op(0, "read", "k", None, 0, 1, result=5))["valid"])

    def test_stale_read_after_completed_write_is_not(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 20, 30) \
               .op(2, "read", "k", None, 40, 50, result=1)
        r = self.check(h)
        self.assertFalse(r["valid"])
        self.assertEqual(r["nonlinearizable_keys"], ["k"])
        # The minimal counterexample keeps only what makes it fail: both writes and the read.
        self.assertEqual(len(r["counterexamples"]["k"]), 3)

    def test_concurrent_write_may_be_seen_or_not(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 5, 50) \
               .op(2, "read", "k", None, 15, 20, result=1).op(3, "read", "k", None, 25, 30, result=2)
        self.assertTrue(self.check(h)["valid"])

    def test_new_then_old_is_not(self):
        # Once a read saw 2, a later read may not see 1 again.
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 5, 100) \
               .op(2, "read", "k", None, 15, 20, result=2).op(3, "read", "k", None, 25, 30, result=1)
        self.assertFalse(self.check(h)["valid"])

    def test_unknown_writes_may_or_may_not_take_effect(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 12, 20, type="info") \
               .op(2, "read", "k", None, 30, 40, result=2).op(2, "read", "k", None, 50, 60, result=2)
        self.assertTrue(self.check(h)["valid"])
        h2 = H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 12, None) \
                .op(2, "read", "k", None, 30, 40, result=1)
        self.assertTrue(self.check(h2)["valid"])

    def test_failed_writes_never_take_effect(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 12, 20, type="fail") \
               .op(2, "read", "k", None, 30, 40, result=2)
        self.assertFalse(self.check(h)["valid"])

    def test_keys_are_independent(self):
        h = H().op(0, "write", "a", 1, 0, 10).op(1, "write", "b", 1, 0, 10) \
               .op(2, "read", "a", None, 20, 30, result=1).op(2, "read", "b", None, 40, 50, result=None)
        r = self.check(h)
        self.assertEqual(r["nonlinearizable_keys"], ["b"])

    def test_stale_read_rate(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(0, "write", "k", 2, 20, 30) \
               .op(1, "read", "k", None, 40, 50, result=1).op(1, "read", "k", None, 60, 70, result=2)
        r = checkers.stale_reads(h.history())
        self.assertEqual((r["reads"], r["stale"]), (2, 1))


class Sets(unittest.TestCase):
    def test_all_acknowledged_present(self):
        h = H().op(0, "add", "s", 1, 0, 1).op(1, "add", "s", 2, 0, 1, type="info").op(2, "add", "s", 3, 0, 1, type="fail")
        self.assertTrue(checkers.check_set(h.history(), {"s": [[1], [2]]})["valid"])
        self.assertTrue(checkers.check_set(h.history(), {"s": [[1]]})["valid"])  # 2 unknown

    def test_lost_unexpected_duplicated(self):
        h = H().op(0, "add", "s", 1, 0, 1).op(1, "add", "s", 2, 0, 1)
        r = checkers.check_set(h.history(), {"s": [[1]]})
        self.assertEqual(r["lost"], [("s", 2)])
        self.assertFalse(r["valid"])
        r = checkers.check_set(h.history(), {"s": [[1, 2, 9]]})
        self.assertEqual(r["unexpected"], [("s", 9)])
        r = checkers.check_set(h.history(), {"s": [[1, 2, 2]]})
        self.assertEqual(r["duplicated_keys"], ["s"])


class DurabilityAndDeletes(unittest.TestCase):
    def test_durability(self):
        h = H().op(0, "write", "a", "va", 0, 1).op(0, "write", "b", "vb", 2, 3, type="info")
        self.assertTrue(checkers.check_durability(h.history(), {"a": ["va"]})["valid"])
        r = checkers.check_durability(h.history(), {"a": ["other"]})
        self.assertEqual(r["lost"], [("a", "va")])

    def test_zombies(self):
        h = H().op(0, "write", "a", "v", 0, 1).op(0, "delete", "a", None, 2, 3) \
               .op(1, "write", "b", "v", 0, 1).op(1, "delete", "b", None, 2, 3, type="info")
        self.assertTrue(checkers.check_deletes(h.history(), {"a": [], "b": ["v"]})["valid"])
        r = checkers.check_deletes(h.history(), {"a": ["v"]})
        self.assertFalse(r["valid"])
        self.assertEqual(r["zombie_count"], 1)

    def test_a_delete_that_found_nothing_after_an_unknown_write_is_not_a_zombie(self):
        def history(write_type, deleted):
            return [
                {"process": 0, "type": "invoke", "f": "write", "key": "a", "value": "v", "time": 0},
                {"process": 0, "type": write_type, "f": "write", "key": "a", "value": "v", "time": 1},
                {"process": 0, "type": "invoke", "f": "delete", "key": "a", "value": None, "time": 2},
                {"process": 0, "type": "ok", "f": "delete", "key": "a", "value": deleted, "time": 3},
            ]
        # The write's outcome is unknown and the delete removed nothing: the write may
        # have taken effect afterwards.
        r = checkers.check_deletes(history("info", 0), {"a": ["v"]})
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["found_nothing_after_unknown_write"], 1)
        # The delete removed it, or the write had completed: a value that is back is a zombie.
        self.assertFalse(checkers.check_deletes(history("info", 1), {"a": ["v"]})["valid"])
        self.assertFalse(checkers.check_deletes(history("ok", 0), {"a": ["v"]})["valid"])



class QuorumVisibility(unittest.TestCase):
    """R=quorum reads must see W=quorum writes acknowledged before they began."""

    def check(self, h):
        return checkers.check_quorum_visibility(h.history())

    def test_fresh_read_passes(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "read", "k", None, 20, 30, result=1)
        self.assertTrue(self.check(h)["valid"])

    def test_missed_acked_write_fails(self):
        h = (H().op(0, "write", "k", 1, 0, 10).op(0, "write", "k", 2, 20, 30)
             .op(1, "read", "k", None, 40, 50, result=1))
        r = self.check(h)
        self.assertFalse(r["valid"])
        self.assertEqual(r["misses"], 1)

    def test_nil_after_acked_write_fails(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "read", "k", None, 20, 30, result=None)
        self.assertFalse(self.check(h)["valid"])

    def test_concurrent_write_may_be_returned(self):
        # Write 2 overlaps write 3, so a read that returns 2 after both may be right
        # (2 may be the later one, or a sibling that won).
        h = (H().op(0, "write", "k", 2, 0, 30).op(1, "write", "k", 3, 10, 20)
             .op(2, "read", "k", None, 40, 50, result=2))
        self.assertTrue(self.check(h)["valid"])

    def test_siblings_satisfy_the_read(self):
        h = (H().op(0, "write", "k", 1, 0, 10).op(1, "write", "k", 2, 20, 30)
             .op(2, "read", "k", None, 40, 50, result=[1, 2]))
        self.assertTrue(self.check(h)["valid"])

    def test_unknown_write_constrains_nothing(self):
        h = (H().op(0, "write", "k", 1, 0, 10).op(0, "write", "k", 2, 20, 30, type="info")
             .op(1, "read", "k", None, 40, 50, result=1))
        self.assertTrue(self.check(h)["valid"])

    def test_value_never_written_fails(self):
        h = H().op(0, "write", "k", 1, 0, 10).op(1, "read", "k", None, 20, 30, result=7)
        self.assertFalse(self.check(h)["valid"])

if __name__ == "__main__":
    unittest.main()
