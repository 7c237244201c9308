"""What code this is: the package version and, where known, the commit it was built from.

`code_version` is the one place it is read (a ModelVersion's ``lineage.codeVersion``
comes from the trainer's). The commit comes from, in order:

1. ``MLOPS_BUILD_COMMIT`` (`BUILD_COMMIT_ENV`), which the images bake in at build time
   (``images/Dockerfile``: build argument ``REVISION``; `mlops images build` writes
   `checkout_revision`, so an image built from a changed tree says ``<commit>.dirty``);
2. the git checkout the package runs from (a development install, and the local
   cluster's pods, which run the project's own environment), marked ``.dirty`` when
   tracked files differ from that commit.

Elsewhere (a wheel installed without it) the code version is the package version alone.
The result is a PEP 440 version: ``0.1.0+g0123456789ab`` or ``0.1.0+g0123456789ab.dirty``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from mlops_operator import __version__

__all__ = ["BUILD_COMMIT_ENV", "checkout_revision", "code_version"]

BUILD_COMMIT_ENV = "MLOPS_BUILD_COMMIT"
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_DIRTY = ".dirty"
_BAKED = re.compile(rf"^[0-9a-f]{{7,64}}({re.escape(_DIRTY)})?$")
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git") or "git"
    # The checkout may belong to another user (pods run as 65532): read it anyway, lock nothing.
    command = [git, "--no-optional-locks", "-c", "safe.directory=*", "-C", str(_SOURCE_ROOT)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=10, check=False
    )


def _checkout_commit() -> tuple[str, bool] | None:
    if not (_SOURCE_ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        head = _git("rev-parse", "HEAD")
        if head.returncode != 0 or not _COMMIT.match(head.stdout.strip()):
            return None
        dirty = _git("diff", "--quiet", "HEAD", "--").returncode == 1
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip(), dirty


def checkout_revision() -> str | None:
    """The checkout's commit, ``<40 hex>`` or ``<40 hex>.dirty``; None outside a git checkout."""
    found = _checkout_commit()
    if found is None:
        return None
    commit, dirty = found
    return commit + (_DIRTY if dirty else "")


@functools.cache
def code_version() -> str:
    """The package version plus the commit (``+g<12 hex>[.dirty]``) where one is known."""
    baked = _BAKED.match(os.environ.get(BUILD_COMMIT_ENV, "").strip().lower())
    revision = baked.group(0) if baked else checkout_revision()
    if revision is None:
        return __version__
    commit, dirty, _ = revision.partition(_DIRTY)
    return f"{__version__}+g{commit[:12]}{dirty}"
