"""Figures of the local control plane: build time, time to ready, idle memory.

    python benchmarks/localcluster/bench_cluster.py              # warm up-to-ready, idle RSS
    python benchmarks/localcluster/bench_cluster.py --cold-build # also a cold build in empty caches

Prints one line per figure; record them with the date and machine in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold-build", action="store_true")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"# {time.strftime('%Y-%m-%d')} {platform.node()} {os.cpu_count()} cores")
    print(f"# kubernetes {binaries.KUBERNETES_VERSION}, etcd {binaries.ETCD_VERSION}")
    if args.cold_build:
        print(f"cold build of all binaries: {cold_build():.0f} s")
    binaries.ensure_binaries()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp))
        try:
            started = time.monotonic()
            cluster.up()
            print(f"warm up to ready: {time.monotonic() - started:.1f} s")
            deadline = time.monotonic() + args.idle_seconds
            while time.monotonic() < deadline:
                time.sleep(1)
            total = 0
            for status in cluster.status():
                assert status.pid is not None
                rss = _rss_bytes(status.pid)
                total += rss
                print(f"idle RSS {status.name}: {rss / 2**20:.0f} MiB")
            print(f"idle RSS control plane total: {total / 2**20:.0f} MiB")
        finally:
            cluster.down()


if __name__ == "__main__":
    main()
