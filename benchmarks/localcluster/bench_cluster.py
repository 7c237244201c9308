"""Figures of the local cluster: build time, time to ready, idle memory, pod start latency.

    python benchmarks/localcluster/bench_cluster.py              # warm up-to-ready, idle RSS, pods
    python benchmarks/localcluster/bench_cluster.py --cold-build # also a cold build in empty caches

Uses the machine's local cluster (the node's network is machine-wide), so it
refuses to run while that cluster is up. Prints one line per figure; record them
with the date and machine in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from mlops_operator.localcluster import binaries
from mlops_operator.localcluster.cluster import LocalCluster


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cold_build() -> float:
    """Seconds to build every binary with empty module, build and project caches."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            MLOPS_CACHE_DIR=f"{tmp}/cache",
            GOCACHE=f"{tmp}/gocache",
            GOMODCACHE=f"{tmp}/gomod",
        )
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "mlops_operator.localcluster.binaries"], env=env, check=True
        )
        elapsed = time.monotonic() - started
        # The module cache is read-only by design; make it removable.
        subprocess.run(["chmod", "-R", "u+w", tmp], check=True)
    return elapsed


class _Api:
    """Just enough of the API for the measurements: admin client certificate, JSON."""

    def __init__(self, cluster: LocalCluster) -> None:
        pki = cluster.layout.pki
        self.base = f"https://127.0.0.1:{cluster.layout.load_ports().apiserver}"  # type: ignore[union-attr]
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(pki / "admin.crt", pki / "admin.key")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, context=self.context, timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result


SERVER = "import http.server as h; h.ThreadingHTTPServer(('0.0.0.0', 8080), h.SimpleHTTPRequestHandler).serve_forever()"


def pod_start_latency(cluster: LocalCluster, runs: int) -> tuple[list[float], list[float]]:
    """Seconds from creation (bound to the node) to Running, and to Ready, per pod."""
    api = _Api(cluster)
    running: list[float] = []
    ready: list[float] = []
    for i in range(runs):
        name = f"latency-{i}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": "local-0",
                "containers": [
                    {
                        "name": "web",
                        "image": "mlops-operator/python:bench",
                        "command": ["python", "-c", SERVER],
                        "readinessProbe": {
                            "httpGet": {"path": "/", "port": 8080},
                            "periodSeconds": 1,
                        },
                    }
                ],
            },
        }
        started = time.monotonic()
        api.call("POST", "/api/v1/namespaces/default/pods", pod)
        t_running = t_ready = None
        while t_ready is None and time.monotonic() - started < 60:
            status = api.call("GET", f"/api/v1/namespaces/default/pods/{name}").get("status", {})
            now = time.monotonic() - started
            if t_running is None and status.get("phase") == "Running":
                t_running = now
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            ):
                t_ready = now
            time.sleep(0.02)
        api.call("DELETE", f"/api/v1/namespaces/default/pods/{name}")
        if t_running is None or t_ready is None:
            raise RuntimeError(f"pod {name} did not become ready within 60 s")
        running.append(t_running)
        ready.append(t_ready)
    return running, ready


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold-build", action="store_true")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--pods", type=int, default=5)
    parser.add_argument(
        "--control-plane-only", action="store_true", help="a private control plane, no node"
    )
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()} {os.cpu_count()} cores")
    print(f"# kubernetes {binaries.KUBERNETES_VERSION}, etcd {binaries.ETCD_VERSION}")
    if args.cold_build:
        print(f"cold build of all binaries: {cold_build():.0f} s")
    binaries.ensure_binaries()
    if args.control_plane_only:
        # A private control plane can run beside the machine's cluster.
        with tempfile.TemporaryDirectory() as tmp:
            measure(LocalCluster(Path(tmp), with_node=False), args.idle_seconds, pods=0)
        return
    cluster = LocalCluster()
    if cluster.is_running():
        sys.exit("the local cluster is up: stop it first (mlops cluster down)")
    measure(cluster, args.idle_seconds, args.pods)


def measure(cluster: LocalCluster, idle_seconds: float, pods: int) -> None:
    """Up to ready, idle memory per component, and pod start latency; then down."""
    try:
        started = time.monotonic()
        cluster.up()
        print(f"warm up to ready: {time.monotonic() - started:.1f} s")
        deadline = time.monotonic() + idle_seconds
        while time.monotonic() < deadline:
            time.sleep(1)
        total = 0
        for status in cluster.status():
            assert status.pid is not None
            rss = _rss_bytes(status.pid)
            total += rss
            print(f"idle RSS {status.name}: {rss / 2**20:.0f} MiB")
        print(f"idle RSS total: {total / 2**20:.0f} MiB")
        if pods:
            to_running, to_ready = pod_start_latency(cluster, pods)
            for label, values in (("Running", to_running), ("Ready (HTTP server)", to_ready)):
                print(
                    f"pod start, created to {label}: median {statistics.median(values):.2f} s, "
                    f"max {max(values):.2f} s over {len(values)} pods"
                )
    finally:
        cluster.down()


if __name__ == "__main__":
    main()
