"""Deployment: --check-config's address and path checks, the README's five-host example
config, and the systemd unit in conf/systemd (systemd-analyze verify, skipped where the
tool is missing)."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ITSUKAD, make_secret

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def check(*args, cwd=None):
    r = subprocess.run([ITSUKAD, "--check-config", *args], capture_output=True, timeout=30,
                       cwd=cwd)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itsuka-deploy-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_addresses_are_checked(self):
        for bad in ("300.1.1.1", "localhost", "10.0.0", "::g"):
            code, out = check("--data-dir", self.tmp + "/d", "--set", f"server.bind={bad}")
            self.assertEqual(code, 2, (bad, out))
            self.assertIn("server.bind", out)
        code, out = check("--data-dir", self.tmp + "/d", "--set", "server.bind=::1")
        self.assertEqual(code, 0, out)

    def test_paths_are_checked(self):
        code, out = check("--data-dir", self.tmp + "/new/deeper/data")
        self.assertEqual(code, 0, out)  # created at startup under a writable parent
        open(self.tmp + "/file", "w").close()
        code, out = check("--data-dir", self.tmp + "/file/data")
        self.assertEqual(code, 2, out)
        self.assertIn("node.data_dir", out)
        if os.getuid() != 0:  # root may write anywhere
            ro = self.tmp + "/ro"
            os.makedirs(ro)
            os.chmod(ro, 0o500)
            code, out = check("--data-dir", ro + "/data")
            self.assertEqual(code, 2, out)
            self.assertIn("cannot create or write", out)
        code, out = check("--data-dir", self.tmp + "/d", "--log-file", self.tmp + "/nodir/x.log")
        self.assertEqual(code, 2, out)
        self.assertIn("log.file", out)
        code, out = check("--data-dir", self.tmp + "/d", "--set", "tls.port=7443",
                          "--set", f"tls.cert_file={self.tmp}/missing.crt",
                          "--set", f"tls.key_file={self.tmp}/missing.key",
                          "--set", "tls.auth_clients=no")
        self.assertEqual(code, 2, out)
        self.assertIn("tls.cert_file", out)
        secret = make_secret(self.tmp + "/s.secret")
        os.chmod(secret, 0o644)
        code, out = check("--data-dir", self.tmp + "/d", "--set", f"cluster.secret_file={secret}")
        self.assertEqual(code, 2, out)
        self.assertIn("chmod 600", out)
        os.chmod(secret, 0o600)
        code, out = check("--data-dir", self.tmp + "/d", "--set", f"cluster.secret_file={secret}")
        self.assertEqual(code, 0, out)

    def test_the_readme_five_host_config_checks(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        m = re.search(r"```toml\n(# /etc/itsuka/itsuka.toml on host 10.0.0.1.*?)```", readme, re.S)
        self.assertIsNotNone(m, "the five-host example is gone from the README")
        base = m.group(1)
        secret = make_secret(self.tmp + "/cluster.secret")
        for k in range(1, 6):
            text = base.replace('id = "node1"', f'id = "node{k}"')
            text = text.replace('bind = "10.0.0.1"', 'bind = "127.0.0.1"')  # not this host's
            seeds = ", ".join(f'"node{j}@10.0.0.{j}:16379"' for j in range(1, 6) if j != k)
            text = re.sub(r"seeds = \[.*?\]", f"seeds = [{seeds}]", text, flags=re.S)
            text = text.replace("/var/lib/itsuka/itsuka", f"{self.tmp}/data{k}")
            text = text.replace("/etc/itsuka/cluster.secret", secret)
            path = f"{self.tmp}/node{k}.toml"
            with open(path, "w") as f:
                f.write(text)
            code, out = check("--config", path)
            self.assertEqual(code, 0, (k, out, text))


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class SystemdUnit(unittest.TestCase):
    def test_the_unit_verifies(self):
        tmp = tempfile.mkdtemp(prefix="itsuka-unit-")
        try:
            with open(os.path.join(ROOT, "conf", "systemd", "itsuka@.service")) as f:
                unit = f.read()
            self.assertIn("ExecStartPre=/usr/local/bin/itsukad --config /etc/itsuka/%i.toml --check-config", unit)
            for must in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=itsuka/%i",
                         "User=itsuka", "KillSignal=SIGTERM"):
                self.assertIn(must, unit)
            unit = unit.replace("/usr/local/bin/itsukad", os.path.abspath(ITSUKAD))
            path = os.path.join(tmp, "itsuka@test.service")
            with open(path, "w") as f:
                f.write(unit)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, timeout=60)
            out = (r.stdout + r.stderr).decode(errors="replace")
            # Complaints about the host (no running systemd, no user 'itsuka', the docs
            # link) are not the unit's; anything about its settings is.
            problems = [l for l in out.splitlines()
                        if "itsuka@test.service" in l and not re.search(
                            r"Documentation|user|User|Failed to|not found|No such file|docs", l)]
            self.assertEqual(problems, [], out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
