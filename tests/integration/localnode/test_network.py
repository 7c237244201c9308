"""Pod network namespaces: a node removes only those of the pods on its own bridge.

Namespace names (``/run/netns``) and ``/etc/netns`` are machine-wide, while a node's
bridge and its pods' host-side veths live in the network namespace it runs in. Clusters
started in network namespaces of their own share one machine, so a node starting (or
`down`) must leave the other clusters' pods alone. The cleanup runs here in a scratch
network namespace standing in for a node's, never in the session cluster's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True)
    return {line.split()[0] for line in listing.stdout.splitlines() if line.split()}


def test_a_node_removes_only_the_namespaces_of_its_own_pods() -> None:
    scratch = f"t-node-{uuid.uuid4().hex[:8]}"
    ours, theirs = (uuid.uuid4().hex[:10] for _ in range(2))
    pods = {name: f"mlops-{name}" for name in (ours, theirs)}
    try:
        for netns in (scratch, *pods.values()):
            _ip("netns", "add", netns)
        for netns in pods.values():
            (NETNS_ETC / netns).mkdir(parents=True)
            (NETNS_ETC / netns / "resolv.conf").write_text("nameserver 10.96.0.10\n")
        # Our pod's host-side veth sits in the node's namespace, as PodNetwork.create puts it.
        _ip("-n", scratch, "link", "add", f"vm{ours}", "type", "veth",
            "peer", "name", "eth0", "netns", pods[ours])  # fmt: skip

        cleanup = "from mlops_operator.localcluster import network; network.remove_pod_namespaces()"
        subprocess.run(
            ["ip", "netns", "exec", scratch, sys.executable, "-c", cleanup],
            check=True,
            capture_output=True,
            timeout=60,
        )

        left = _namespaces()
        assert pods[ours] not in left, "the node's own pod namespace was left behind"
        assert not (NETNS_ETC / pods[ours]).exists()
        assert pods[theirs] in left, "another cluster's pod lost its network namespace"
        assert (NETNS_ETC / pods[theirs] / "resolv.conf").exists()
    finally:
        for netns in (scratch, *pods.values()):
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)
            if netns != scratch:
                shutil.rmtree(NETNS_ETC / netns, ignore_errors=True)
