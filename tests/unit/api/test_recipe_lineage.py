"""The recipe <-> lineage mapping: one table both directions derive from.

Aspects: every field of a `Lineage` is either the recipe (`RECIPE_FIELDS`, the estimator) or
provenance, never both nor neither; every field of a TrainingJob's recipe is recorded in the
lineage or is said here to live elsewhere (so a new recipe field cannot be forgotten by the
ModelVersion, nor by `mlops reproduce`); and a recipe recorded then read back is the recipe.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.api.modelversion import (
    LINEAGE_PROVENANCE,
    RECIPE_FIELDS,
    DatasetLineage,
    Lineage,
    recipe_of_lineage,
    recorded_recipe,
)
from mlops_operator.api.trainingjob import TrainingJobSpec, TrainingJobTemplate

pytestmark = pytest.mark.unit

ESTIMATOR = ("estimator", "params")
"""The recipe's `estimator` ({name, params}), recorded as two lineage fields."""

NOT_IN_LINEAGE = {
    "model_name": "the ModelVersion's spec.modelName",
    "task": "the ModelVersion's signature",
    "dataset": "recorded as what was read (DatasetLineage), with its data version",
    "image": "recorded as the image that ran (Lineage.image)",
    "parent_version": "provenance (Lineage.parentVersion), not how the model is made",
    "target_deployment": "the ModelVersion's spec.targetDeployment",
    "gates": "the ModelVersion's spec.gates",
    "validator_pod_overrides": "the ModelVersion's spec.validatorPodOverrides",
    "resources": "where the trainer runs, not what it makes",
    "pod_overrides": "where the trainer runs, not what it makes",
    "active_deadline_seconds": "how long the trainer may run",
    "backoff_limit": "how often the trainer pod is retried",
    "ttl_seconds_after_finished": "how long the finished Job is kept",
    "suspend": "whether the job may start",
}


def test_every_lineage_field_is_recipe_or_provenance() -> None:
    recipe = {*RECIPE_FIELDS, *ESTIMATOR}
    assert not recipe & set(LINEAGE_PROVENANCE)
    assert set(Lineage.model_fields) == recipe | set(LINEAGE_PROVENANCE)


@pytest.mark.parametrize("spec", [TrainingJobSpec, TrainingJobTemplate])
def test_every_recipe_field_is_recorded_or_lives_elsewhere(spec: type[Any]) -> None:
    recorded = {*RECIPE_FIELDS, "estimator"}
    assert not recorded & set(NOT_IN_LINEAGE)
    # The template has no parentVersion (the policy sets it); the spec has every other field.
    assert set(spec.model_fields) | {"parent_version"} == recorded | set(NOT_IN_LINEAGE)


def test_a_recorded_recipe_reads_back_as_the_recipe() -> None:
    wire = {
        "modelName": "iris",
        "dataset": {"uri": "sklearn://iris"},
        "target": "species",
        "features": ["a", "b", "c"],
        "categoricalFeatures": ["c"],
        "estimator": {"name": "RandomForestClassifier", "params": {"n_estimators": 7}},
        "seed": 7,
        "testSize": 0.3,
        "cvFolds": 4,
        "preprocessing": {"impute": {"numeric": "median"}},
    }
    spec = TrainingJobSpec.model_validate(wire)
    lineage = Lineage(
        dataset=DatasetLineage(uri="sklearn://iris", sha256="b" * 64, rows=150, columns=5),
        code_version="0.1.0",
        **recorded_recipe(spec),
    )
    recorded = TrainingJobSpec.model_validate(
        {"modelName": "iris", "dataset": wire["dataset"]} | recipe_of_lineage(lineage)
    )
    assert recorded == spec


def test_unset_recipe_fields_are_left_out() -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "modelName": "iris",
            "dataset": {"uri": "sklearn://iris"},
            "target": "species",
            "estimator": {"name": "LogisticRegression"},
        }
    )
    lineage = Lineage(
        dataset=DatasetLineage(uri="sklearn://iris", sha256="b" * 64, rows=150, columns=5),
        code_version="0.1.0",
        **recorded_recipe(spec),
    )
    recipe = recipe_of_lineage(lineage)
    assert not {"features", "categoricalFeatures", "cvFolds"} & set(recipe)
    assert (recipe["testSize"], recipe["seed"]) == (0.2, 42)
