"""The fault harness with nodes that come and go, and its cleanup when stopped by a signal.

- MembershipNemesis: short seeded runs of the durability and cregister workloads under
  the membership nemesis (join, decommission, decommission of a stopped node, restart
  from a stale view) combined with kill -9 and a partition: no acknowledged write lost,
  CONSISTENT operations linearizable, every move finished after the heal, replicas
  converged within the bound.
- SignalCleanup: a run stopped by SIGTERM (what `timeout` sends) or SIGINT removes its
  namespaces, veths and bridge and leaves none of its itsukad processes behind.

    python3 tests/fault/test_membership.py --bin build/bin/itsukad
"""
import argparse
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "fault"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from hosts import netns_available  # noqa: E402
from test_harness import load_cli  # noqa: E402

ITSUKAD = None
CLI = os.path.join(HERE, "..", "..", "tools", "itsuka-fault")


def figures(c):
    return ", ".join(f"{k}={v}" for k, v in c.items()
                     if isinstance(v, (int, float, str)) and k != "valid")


class MembershipNemesis(unittest.TestCase):
    def run_workload(self, workload, seed):
        cli = load_cli()
        nemesis = "member,kill" + (",halves" if netns_available() else "")
        o = cli.options(["--workload", workload, "--duration", "10", "--seed", str(seed),
                         "--nodes", "4", "--spares", "2", "--interval", "1.5",
                         "--nemesis", nemesis, "--bin", ITSUKAD, "--base-port", "16531",
                         "--report-dir", os.path.join(os.getcwd(), "fault-reports")]
                        + ([] if netns_available() else ["--loopback"]))
        o.workload = workload
        r = harness.run(o)
        print(f"\n{workload} + membership: {r['operations']} operations, {r['mode']}, schedule: "
              + "; ".join(s["fault"] for s in r["schedule"]))
        for name, c in r["checkers"].items():
            print(f"  {name}: {'valid' if c['valid'] else 'INVALID'} {figures(c)}")
        self.assertGreater(r["operations"], 50)
        changes = [s["fault"] for s in r["schedule"] if "join" in s["fault"] or "decommission" in s["fault"]]
        self.assertTrue(changes, "the nemesis changed no membership")
        self.assertTrue(r["checkers"]["moves_settled"]["valid"], r["checkers"]["moves_settled"])
        self.assertTrue(r["checkers"]["convergence"]["valid"], r["checkers"]["convergence"])
        return r

    def test_durability(self):
        r = self.run_workload("durability", 31)
        self.assertTrue(r["checkers"]["durability"]["valid"], r["checkers"]["durability"])

    def test_cregister(self):
        r = self.run_workload("cregister", 32)
        self.assertTrue(r["checkers"]["linearizable_consistent"]["valid"],
                        r["checkers"]["linearizable_consistent"])


@unittest.skipUnless(netns_available(), "needs root and network namespaces")
class SignalCleanup(unittest.TestCase):
    def stop_run_with(self, sig, seed):
        p = subprocess.Popen([sys.executable, CLI, "--workload", "durability", "--duration", "60",
                              "--seed", str(seed), "--nodes", "3", "--nemesis", "halves,kill,join",
                              "--interval", "1", "--bin", ITSUKAD,
                              "--report-dir", os.path.join(os.getcwd(), "fault-reports")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = p.stdout.readline()   # fault: ... namespaces itskTnA..itskTnB, bridge itskbrT, workdir W
            self.assertIn("bridge itskbr", line)
            bridge = line.split("bridge ")[1].split(",")[0]
            tag = bridge[len("itskbr"):]
            workdir = line.rsplit("workdir ", 1)[1].strip()
            # Wait until the cluster runs and the nemesis has acted (a node restarted or
            # a spare joined), then stop the harness mid-run.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(self.itsukads(workdir)) < 3:
                time.sleep(0.2)
            self.assertGreaterEqual(len(self.itsukads(workdir)), 3)
            time.sleep(4)
            p.send_signal(sig)
            out, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        print(f"\n{signal.Signals(sig).name}: exit {p.returncode}; {out.strip().splitlines()[-1:]}")
        self.assertNotEqual(p.returncode, 0)
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn(f"itsk{tag}n", namespaces)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        self.assertNotIn(bridge + ":", links)
        self.assertNotIn(f"itsk{tag}h", links)
        self.assertEqual(self.itsukads(workdir), [])
        self.assertFalse(os.path.exists(workdir), "the run's directory was left behind")

    @staticmethod
    def itsukads(workdir):
        """Pids of live processes whose command line names the run's directory."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if workdir in cmd and "itsukad" in cmd and state != "Z":
                pids.append(int(pid))
        return pids

    def test_sigterm(self):
        self.stop_run_with(signal.SIGTERM, 41)

    def test_sigint(self):
        self.stop_run_with(signal.SIGINT, 42)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/itsukad")
    args, rest = ap.parse_known_args()
    ITSUKAD = os.path.abspath(args.bin)
    unittest.main(argv=[sys.argv[0]] + rest)
