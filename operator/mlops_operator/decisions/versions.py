"""Version numbers of a model: which number comes next, and which version a TrainingJob made.

A ModelVersion is named ``<model>-v<N>``. The number is allocated without a
counter object and without races: the controller lists the model's versions
(label ``mlops.dev/model``), takes `next_version` and *creates* the object under
that name; the API server refuses a second create of one name (409
AlreadyExists), so of two TrainingJobs finishing together exactly one gets N and
the other retries with N+1 (`candidates`). A version deleted from the top frees
its number again; numbers below the highest are never reused.

Before allocating, `produced_by` looks for a version the same TrainingJob made
already (its uid in an annotation, its name in a label), so a controller re-run
after a crash at any line finds that version instead of making a second one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = [
    "MAX_ALLOCATION_ATTEMPTS",
    "candidates",
    "next_version",
    "produced_by",
    "version_name",
    "version_numbers",
]

MAX_ALLOCATION_ATTEMPTS = 20
"""Names tried after one listing; more collisions than this mean a listing far behind."""


def version_name(model: str, version: int) -> str:
    """The ModelVersion name of `model`'s version `version`: ``<model>-v<version>``."""
    if version < 1:
        raise ValueError(f"version numbers start at 1, got {version}")
    return f"{model}-v{version}"


def version_numbers(versions: Iterable[Mapping[str, Any]], model: str) -> list[int]:
    """The numbers of the ModelVersions (as the API returns them) that belong to `model`."""
    found = []
    for item in versions:
        spec = item.get("spec") or {}
        number = spec.get("version")
        if spec.get("modelName") == model and isinstance(number, int):
            found.append(number)
    return found


def next_version(numbers: Iterable[int]) -> int:
    """One more than the highest existing number; 1 for a model without versions."""
    return max(numbers, default=0) + 1


def candidates(first: int, attempts: int = MAX_ALLOCATION_ATTEMPTS) -> Iterator[int]:
    """The numbers to try, in order, when `first` may be taken by a concurrent create."""
    return iter(range(first, first + attempts))


def produced_by(
    versions: Iterable[Mapping[str, Any]], training_job_uid: str, uid_annotation: str
) -> Mapping[str, Any] | None:
    """The ModelVersion the TrainingJob with `training_job_uid` produced, if there is one.

    The uid, not the name, identifies the TrainingJob: a TrainingJob deleted and
    created again under the same name is another training and gets its own version.
    When several match (which the controller never does), the lowest number wins,
    so every re-run settles on the same one.
    """
    matching = [
        item
        for item in versions
        if (item.get("metadata") or {}).get("annotations", {}).get(uid_annotation)
        == training_job_uid
    ]
    if not matching:
        return None
    return min(matching, key=lambda item: int((item.get("spec") or {}).get("version", 0)))
