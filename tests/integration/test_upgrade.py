"""Peer protocol negotiation and a rolling upgrade (docs/DESIGN.md section 3, Versions).

The old build is emulated by this build capped at protocol 4 (cluster.max_protocol_version
= 4), which then negotiates exactly as builds of protocol 4 did (exact match, the same
refusal reason). tools/upgrade-test runs the same workload against a real older build."""
import os
import subprocess
import unittest

from harness import ITSUKAD, Cluster, info, wait_until
from upgrade_workload import peer_protocols, rolling_upgrade

CAP4 = ("--set", "cluster.max_protocol_version=4")


class Upgrade(unittest.TestCase):
    def test_a_loaded_cluster_upgrades_node_by_node_from_protocol_4_to_5(self):
        mixed = []

        def check_mixed(cluster, upgraded):
            # Upgraded nodes speak 5 among themselves and 4 with the capped ones.
            for i, node in enumerate(cluster.nodes):
                want = {}
                for j, other in enumerate(cluster.nodes):
                    if i != j:
                        want[other.node_id] = 5 if i < upgraded and j < upgraded else 4
                wait_until(lambda: peer_protocols(node) == want, timeout=20,
                           what=f"{node.node_id}'s connections at {want}")
            mixed.append(upgraded)

        rep = rolling_upgrade(ITSUKAD, ITSUKAD, old_args=CAP4, new_args=(), on_mixed=check_mixed,
                              log=lambda s: None)
        self.assertEqual(mixed, [1, 2, 3])
        self.assertEqual(rep["bad"], [], rep)
        self.assertEqual(rep["lost"], [], rep)
        self.assertGreater(rep["writes_acked"], 100, rep)
        self.assertGreater(rep["keys_checked"], 50, rep)
        # A message a peer's version cannot read was never sent to it.
        self.assertEqual(rep["refused"], {"node1": 0, "node2": 0, "node3": 0}, rep)
        for node_id, protos in rep["protocols"].items():
            self.assertEqual(set(protos.values()), {5}, (node_id, protos))

    def test_negotiation_is_reported_and_logged(self):
        cluster = Cluster(3, "--set", "cluster.partitions=16")
        cluster.nodes[2].extra += list(CAP4)
        try:
            cluster.start()
            n1, _, n3 = cluster.nodes
            self.assertEqual(info(n1, "cluster")["peer_protocol"], "4-5")
            self.assertEqual(info(n3, "cluster")["peer_protocol"], "4-4")
            self.assertEqual(peer_protocols(n1), {"node2": 5, "node3": 4})
            self.assertEqual(peer_protocols(n3), {"node1": 4, "node2": 4})
            # PeerInfo (protocol 5) reached node1 from node2 only: never sent to node3.
            lines = {v.split(",")[0]: v for k, v in info(n1, "cluster").items()
                     if k.startswith("peer") and k[4:].isdigit()}
            wait_until(lambda: "speaks=4-5" in "".join(
                v for k, v in info(n1, "cluster").items() if k.startswith("peer") and k[4:].isdigit()),
                timeout=10, what="node2's PeerInfo at node1")
            self.assertNotIn("speaks=", lines["id=node3"])
            self.assertEqual(info(n3, "cluster")["peer_messages_refused"], "0")
            self.assertEqual(info(n1, "cluster")["peer_messages_unsupported"], "0")
            # node1 offered 5 to node3, which answered as a protocol-4 build does; node1
            # then offered 4.
            with open(n1.log_path, errors="replace") as f:
                log = f.read()
            self.assertIn("speaks only peer protocol 4 (this node offered 5); offering 4", log)
            with open(n3.log_path, errors="replace") as f:
                self.assertIn("protocol version 5, expected 4", f.read())
        finally:
            cluster.cleanup()

    def test_max_protocol_version_outside_the_builds_range_is_refused(self):
        for bad in ("3", "6"):
            r = subprocess.run([ITSUKAD, "--check-config", "--set", f"cluster.max_protocol_version={bad}"],
                               capture_output=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn(b"speaks peer protocol versions 4 to 5", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
