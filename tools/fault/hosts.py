"""Where the nodes of a fault run live, and how the network between them is cut.

NetnsHosts puts every node in its own network namespace, joined by veth pairs to a
bridge in the root namespace, with addresses private to the run (10.77.<tag>.<i>).
Partitions are real packet drops: iptables DROP rules inside the namespaces. Clients
run in the root namespace and reach every node over the bridge.

LoopbackHosts runs every node on 127.0.0.1 with distinct ports, for machines where
namespaces are not allowed; only process faults are possible there.
"""
import os
import subprocess


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


def netns_available():
    if os.geteuid() != 0:
        return False
    name = f"itsk-probe-{os.getpid()}"
    ok = run("ip", "netns", "add", name, check=False).returncode == 0
    if ok:
        ok = run("ip", "netns", "exec", name, "iptables", "-L", "INPUT", check=False).returncode == 0
        run("ip", "netns", "del", name, check=False)
    return ok


class LoopbackHosts:
    partitions = False

    def __init__(self, n, base_port):
        self.n, self.base_port = n, base_port

    def setup(self):
        pass

    def teardown(self):
        pass

    def ip(self, i):
        return "127.0.0.1"

    def client_port(self, i):
        return self.base_port + i

    def peer_port(self, i):
        return self.base_port + 100 + i

    def prefix(self, i):
        return []

    def cut(self, pairs):
        raise RuntimeError("partitions need network namespaces (run as root without --loopback)")

    def heal(self):
        pass


def free_tag(start):
    """A tag (1-250) whose bridge does not exist yet, so concurrent runs on one machine
    never share (or tear down) each other's namespaces."""
    for k in range(250):
        tag = (start + k) % 250 + 1
        if run("ip", "link", "show", f"itskbr{tag}", check=False).returncode != 0:
            return tag
    raise RuntimeError("no free namespace tag (stale itskbr* bridges?)")


class NetnsHosts:
    """n namespaces on a bridge; `tag` (1-250, see free_tag) names them for this run."""
    partitions = True

    def __init__(self, n, tag):
        self.n, self.tag = n, tag
        self.bridge = f"itskbr{tag}"
        self.created = []

    def ns(self, i):
        return f"itsk{self.tag}n{i}"

    def ip(self, i):
        return f"10.77.{self.tag}.{i + 1}"

    def client_port(self, i):
        return 7001

    def peer_port(self, i):
        return 17001

    def prefix(self, i):
        return ["ip", "netns", "exec", self.ns(i)]

    def setup(self):
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"10.77.{self.tag}.254/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i in range(self.n):
            ns, host_end, ns_end = self.ns(i), f"itsk{self.tag}h{i}", f"itsk{self.tag}v{i}"
            run("ip", "netns", "add", ns)
            self.created.append(ns)
            run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            run("ip", "link", "set", ns_end, "netns", ns)
            run("ip", "link", "set", host_end, "master", self.bridge)
            run("ip", "link", "set", host_end, "up")
            run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(i)}/24", "dev", ns_end)
            run("ip", "netns", "exec", ns, "ip", "link", "set", ns_end, "up")
            run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def teardown(self):
        for i in range(self.n):
            run("ip", "netns", "del", self.ns(i), check=False)
            run("ip", "link", "del", f"itsk{self.tag}h{i}", check=False)
        run("ip", "link", "del", self.bridge, check=False)

    def cut(self, pairs):
        """Drops packets from a to b for every (a, b) in pairs (one direction each)."""
        self.heal()
        for a, b in pairs:
            run("ip", "netns", "exec", self.ns(b), "iptables", "-A", "INPUT", "-s", self.ip(a), "-j", "DROP")
            run("ip", "netns", "exec", self.ns(a), "iptables", "-A", "OUTPUT", "-d", self.ip(b), "-j", "DROP")

    def heal(self):
        for i in range(self.n):
            run("ip", "netns", "exec", self.ns(i), "iptables", "-F", check=False)
