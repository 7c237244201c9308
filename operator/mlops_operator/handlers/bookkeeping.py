"""Kopf's per-object bookkeeping, kept to one short annotation.

Kopf decides whether an object changed since it was last handled by comparing it
with a copy of what it handled, which its default storage keeps as JSON in the
``last-handled-configuration`` annotation: the whole spec plus every label and
annotation, so it was most of ``kubectl get -o yaml`` (a DriftPolicy's retrain
template twice over, once in the spec and once in the annotation).

The handlers here never read Kopf's ``old``, ``new`` or ``diff``: each reconciles
the object as it is now. All Kopf needs from the stored state is the answer to
"did the spec change since it was handled?", and a digest answers that. So
`SpecDigestStorage` keeps ``mlops.dev/last-handled-spec: sha256:<hex>`` (a
71-character value whatever the spec's size): an unchanged spec reads back as the object
itself (no diff: nothing to do, or a resume after a restart), a changed one as
nothing known of the spec (a diff on ``spec``: the update handler runs), no
annotation as a new object (the create handler runs). Labels and annotations are
left out of the digest: no handler reacts to them.

Kopf's progress records (``mlops.dev/<handler>``) only exist while a handler is
being retried and are removed when it finishes, so they stay as Kopf writes them.

An object last handled by an operator that stored the JSON copy is judged against
that copy once, and the digest replaces the copy right away: the copy is read back
with one extra key, which makes it differ from the object without a change to the
spec, so Kopf runs no spec handler for it but stores the digest (removing the copy).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import kopf

from mlops_operator.api.metadata import ANNOTATION_PREFIX

__all__ = ["DIGEST_PREFIX", "SpecDigestStorage"]

DIGEST_PREFIX = "sha256:"
_LEGACY_KEY = "last-handled-configuration"
# A key added to the essence read back from a JSON copy (never stored on an object).
_MIGRATING = f"{ANNOTATION_PREFIX}/json-copy"


class SpecDigestStorage(kopf.AnnotationsDiffBaseStorage):
    """The last-handled spec as its SHA-256 in one annotation (see the module docstring)."""

    def __init__(self, *, prefix: str, key: str = "last-handled-spec") -> None:
        # Only the spec (and any field a handler names) is compared: labels and
        # annotations changing must not count as a change to handle.
        super().__init__(prefix=prefix, key=key, ignored_fields=["metadata"], v1=False)

    @property
    def annotation(self) -> str:
        """The annotation's full name, e.g. ``mlops.dev/last-handled-spec``."""
        return f"{self.prefix}/{self.key}"

    @property
    def legacy_annotation(self) -> str:
        """Where Kopf's default storage kept the JSON copy under the same prefix."""
        return f"{self.prefix}/{_LEGACY_KEY}"

    @staticmethod
    def digest(essence: Any) -> str:
        """``sha256:<hex>`` of the essence as canonical JSON (keys sorted, no spaces)."""
        canonical = json.dumps(essence, sort_keys=True, separators=(",", ":"))
        return DIGEST_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()

    def fetch(self, *, body: kopf.Body) -> Any:
        annotations = body.metadata.annotations
        stored = annotations.get(self.annotation)
        if stored is None:
            return self._legacy(annotations.get(self.legacy_annotation))
        current = self.build(body=body)
        # Unchanged: the object itself (an empty diff). Changed: nothing known of the
        # spec, so the diff is the whole spec and the spec's update handler runs.
        return current if stored == self.digest(current) else {}

    def _legacy(self, encoded: str | None) -> Any:
        if encoded is None:
            return None
        try:
            essence = json.loads(encoded)
        except ValueError:
            return {}  # unreadable: treat the spec as changed, which reconciles once
        if not isinstance(essence, dict):
            return {}
        return {key: value for key, value in essence.items() if key != "metadata"} | {
            _MIGRATING: True
        }

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        patch.metadata.annotations[self.annotation] = self.digest(essence)
        if self.legacy_annotation in body.metadata.annotations:
            patch.metadata.annotations[self.legacy_annotation] = None
        self._store_marker(prefix=self.prefix, patch=patch, body=body)
