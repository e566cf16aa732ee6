"""The fault harness with anti-entropy repair as the healing step: after the nemesis
heals, `itsuka-admin repair` runs (tombstone grace 0, so tombstones every replica holds
are purged), a dry run must then find no key differing between replicas, and the delete
and set checkers and convergence must still hold on the reads that follow.

    python3 tests/fault/test_repair_heal.py --bin build/bin/itsukad
"""
import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "fault"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from hosts import netns_available  # noqa: E402
from test_harness import load_cli  # noqa: E402

ITSUKAD = None


class RepairHeals(unittest.TestCase):
    def run_workload(self, workload, seed):
        cli = load_cli()
        o = cli.options(["--workload", workload, "--duration", "6", "--seed", str(seed),
                         "--interval", "1.5", "--max-ops", "100000", "--bin", ITSUKAD, "--repair",
                         "--set", "repair.tombstone_grace_s=1", "--set", "handoff.max_hint_age_s=1", "--set", "repair.request_timeout_ms=2000",
                         "--set", "repair.keys_per_s=0",
                         "--report-dir", os.path.join(os.getcwd(), "fault-reports")]
                        + ([] if netns_available() else ["--loopback"]))
        o.workload = workload
        r = harness.run(o)
        print(f"\n{workload} + repair: {r['operations']} operations, {r['mode']}, schedule: "
              + "; ".join(s["fault"] for s in r["schedule"]))
        for name, c in r["checkers"].items():
            print(f"  {name}: {'valid' if c['valid'] else 'INVALID'} "
                  + ", ".join(f"{k}={v}" for k, v in c.items() if isinstance(v, (int, float)) and k != "valid"))
        self.assertGreater(r["operations"], 50)
        self.assertTrue(r["checkers"]["repair"]["valid"], r["checkers"]["repair"])
        self.assertTrue(r["checkers"]["convergence"]["valid"])
        return r

    def test_delete(self):
        r = self.run_workload("delete", 23)
        self.assertTrue(r["checkers"]["deletes"]["valid"], r["checkers"]["deletes"])

    def test_set(self):
        r = self.run_workload("set", 22)
        self.assertTrue(r["checkers"]["set"]["valid"], r["checkers"]["set"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/itsukad")
    args, rest = ap.parse_known_args()
    ITSUKAD = os.path.abspath(args.bin)
    unittest.main(argv=[sys.argv[0]] + rest)
