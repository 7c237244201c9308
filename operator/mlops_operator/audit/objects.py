"""The audit log on an object store: one object per entry, never rewritten, read in order.

An object store cannot append to an object, so there the log ``<key>`` is a folder,
``<key without .jsonl>/``, of one object per entry named ``<time>-<id>.json``: written once
(content-addressed by its sha256, so a second writer of the same entry changes nothing) and
read back in name order, which is the decisions' order. Which entries are written follows the
file layout's rule (`mlops_operator.audit.log.fresh_entries`). Imported only by the appender
program (the trainer image, which carries fsspec), never by the operator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC

from pydantic import ValidationError

from mlops_operator.audit.entry import AuditEntry
from mlops_operator.audit.log import fresh_entries
from mlops_operator.storage.store import ArtifactStore, StorageError, sha256_bytes

__all__ = ["append_objects", "objects_prefix", "read_objects"]

_READ_ATTEMPTS = 5


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
    fresh = fresh_entries(entries, present)
    for entry in fresh:
        line = entry.line()
        store.put_bytes(f"{prefix}/{_object_name(entry)}", line, sha256=sha256_bytes(line))
    return len(fresh)


def _read(store: ArtifactStore, name: str) -> bytes | None:
    """The object `name`, or None if it vanished since it was listed.

    Two appenders may write the same entry at once (identical bytes); while one replaces the
    other's object, some servers (versitygw's posix backend) briefly show it listed but
    absent. A few short retries see it back; an object still absent is left for a later read.
    """
    for attempt in range(_READ_ATTEMPTS):
        try:
            return store.read_bytes(name)
        except StorageError:
            time.sleep(0.1 * (attempt + 1))
    return None


def read_objects(store: ArtifactStore, key: str) -> tuple[list[AuditEntry], int]:
    """The entries of the log `key` in an object store, in order, and how many did not parse."""
    entries, bad = [], 0
    for name in store.keys(objects_prefix(key)):
        data = _read(store, name)
        if data is None:
            continue
        try:
            entries.append(AuditEntry.model_validate_json(data))
        except ValidationError:
            bad += 1
    return entries, bad
