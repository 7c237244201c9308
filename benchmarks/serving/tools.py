"""Setting the benchmarks up: the tools they drive, installed when missing or named when not.

A benchmark that needs a load generator or a profiler installs it from Debian's packages
when it runs as root (as ``make test`` and CI do here), builds it from its Go module into
the project's cache when that is how it is distributed, or stops with what is missing and
the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["MissingTool", "ensure_debian_package", "ensure_go_tool"]

GO_BIN = Path.home() / ".cache" / "mlops-operator" / "bench-tools"


class MissingTool(RuntimeError):
    """A tool the benchmark needs is not installed and could not be installed."""


def ensure_debian_package(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first when it is missing."""
    found = shutil.which(command)
    if found:
        return found
    how = f"apt-get install -y {package}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingTool(f"{command} is not installed; install it with `{how}` (as root)")
    print(f"# installing {package} ({how})", flush=True)
    for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0 and step[1] == "install":
            raise MissingTool(f"`{how}` failed: {done.stderr.strip()[-500:]}")
    found = shutil.which(command)
    if not found:
        raise MissingTool(f"`{how}` installed no {command}")
    return found


def ensure_go_tool(name: str, module: str) -> str:
    """The path of a Go program built once from ``module`` (``path/cmd/x@version``) into the cache."""
    binary = GO_BIN / name
    if binary.exists():
        return str(binary)
    go = shutil.which("go")
    if go is None:
        raise MissingTool(f"{name} is built from the Go module {module}; Go is not installed")
    print(f"# building {name} from {module}", flush=True)
    GO_BIN.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [go, "install", module],
        env=os.environ | {"GOBIN": str(GO_BIN), "CGO_ENABLED": "0"},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0 or not binary.exists():
        raise MissingTool(f"`go install {module}` failed: {done.stderr.strip()[-800:]}")
    return str(binary)
