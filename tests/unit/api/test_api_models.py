"""The API models: defaults, wire names, every example's round trip, and what they refuse.

Aspects: a minimal spec gets the documented defaults; snake_case in Python,
camelCase on the wire; each example in manifests/examples parses and dumps back
to the same document; unknown fields, another kind, bad quantities and
out-of-range values are refused; the estimator lists split by task; the
generated freeze rule lists every field but the mutable ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mlops_operator.api import KINDS, DriftPolicy, ModelDeployment, TrainingJob
from mlops_operator.api.estimators import CLASSIFIERS, ESTIMATOR_NAMES, REGRESSORS
from mlops_operator.api.model import frozen_except
from mlops_operator.api.modeldeployment import ModelDeploymentSpec, RolloutStrategy
from mlops_operator.api.trainingjob import TrainingJobSpec

EXAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))
BY_KIND = {kind.crd.kind: kind for kind in KINDS}


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def test_there_is_an_example_per_kind_and_a_complete_iris_loop() -> None:
    kinds = {_load(p)["kind"] for p in EXAMPLE_FILES if p.parent == EXAMPLES}
    assert kinds == set(BY_KIND)
    iris = {_load(p)["kind"] for p in (EXAMPLES / "iris").glob("*.yaml")}
    assert iris == {"TrainingJob", "ModelDeployment", "DriftPolicy"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_example_round_trips(path: Path) -> None:
    document = _load(path)
    parsed = BY_KIND[document["kind"]].model_validate(document)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == document


def test_minimal_training_job_gets_the_defaults() -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "modelName": "iris",
            "dataset": {"uri": "sklearn://iris"},
            "target": "target",
            "estimator": {"name": "LogisticRegression"},
        }
    )
    assert spec.task == "classification"
    assert (spec.seed, spec.test_size, spec.backoff_limit, spec.suspend) == (42, 0.2, 1, False)
    assert spec.cv_folds is None
    assert spec.dataset.format == "auto"
    assert spec.preprocessing.scale_numeric is None
    assert spec.preprocessing.impute.numeric == "median"
    assert spec.estimator.params == {}


def test_minimal_model_deployment_gets_the_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate({"modelName": "iris"})
    assert spec.promotion == "Auto"
    assert spec.version is None
    assert spec.replicas == 1
    assert spec.rollout.strategy is RolloutStrategy.RECREATE
    assert spec.rollout.analysis.interval == "1m"
    assert spec.rollout.auto_rollback is True
    assert spec.payload_logging.enabled is False
    assert spec.history_limit == 20


def test_defaults_are_not_shared_between_objects() -> None:
    first = ModelDeploymentSpec.model_validate({"modelName": "a"})
    second = ModelDeploymentSpec.model_validate({"modelName": "b"})
    first.server.workers = 8
    assert second.server.workers == 1


def test_python_names_are_snake_case_and_the_wire_is_camel_case() -> None:
    spec = TrainingJobSpec(
        model_name="iris",
        dataset={"uri": "sklearn://iris"},  # type: ignore[arg-type]
        target="target",
        estimator={"name": "SVC"},  # type: ignore[arg-type]
        test_size=0.3,
    )
    wire = spec.model_dump(by_alias=True, exclude_unset=True)
    assert wire["modelName"] == "iris"
    assert wire["testSize"] == 0.3
    assert "model_name" not in wire


def test_kind_is_filled_in_and_checked() -> None:
    body = _load(EXAMPLES / "iris" / "modeldeployment.yaml")
    del body["kind"]
    assert ModelDeployment.model_validate(body).kind == "ModelDeployment"
    with pytest.raises(ValidationError, match=r"expected apiVersion mlops\.dev/v1alpha1 and kind"):
        TrainingJob.model_validate(_load(EXAMPLES / "iris" / "driftpolicy.yaml"))


def test_accessors_read_metadata() -> None:
    body = _load(EXAMPLES / "driftpolicy.yaml") | {
        "metadata": {"name": "churn", "namespace": "ml", "generation": 3}
    }
    policy = DriftPolicy.model_validate(body)
    assert (policy.name, policy.namespace, policy.generation) == ("churn", "ml", 3)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        ({"replicaCount": 3}, "Extra inputs are not permitted"),
        ({"replicas": -1}, "greater than or equal to 0"),
        ({"promotion": "Sometimes"}, "'Auto' or 'Manual'"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "is not a Kubernetes quantity"),
        ({"rollout": {"canary": {"steps": [{"weight": 10, "pause": "5 min"}]}}}, "pattern"),
    ],
)
def test_invalid_specs_are_refused(edit: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ModelDeploymentSpec.model_validate({"modelName": "iris", **edit})


def test_quantities_accept_integers_and_kubernetes_suffixes() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {"modelName": "iris", "resources": {"requests": {"cpu": 2, "memory": "1.5Gi"}}}
    )
    assert spec.resources is not None
    assert spec.resources.requests == {"cpu": 2, "memory": "1.5Gi"}


def test_every_estimator_belongs_to_exactly_one_task() -> None:
    assert set(CLASSIFIERS) | set(REGRESSORS) == set(ESTIMATOR_NAMES)
    assert not set(CLASSIFIERS) & set(REGRESSORS)
    assert "SVC" in CLASSIFIERS
    assert "SVR" in REGRESSORS
    assert "Ridge" in REGRESSORS


def test_freeze_rule_covers_every_field_but_the_mutable_ones() -> None:
    rule = frozen_except(TrainingJobSpec, "suspend", "ttlSecondsAfterFinished", message="m").rule
    for field in TrainingJobSpec.model_fields.values():
        wire = field.alias
        assert wire is not None
        frozen = f"self.{wire} == oldSelf.{wire}" in rule
        assert frozen is (wire not in ("suspend", "ttlSecondsAfterFinished")), wire
    assert "self.dataset == oldSelf.dataset" in rule
    assert "(has(self.cvFolds) ? has(oldSelf.cvFolds)" in rule
