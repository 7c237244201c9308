"""Appending to and reading an audit log file: append-only, each entry once, in order.

This is the layout on a file system (the artifact PVC): one JSON-lines file. On an object
store, which cannot append, the log is one object per entry (`mlops_operator.audit.objects`),
under the same rules (`fresh_entries`).

`append_entries` takes a batch oldest first (the appender gets an object's whole
bounded history each time) and writes only the entries after the newest one the
file already holds. Every batch is a suffix-closed view of one history, so two
Jobs racing, a retried Job or a Job older than the last one all leave each entry
in the file once and in the order of the decisions. An exclusive ``flock`` makes
read-decide-write one step between processes; lines are written with
``O_APPEND`` and made durable with ``fsync``; nothing is ever rewritten. A line
torn by a crash (no final newline) is left as it is, ended, and skipped by readers.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from mlops_operator.audit.entry import AuditEntry

__all__ = ["append_entries", "fresh_entries", "read_entries"]


def _ids(content: bytes) -> set[str]:
    found = set()
    for line in content.splitlines():
        try:
            found.add(AuditEntry.model_validate_json(line).id)
        except ValidationError:
            continue
    return found


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fresh_entries(entries: Sequence[AuditEntry], present: set[str]) -> list[AuditEntry]:
    """The entries after the newest one already logged, not logged themselves.

    An entry older than one already logged and missing from the log is not added: it would
    land after a newer decision.
    """
    known = [i for i, entry in enumerate(entries) if entry.id in present]
    return [e for e in entries[known[-1] + 1 if known else 0 :] if e.id not in present]


def append_entries(path: Path, entries: Sequence[AuditEntry]) -> int:
    """Append the entries of `entries` (oldest first) newer than any already in `path`; how many.

    The file and its directories are created when missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        content = _read_all(fd)
        fresh = fresh_entries(entries, _ids(content))
        if not fresh:
            return 0
        torn = bool(content) and not content.endswith(b"\n")
        _write_all(fd, (b"\n" if torn else b"") + b"".join(e.line() for e in fresh))
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    if created:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name is durable too
        finally:
            os.close(directory)
    return len(fresh)


def read_entries(path: Path) -> tuple[list[AuditEntry], int]:
    """The entries of the log at `path` in file order, and how many lines did not parse."""
    entries, bad = [], 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entries.append(AuditEntry.model_validate_json(line))
        except ValidationError:
            bad += 1
    return entries, bad
