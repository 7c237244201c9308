"""Files other processes read while they are rewritten: written whole or not at all.

`mlops cluster up` runs again in every test worker and every `make demo` while others already
use the cluster; a kubeconfig rewritten in place is empty for a moment, and a kubectl reading
it then fails ("no current-context"). A file written beside its place and renamed over it is
either the old one or the new one to any reader.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` (file mode `mode`) in one rename."""
    # Named per process: two writers at once each rename a whole file of their own.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    # Created with its mode, so a secret is never readable by others, not even for a moment.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    partial.replace(path)
