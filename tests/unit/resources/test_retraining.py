"""The TrainingJob a DriftPolicy creates: whole manifest, logged data, the version it retrains,
deterministic names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops_operator.api.driftpolicy import DriftPolicy
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.resources.retraining import build_retraining_job, retraining_job_name

T0 = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)


def policy(**retrain: Any) -> DriftPolicy:
    template = {
        "modelName": "iris",
        "target": "target",
        "estimator": {"name": "LogisticRegression"},
        "dataset": {"uri": "sklearn://iris"},
    }
    return DriftPolicy.model_validate(
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "DriftPolicy",
            "metadata": {"name": "iris-drift", "namespace": "ml", "uid": "u"},
            "spec": {
                "deployment": "iris",
                "window": "30m",
                "triggers": {"schedule": "@daily"},
                "retrain": {"template": template} | retrain,
            },
        }
    )


def test_the_whole_manifest() -> None:
    manifest = build_retraining_job(
        policy(), name="iris-drift-1", reason="triggered by schedule", values={"x": 0.5}
    )
    assert manifest == {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": "iris-drift-1",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/managed-by": "mlops-operator",
                "app.kubernetes.io/part-of": "mlops-operator",
                "mlops.dev/model": "iris",
                "mlops.dev/deployment": "iris",
                "mlops.dev/drift-policy": "iris-drift",
            },
            "annotations": {
                "mlops.dev/retrain-reason": "triggered by schedule",
                "mlops.dev/retrain-values": json.dumps({"x": 0.5}),
            },
        },
        "spec": manifest["spec"],
    }
    job = TrainingJob.model_validate(manifest)
    assert job.spec.dataset.uri == "sklearn://iris"
    assert job.spec.target_deployment == "iris"


def test_logged_data_replaces_the_dataset() -> None:
    template_without_dataset = policy().spec.retrain
    assert template_without_dataset is not None
    raw = template_without_dataset.template.model_dump(by_alias=True, exclude_none=True)
    raw.pop("dataset")
    logged = policy(useLoggedData=True, template=raw)
    manifest = build_retraining_job(logged, name="n", reason="r", values={})
    assert manifest["spec"]["dataset"] == {
        "fromPayloadLog": {"deployment": "iris", "window": "30m"}
    }
    TrainingJob.model_validate(manifest)


def test_the_job_names_the_version_it_retrains() -> None:
    manifest = build_retraining_job(
        policy(), name="n", reason="r", values={}, parent_version="iris-v1"
    )
    assert manifest["spec"]["parentVersion"] == "iris-v1"
    assert TrainingJob.model_validate(manifest).spec.parent_version == "iris-v1"
    # Without a champion (nothing served yet) there is no parent to name.
    assert (
        "parentVersion"
        not in build_retraining_job(policy(), name="n", reason="r", values={})["spec"]
    )


def test_names_are_stable_within_an_interval_and_change_after() -> None:
    first = retraining_job_name("iris-drift", T0, 60)
    assert retraining_job_name("iris-drift", T0 + timedelta(seconds=50), 60) == first
    assert retraining_job_name("iris-drift", T0 + timedelta(seconds=60), 60) != first
    assert len(retraining_job_name("x" * 253, T0, 60)) <= 63


def test_alert_only_policies_cannot_build_a_job() -> None:
    alert = policy()
    object.__setattr__(alert.spec, "retrain", None)
    with pytest.raises(ValueError, match="no `retrain` template"):
        build_retraining_job(alert, name="n", reason="r", values={})


def test_logged_data_with_a_dataset_combines_both_so_nothing_is_forgotten() -> None:
    retrain = policy().spec.retrain
    assert retrain is not None
    raw = retrain.template.model_dump(by_alias=True, exclude_none=True)
    combined = policy(useLoggedData=True, loggedDataSample=0.25, template=raw)
    manifest = build_retraining_job(combined, name="n", reason="r", values={})
    assert manifest["spec"]["dataset"] == {
        "sources": [
            {"uri": "sklearn://iris", "format": "auto", "sample": 0.25},
            {"fromPayloadLog": {"deployment": "iris", "window": "30m"}},
        ]
    }
    job = TrainingJob.model_validate(manifest)
    assert job.spec.dataset.sources is not None
    assert [s.sample for s in job.spec.dataset.sources] == [0.25, 1.0]
