"""Appending to and reading an audit log: append-only, each entry once, in order.

Two layouts of one log, chosen by the store. On a file system (the artifact PVC) the log is
one JSON-lines file, ``<key>`` (below). An object store cannot append to an object, so there
the log is a folder, ``<key without .jsonl>/``, of one object per entry named
``<time>-<id>.json``: written once and never rewritten (content-addressed by the entry's
sha256, so a second writer of the same entry changes nothing), and read back in name order,
which is the decisions' order (`append_objects`, `read_objects`).

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
from datetime import UTC
from pathlib import Path

from pydantic import ValidationError

from mlops_operator.audit.entry import AuditEntry
from mlops_operator.storage.store import ArtifactStore, sha256_bytes

__all__ = ["append_entries", "append_objects", "objects_prefix", "read_entries", "read_objects"]


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


def _fresh(entries: Sequence[AuditEntry], present: set[str]) -> list[AuditEntry]:
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
        fresh = _fresh(entries, _ids(content))
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


def objects_prefix(key: str) -> str:
    """The folder of a log's entry objects in an object store: the key without ``.jsonl``."""
    return key.removesuffix(".jsonl")


def _object_name(entry: AuditEntry) -> str:
    # UTC with microseconds, fixed width: names sort as the decisions' times do.
    return f"{entry.time.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{entry.id}.json"


def append_objects(store: ArtifactStore, key: str, entries: Sequence[AuditEntry]) -> int:
    """`append_entries` for an object store: one object per fresh entry; how many were written."""
    prefix = objects_prefix(key)
    present = {name.rsplit("-", 1)[-1].removesuffix(".json") for name in store.keys(prefix)}
    fresh = _fresh(entries, present)
    for entry in fresh:
        line = entry.line()
        store.put_bytes(f"{prefix}/{_object_name(entry)}", line, sha256=sha256_bytes(line))
    return len(fresh)


def read_objects(store: ArtifactStore, key: str) -> tuple[list[AuditEntry], int]:
    """The entries of the log `key` in an object store, in order, and how many did not parse."""
    entries, bad = [], 0
    for name in store.keys(objects_prefix(key)):
        try:
            entries.append(AuditEntry.model_validate_json(store.read_bytes(name)))
        except ValidationError:
            bad += 1
    return entries, bad
