"""The demo's view of the cluster: the cluster's own kubectl, JSON in and out, and waiting.

The demo is a client like any user: it applies manifests and reads status through
kubectl, so what it shows is what ``kubectl get`` shows.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["DemoError", "Kubectl", "NotYet", "wait_until"]

T = TypeVar("T")


class DemoError(RuntimeError):
    """A stage of the demo did not happen as expected; the message says which and why."""


@dataclass(frozen=True)
class NotYet:
    """A probe's "not yet" that says what it saw instead: :func:`wait_until`'s error then
    names why the wait failed (a pod's crash, an image not found), not just ``False``."""

    seen: str

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return self.seen


@dataclass(frozen=True)
class Kubectl:
    """kubectl against one cluster and one namespace."""

    binary: Path
    kubeconfig: Path
    namespace: str

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run kubectl; its stdout, or DemoError with its stderr when it fails and `check`."""
        proc = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and proc.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, objects: Iterable[dict[str, Any]]) -> None:
        """Server-side apply `objects` (as the demo's field manager)."""
        body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.run("apply", "--server-side", "--field-manager=mlops-demo", "-f", "-",
                 stdin=json.dumps(body))  # fmt: skip

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """One object of the namespace, or None when it does not exist."""
        out = self.run("get", "-n", self.namespace, kind, name, "-o", "json",
                       "--ignore-not-found")  # fmt: skip
        return json.loads(out) if out.strip() else None

    def list(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        """The namespace's objects of `kind` (matching the label `selector`)."""
        args = ["get", "-n", self.namespace, kind, "-o", "json"]
        if selector:
            args += ["-l", ",".join(selector)]
        items: list[dict[str, Any]] = json.loads(self.run(*args))["items"]
        return items


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 1.0
) -> T:
    """Poll `probe` until it returns something truthy; DemoError naming `what` after `timeout` s.

    Once a second by default: a probe is a kubectl process or two (a Go program's start and
    a TLS handshake the API server pays for too), and the loop's waits last minutes; twice a
    second, they were about 200 kubectl runs of each demo."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")
