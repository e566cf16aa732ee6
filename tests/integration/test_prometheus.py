"""A real Prometheus server (Debian's `prometheus`) scrapes every node of a 3-node
cluster on loopback, from a generated scrape config; the test asks its HTTP API
(/api/v1/query) for each node's command latency histogram and hint counter. Skipped
when the prometheus binary is missing (tools/install-deps installs it). Ports are taken
from 20000-20199."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import Cluster, PortRange, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
_ports = PortRange(20000, 20200, 20000 + (os.getpid() % 20) * 10)


def port_in_range():
    """A free loopback port in 20000-20199 (this part's range)."""
    return _ports.take()


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def by_instance(result):
    return {s["metric"]["instance"]: float(s["value"][1]) for s in result}


@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK), "prometheus is not installed (tools/install-deps)")
class PrometheusScrape(unittest.TestCase):
    def test_prometheus_scrapes_latency_and_hints_of_every_node(self):
        cluster = Cluster(3, "--set", "cluster.partitions=16")
        mports = [port_in_range() for _ in cluster.nodes]
        for node, mp in zip(cluster.nodes, mports):
            node.extra += ["--set", f"metrics.port={mp}"]
        tmp = tempfile.mkdtemp(prefix="itsuka-prom-")
        web = port_in_range()
        targets = [f"127.0.0.1:{mp}" for mp in mports]
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: itsuka\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        prom = None
        try:
            cluster.start()
            prom = subprocess.Popen(
                [PROMETHEUS, f"--config.file={tmp}/prometheus.yml",
                 f"--storage.tsdb.path={tmp}/data", f"--web.listen-address=127.0.0.1:{web}"],
                stdout=open(os.path.join(tmp, "prometheus.log"), "wb"), stderr=subprocess.STDOUT)
            for node in cluster.nodes:
                c = node.client()
                for i in range(30):
                    self.assertEqual(c.call("SET", f"p:{node.node_id}:{i}", "v"), "OK")
                    c.call("GET", f"p:{node.node_id}:{i}")
                c.close()

            def all_up():
                try:
                    up = by_instance(query(web, 'up{job="itsuka"}'))
                except OSError:
                    return False
                return up == {t: 1.0 for t in targets}
            wait_until(all_up, timeout=60, interval=0.5, what="prometheus to scrape every node")
            lat = 'sum by (instance) (itsuka_command_duration_seconds_count{command="set"})'
            wait_until(lambda: all(v >= 30 for v in by_instance(query(web, lat)).values()) and
                       len(query(web, lat)) == 3, timeout=30, interval=0.5,
                       what="every node's SET latency count at prometheus")
            buckets = query(web, 'itsuka_command_duration_seconds_bucket{command="set",le="+Inf"}')
            self.assertEqual({s["metric"]["instance"] for s in buckets}, set(targets))
            # A quantile from the histogram, as a dashboard computes it.
            q = by_instance(query(web, "histogram_quantile(0.99, sum by (instance, le) "
                                       "(itsuka_command_duration_seconds_bucket))"))
            self.assertEqual(set(q), set(targets))
            for v in q.values():
                self.assertGreater(v, 0)
            hints = by_instance(query(web, "itsuka_hints_written"))
            self.assertEqual(set(hints), set(targets))
            # A node away: the others keep hints for it, and prometheus sees them grow.
            cluster.nodes[2].stop()
            c = cluster.nodes[0].client()
            for i in range(20):
                c.call("SET", f"h:{i}", "v", "W", "1")
            c.close()
            wait_until(lambda: by_instance(query(web, "itsuka_hints_written")).get(targets[0], 0) > 0,
                       timeout=30, interval=0.5, what="node1's hint counter above 0 at prometheus")
        finally:
            if prom is not None:
                prom.terminate()
                try:
                    prom.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait()
            cluster.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
