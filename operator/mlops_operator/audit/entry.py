"""One decision as a line of the audit log, with an id derived from its content.

The id is a hash of every other field, so the same decision always gets the same
id: whoever writes it again (a retried Job, an operator that crashed after
creating the Job) is recognised, and the appender skips it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AuditEntry", "entry_id", "log_key", "make_entry"]


_ID_LENGTH = 20


class AuditEntry(BaseModel):
    """One decision: what happened to which object, when, why, on what evidence, decided by whom."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=_ID_LENGTH, max_length=_ID_LENGTH, description="Content hash.")
    kind: str = Field(
        min_length=1, description="`ModelDeployment`, `DriftPolicy` or `ModelVersion`."
    )
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    uid: str = Field(default="", description="The object's uid: a re-created namesake differs.")
    time: datetime
    action: str = Field(
        min_length=1,
        description="`Deploy`, `Promote`, `Rollback`, `Abort`, `Retrain`, `Approve`, `Reject`,"
        " `Revoke` …",
    )
    version: int | None = Field(default=None, description="Model version concerned, if any.")
    reason: str = Field(min_length=1)
    message: str = ""
    evidence: dict[str, float] = Field(default_factory=dict)
    actor: str = "mlops-operator"
    details: dict[str, str] = Field(
        default_factory=dict, description="Kind-specific names, e.g. the TrainingJob of a retrain."
    )

    def line(self) -> bytes:
        """The entry as one JSON line (keys sorted, newline-terminated)."""
        payload = self.model_dump(mode="json", exclude_none=True)
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def entry_id(fields: dict[str, Any]) -> str:
    """The id of an entry with these fields (everything but ``id``), stable across processes."""
    canonical = json.dumps(
        {key: value for key, value in fields.items() if key != "id"},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:_ID_LENGTH]


def make_entry(**fields: Any) -> AuditEntry:
    """An `AuditEntry` of `fields`, its id computed from them."""
    draft = AuditEntry.model_validate({"id": "0" * _ID_LENGTH, **fields})
    body = draft.model_dump(mode="json", exclude={"id"})
    return draft.model_copy(update={"id": entry_id(body)})


def log_key(namespace: str, plural: str, name: str) -> str:
    """The store key of an object's log: ``audit/<namespace>/<plural>/<name>.jsonl``.

    The kind's plural keeps a DriftPolicy and the ModelDeployment it watches, which
    often share a name, in separate files.
    """
    for part in (namespace, plural, name):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"{part!r} cannot be a path segment of an audit log key")
    return f"audit/{namespace}/{plural}/{name}.jsonl"
