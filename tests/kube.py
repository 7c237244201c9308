"""Test helpers that talk to the real API server through the cluster's own kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlops_operator.localcluster.binaries import KUBERNETES

T = TypeVar("T")

KUBECTL = KUBERNETES.path("kubectl")


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the cluster's kubectl; raise with its stderr when `check` and it fails."""
    proc = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def get_json(kubeconfig: Path, *args: str) -> Any:
    """`kubectl get ... -o json`, parsed."""
    return json.loads(kubectl(kubeconfig, "get", *args, "-o", "json").stdout)


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def wait_established(kubeconfig: Path, *names: str, timeout: float = 60) -> None:
    """Wait until every CRD in `names` (``crd/<name>`` or ``<name>``) is Established.

    Polled, not ``kubectl wait``: kubectl fails at once ("accessor error: <nil>") while a
    new CRD has no conditions yet, a moment that lasts longer on a busy API server.
    """
    wanted = [name.removeprefix("crd/") for name in names]

    def ready() -> bool:
        found = get_json(kubeconfig, "crd", *wanted)
        crds = found["items"] if found.get("kind") == "List" else [found]
        return len(crds) == len(wanted) and all(_established(c) for c in crds)

    wait_for(ready, timeout=timeout, what=f"CRDs {', '.join(wanted)} to be Established")


def wait_for(
    probe: Callable[[], T | None], timeout: float = 120, interval: float = 0.25, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what or probe}; last: {last!r}"
    )
