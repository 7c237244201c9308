"""`mlops demo`: the main job, on the local cluster.

Today it brings the local cluster up, installs the CRDs and shows that every
part is healthy: the control plane, the node, Services, DNS and Prometheus.
The closed loop (train, validate, deploy, drift, retrain) joins it as the
controllers land.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

__all__ = ["register"]


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _demo(args: argparse.Namespace) -> int:
    from mlops_operator.crdgen.render import crd_stream
    from mlops_operator.localcluster.binaries import KUBERNETES
    from mlops_operator.localcluster.cluster import LocalCluster

    cluster = LocalCluster()
    _step("bringing the local cluster up (first run: builds Kubernetes from its Go modules)")
    cluster.up()
    kubectl = [str(KUBERNETES.path("kubectl")), f"--kubeconfig={cluster.layout.admin_kubeconfig}"]
    _step("installing the mlops.dev CRDs")
    subprocess.run(
        [*kubectl, "apply", "--server-side", "-f", "-"],
        input=crd_stream(),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            *kubectl,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=mlops-operator",
        ],
        check=True,
    )
    _step("the cluster")
    for status in cluster.status():
        print(f"    {status.name:<26} {'healthy' if status.healthy else 'NOT HEALTHY'}")
    subprocess.run([*kubectl, "get", "nodes", "-o", "wide"], check=True)
    subprocess.run([*kubectl, "api-resources", "--categories=mlops"], check=True)
    _step(f'done: eval "$({sys.argv[0]} cluster env)" to use it; `mlops cluster down` stops it')
    return 0 if all(s.healthy for s in cluster.status()) else 1


def register(subparsers: Any) -> None:
    """Add `mlops demo` to the CLI."""
    subparsers.add_parser("demo", help="the main job on the local cluster").set_defaults(func=_demo)
