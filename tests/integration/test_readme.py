"""The README's "Talk to it" session, run as written against a cluster that
tools/itsuka-cluster starts (as tools/quickstart does), on other ports.

Each `$ redis-cli -p 700X ...` line of the first console block after "## Talk to it"
is run with redis-cli (formatted output, as a terminal shows it) and its output must be
exactly the lines the README prints under it. Context tokens differ from cluster to
cluster, as the README says: a token the README shows in a VGET reply stands for the
token this cluster printed there, and is replaced by it in later commands.
"""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
README = os.path.join(ROOT, "README.md")
CLUSTER = os.path.join(ROOT, "tools", "itsuka-cluster")


def talk_to_it_session():
    """[(argv after redis-cli, expected output lines)] from the README."""
    text = open(README).read()
    section = text.split("\n## Talk to it", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S).group(1)
    steps = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((shlex.split(line[2:]), []))
        elif steps:
            steps[-1][1].append(line)
    return steps


TOKEN = re.compile(r'^1\) "([A-Za-z0-9_-]{16,})"$')


@unittest.skipUnless(shutil.which("redis-cli"), "redis-cli not installed")
class ReadmeExamples(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="itsuka-readme-")
        # Three free client ports in a row below 22768 (peer ports +10000).
        self.base = 16000 + (os.getpid() % 2000) * 3
        self.started = False

    def tearDown(self):
        if self.started:
            subprocess.run([CLUSTER, "stop", "--dir", self.dir], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, argv):
        p = subprocess.run(["redis-cli", "--no-raw"] + argv, capture_output=True, text=True, timeout=30)
        return p.stdout.rstrip("\n").split("\n") if p.stdout else []

    def test_talk_to_it_session_prints_what_the_readme_shows(self):
        steps = talk_to_it_session()
        self.assertGreaterEqual(len(steps), 10, "the README's session was not found")
        r = subprocess.run([CLUSTER, "start", "--nodes", "3", "--base-port", str(self.base),
                            "--dir", self.dir, "--bin", harness.ITSUKAD],
                           capture_output=True, text=True, timeout=120)
        self.started = True
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ports = {str(7001 + i): str(self.base + i) for i in range(3)}
        # Every node reaches every other: a write through each is stored on all three.
        harness.wait_until(lambda: all(
            self.cli(["-p", p, "SET", "readme:probe", "x", "W", "all"]) == ["OK"]
            for p in ports.values()), timeout=30, what="3 connected nodes")
        tokens = {}  # README token -> this cluster's
        for argv, expected in steps:
            self.assertEqual(argv[0], "redis-cli")
            args = argv[1:]
            i = args.index("-p")
            args[i + 1] = ports[args[i + 1]]
            args = [tokens.get(a, a) for a in args]
            got = self.cli(args)
            if args[args.index("-p") + 2] == "VGET" and expected and got:
                m_readme, m_got = TOKEN.match(expected[0]), TOKEN.match(got[0])
                self.assertTrue(m_readme and m_got, f"{argv}: {got}")
                tokens[m_readme.group(1)] = m_got.group(1)
                expected = [got[0]] + expected[1:]
            self.assertEqual(got, expected, f"README step {' '.join(argv)}")
        # `restart` of a running node stops it and brings it back, run from any directory.
        pid_before = self.recorded_pid(2)
        r = subprocess.run([CLUSTER, "restart", "--node", "2", "--dir", self.dir],
                           capture_output=True, text=True, timeout=120, cwd="/")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotEqual(self.recorded_pid(2), pid_before)
        harness.wait_until(lambda: self.cli(["-p", ports["7002"], "PING"]) == ["PONG"],
                           timeout=30, what="node2 back after restart")

    def recorded_pid(self, node):
        for line in open(os.path.join(self.dir, "pids")):
            i, pid, _port = line.split()
            if i == str(node):
                return pid
        return None
