"""Reading objects through kubectl: the plugin sees exactly what `kubectl get` would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Kubectl", "KubectlError", "find_kubectl"]


class KubectlError(RuntimeError):
    """kubectl failed; the message carries its stderr."""


def find_kubectl() -> str:
    """``$KUBECTL``, else ``kubectl`` on PATH, else the local cluster's cached kubectl."""
    explicit = os.environ.get("KUBECTL")
    if explicit:
        return explicit
    found = shutil.which("kubectl")
    if found:
        return found
    from mlops_operator.localcluster.binaries import KUBERNETES

    cached = KUBERNETES.path("kubectl")
    if cached.is_file():
        return str(cached)
    raise KubectlError("no kubectl: install it, put it on PATH, or set KUBECTL to its path")


@dataclass(frozen=True)
class Kubectl:
    """kubectl with the global flags the user gave (kubeconfig, context)."""

    binary: str
    global_args: tuple[str, ...] = field(default=())

    def _json(self, *args: str) -> Any:
        proc = subprocess.run(
            [self.binary, *self.global_args, *args, "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def list(self, resource: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of `resource` in `namespace` (None: all namespaces)."""
        scope = ["--all-namespaces"] if namespace is None else ["--namespace", namespace]
        items: list[dict[str, Any]] = self._json("get", resource, *scope)["items"]
        return items

    def get(self, resource: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        scope = [] if namespace is None else ["--namespace", namespace]
        try:
            found: dict[str, Any] = self._json("get", resource, name, *scope)
        except KubectlError as exc:
            if "NotFound" in str(exc) or "not found" in str(exc):
                return None
            raise
        return found
