"""`up` is idempotent and `down` leaves nothing behind.

Runs a second, private control plane (no node: the node's network belongs to
the session's cluster) so that the shared cluster is not disturbed.
"""

from __future__ import annotations

import socket
from pathlib import Path

from mlops_operator.localcluster.cluster import LocalCluster


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_twice_then_down_leaves_nothing(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "cluster", with_node=False)
    try:
        ports = cluster.up()
        first = {s.name: s.pid for s in cluster.status()}
        assert all(s.healthy for s in cluster.status())

        assert cluster.up() == ports
        assert {s.name: s.pid for s in cluster.status()} == first, "a second up restarted things"
    finally:
        stopped = cluster.down()

    assert sorted(stopped) == sorted(first)
    assert all(s.pid is None for s in cluster.status())
    for pid in first.values():
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} survived down"
    for port in vars(ports).values():
        assert not _listening(port), f"port {port} still listens after down"
    assert cluster.down() == [], "a second down found something to stop"
