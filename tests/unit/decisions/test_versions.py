"""Version numbering: names, the next number, the retry sequence, finding a TrainingJob's version.

Aspects: names are ``<model>-v<N>`` and N starts at 1; only the model's own
versions count; the next number follows the highest even with gaps; candidates
run upwards for a bounded number of tries; a version is found by the producing
TrainingJob's uid (not its name), the lowest when several match.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.decisions.versions import (
    MAX_ALLOCATION_ATTEMPTS,
    candidates,
    next_version,
    produced_by,
    version_name,
    version_numbers,
)

UID = "mlops.dev/training-job-uid"


def _version(model: str, number: int, uid: str | None = None) -> dict[str, Any]:
    annotations = {UID: uid} if uid else {}
    return {
        "metadata": {"name": f"{model}-v{number}", "annotations": annotations},
        "spec": {"modelName": model, "version": number},
    }


def test_names_are_model_dash_v_number() -> None:
    assert version_name("iris", 3) == "iris-v3"


def test_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1, got 0"):
        version_name("iris", 0)


def test_only_the_models_own_versions_count() -> None:
    versions = [_version("iris", 1), _version("churn", 7), _version("iris", 2), {"spec": {}}]
    assert version_numbers(versions, "iris") == [1, 2]


@pytest.mark.parametrize(
    ("numbers", "expected"), [([], 1), ([1], 2), ([1, 2, 3], 4), ([5, 2], 6), ([1, 4], 5)]
)
def test_the_next_number_follows_the_highest(numbers: list[int], expected: int) -> None:
    assert next_version(numbers) == expected


def test_candidates_count_up_a_bounded_number_of_times() -> None:
    tried = list(candidates(4))
    assert tried[:3] == [4, 5, 6]
    assert len(tried) == MAX_ALLOCATION_ATTEMPTS


def test_a_version_is_found_by_the_training_jobs_uid() -> None:
    versions = [_version("iris", 1, "uid-a"), _version("iris", 2, "uid-b")]
    found = produced_by(versions, "uid-b", UID)
    assert found is not None
    assert found["metadata"]["name"] == "iris-v2"
    assert produced_by(versions, "uid-c", UID) is None


def test_the_lowest_of_several_matches_wins() -> None:
    versions = [_version("iris", 5, "uid-a"), _version("iris", 3, "uid-a")]
    found = produced_by(versions, "uid-a", UID)
    assert found is not None
    assert found["spec"]["version"] == 3
