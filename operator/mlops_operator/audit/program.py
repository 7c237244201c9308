"""The audit Job's program: ``append`` a batch of entries to a log, or ``show`` a log.

``append --key KEY`` reads the entries (a JSON list, oldest first) from
``MLOPS_AUDIT_ENTRIES`` and the store root from ``MLOPS_STORE_URI`` (a
``file://`` mount: append needs a file system); ``show --key KEY`` prints the
log's lines. Exit code 0 on success, 2 on bad input.
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
from mlops_operator.podcontract import AUDIT_ENTRIES_ENV, STORE_URI_ENV

__all__ = ["main", "store_root"]

_ENTRIES = TypeAdapter(list[AuditEntry])


def store_root(uri: str) -> Path:
    """The directory of a ``file://`` store URI; any other scheme cannot hold an appended log."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or not parts.path:
        raise ValueError(
            f"{STORE_URI_ENV}={uri!r}: the audit log needs a file system store (file:///path);"
            " object stores cannot append"
        )
    return Path(parts.path)


def _log_path(key: str) -> Path:
    root = store_root(os.environ.get(STORE_URI_ENV, ""))
    path = (root / key).resolve()
    if not key.startswith("audit/") or not path.is_relative_to(root.resolve()):
        raise ValueError(f"--key {key!r}: expected audit/<namespace>/<plural>/<name>.jsonl")
    return path


def _append(key: str) -> int:
    path = _log_path(key)
    entries = _ENTRIES.validate_json(os.environ.get(AUDIT_ENTRIES_ENV) or "[]")
    written = append_entries(path, entries)
    print(f"appended {written} of {len(entries)} entries to {key}")
    return 0


def _show(key: str) -> int:
    path = _log_path(key)
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
        return _append(args.key) if args.command == "append" else _show(args.key)
    except (ValueError, ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
