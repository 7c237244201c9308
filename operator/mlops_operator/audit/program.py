"""The audit Job's program: ``append`` a batch of entries to a log, or ``show`` a log.

``append --key KEY`` reads the entries (a JSON list, oldest first) from
``MLOPS_AUDIT_ENTRIES`` and the store root from ``MLOPS_STORE_URI``: a ``file://`` mount
holds the log as one JSON-lines file, an object store (``s3://``…) as one object per entry
(`mlops_operator.audit.log`). ``show --key KEY`` prints the log's lines either way. Exit
code 0 on success, 2 on bad input, 3 when the store cannot be written or read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from mlops_operator.audit.entry import AuditEntry
from mlops_operator.audit.log import append_entries, read_entries
from mlops_operator.audit.objects import append_objects, read_objects
from mlops_operator.podcontract import AUDIT_ENTRIES_ENV, STORE_URI_ENV
from mlops_operator.storage import ArtifactStore, StorageError

__all__ = ["main", "store_root"]

_ENTRIES = TypeAdapter(list[AuditEntry])


def store_root(uri: str) -> Path | None:
    """The directory of a ``file://`` store URI; None for an object store (``s3://``…)."""
    parts = urlsplit(uri)
    if parts.scheme == "file" and parts.path:
        return Path(parts.path)
    if not parts.scheme or not parts.netloc:
        raise ValueError(
            f"{STORE_URI_ENV}={uri!r}: expected a file system store (file:///path) or an object"
            " store (s3://bucket/prefix)"
        )
    return None


def _check(key: str) -> str:
    if not key.startswith("audit/") or not key.endswith(".jsonl"):
        raise ValueError(f"--key {key!r}: expected audit/<namespace>/<plural>/<name>.jsonl")
    return key


def _log_path(root: Path, key: str) -> Path:
    path = (root / key).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"--key {key!r}: expected audit/<namespace>/<plural>/<name>.jsonl")
    return path


def _append(key: str) -> int:
    uri = os.environ.get(STORE_URI_ENV, "")
    root = store_root(uri)
    entries = _ENTRIES.validate_json(os.environ.get(AUDIT_ENTRIES_ENV) or "[]")
    if root is None:
        written = append_objects(ArtifactStore(uri), key, entries)
    else:
        written = append_entries(_log_path(root, key), entries)
    print(f"appended {written} of {len(entries)} entries to {key}")
    return 0


def _show(key: str) -> int:
    uri = os.environ.get(STORE_URI_ENV, "")
    root = store_root(uri)
    if root is None:
        entries, bad = read_objects(ArtifactStore(uri), key)
    else:
        path = _log_path(root, key)
        if not path.exists():
            print(f"{key}: no audit log yet", file=sys.stderr)
            return 0
        entries, bad = read_entries(path)
    sys.stdout.buffer.write(b"".join(entry.line() for entry in entries))
    if bad:
        print(f"{key}: {bad} line(s) did not parse (torn by a crash?)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``append`` or ``show``; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m mlops_operator.audit")
    parser.add_argument("command", choices=("append", "show"))
    parser.add_argument("--key", required=True, help="audit/<namespace>/<plural>/<name>.jsonl")
    args = parser.parse_args(argv)
    try:
        key = _check(args.key)
        return _append(key) if args.command == "append" else _show(key)
    except (ValueError, ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
