"""Machine packages the local node needs, installed from Debian when missing.

Nothing installed by hand survives to a new machine, so `mlops cluster up`
installs what it runs: iproute2 (network namespaces), nftables (kube-proxy's
mode and the containment rule), conntrack, e2fsprogs and mount (the volumes'
loop-mounted ext4 images), and Prometheus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping

__all__ = ["REQUIRED", "ensure_packages"]

# executable -> Debian package
REQUIRED = {
    "ip": "iproute2",
    "nft": "nftables",
    "conntrack": "conntrack",
    "mkfs.ext4": "e2fsprogs",
    "losetup": "mount",
    "prometheus": "prometheus",
}


def _missing(required: Mapping[str, str]) -> list[str]:
    return sorted({pkg for exe, pkg in required.items() if shutil.which(exe) is None})


def ensure_packages(
    required: Mapping[str, str] = REQUIRED, *, purpose: str = "the local node"
) -> None:
    """Install the missing packages of `required` (executable -> Debian package) with apt-get.

    Root only; fails clearly otherwise, naming `purpose` and the packages.
    """
    missing = _missing(required)
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"{purpose} needs {', '.join(missing)}: install them (Debian/Ubuntu: "
            f"apt-get install {' '.join(missing)}) and run this as root"
        )
    print(f"[setup] installing {', '.join(missing)} from Debian", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    if still := _missing(required):
        raise RuntimeError(f"still missing after apt-get: {', '.join(still)}")
