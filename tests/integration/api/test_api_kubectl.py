"""What a user sees with kubectl: explain, categories, printer columns, wait, scale, status.

Aspects: `kubectl explain` shows the field descriptions (with defaults and
ranges); `kubectl get mlops` lists all four kinds; short names work; the
printer columns show the right values once a status is written (the status is
built with the API models and comes back unpruned); `kubectl wait
--for=condition=Ready` and `kubectl scale mdep` work; the API server fills in
the defaults.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_operator.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    set_condition,
)
from mlops_operator.api.driftpolicy import DriftPolicyStatus, LastRetrain, TriggerState
from mlops_operator.api.modeldeployment import Challenger, Champion, ModelDeploymentStatus
from mlops_operator.api.modelversion import GateResult, ModelVersionPhase, ModelVersionStatus
from mlops_operator.api.resource import ResourceStatus
from mlops_operator.api.trainingjob import TrainingJobPhase, TrainingJobStatus
from tests.integration.api.support import example, submit
from tests.kube import get_json, kubectl

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _ready(kind: str = ConditionType.READY) -> list[Condition]:
    return set_condition(
        [],
        type_=kind,
        status=ConditionStatus.TRUE,
        reason=Reason.RECONCILED,
        message="all good",
        observed_generation=1,
        now=NOW,
    )


STATUSES: dict[str, tuple[str, ResourceStatus]] = {
    "trainingjob.yaml": (
        "trainingjob",
        TrainingJobStatus(
            phase=TrainingJobPhase.SUCCEEDED,
            job_name="churn-2026-11-26-train",
            start_time=NOW,
            completion_time=NOW,
            model_version="churn-v4",
            metrics={"roc_auc": 0.912},
            dataset_sha256="9b1d4c1e0f3a5b7c2d8e6f4a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c",
            observed_generation=1,
            conditions=_ready(ConditionType.SUCCEEDED),
        ),
    ),
    "modelversion.yaml": (
        "modelversion",
        ModelVersionStatus(
            phase=ModelVersionPhase.VALIDATED,
            gate_results=[
                GateResult(
                    gate="roc_auc >= 0.8", metric="roc_auc", value=0.912, threshold=0.8, passed=True
                ),
                GateResult(
                    gate="compareToChampion",
                    metric="roc_auc",
                    value=0.912,
                    champion_value=0.905,
                    champion="churn-v3",
                    passed=True,
                ),
            ],
            validated_at=NOW,
            observed_generation=1,
            conditions=_ready(),
        ),
    ),
    "modeldeployment.yaml": (
        "modeldeployment",
        ModelDeploymentStatus(
            champion=Champion(version=3, model_version="churn-v3", since=NOW),
            challenger=Challenger(version=4, model_version="churn-v4", weight=25, step=1),
            replicas=3,
            ready_replicas=3,
            selector="mlops.dev/deployment=churn,mlops.dev/role=champion",
            url="http://churn.default.svc:8080",
            observed_generation=1,
            conditions=_ready(),
        ),
    ),
    "driftpolicy.yaml": (
        "driftpolicy",
        DriftPolicyStatus(
            last_evaluation_time=NOW,
            triggers=[TriggerState(name="featureDrift", value=0.31, threshold=0.25, fired=True)],
            headline=TriggerState(name="featureDrift", value=0.31, threshold=0.25, fired=True),
            last_retrain=LastRetrain(
                time=NOW, reason="featureDrift 0.31 >= 0.25", training_job="churn-retrain-1"
            ),
            retrains_in_period=1,
            observed_generation=1,
            conditions=_ready(),
        ),
    ),
}

EXPECTED_COLUMNS = {
    "trainingjob": {"MODEL": "churn", "PHASE": "Succeeded", "VERSION": "churn-v4"},
    "modelversion": {
        "MODEL": "churn",
        "VERSION": "4",
        "METRIC": "roc_auc",
        "VALUE": "0.912",
        "PHASE": "Validated",
    },
    "modeldeployment": {
        "MODEL": "churn",
        "CHAMPION": "3",
        "CHALLENGER": "4",
        "WEIGHT": "25",
        "READY": "True",
    },
    "driftpolicy": {
        "TARGET": "churn",
        "TRIGGER": "featureDrift",
        "VALUE": "0.31",
        "THRESHOLD": "0.25",
    },
}


def _table(text: str) -> dict[str, str]:
    """The first row of a `kubectl get` table, by column header (headers may hold spaces)."""
    header, row = text.splitlines()[:2]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    bounds = [*starts[1:], None]
    return {
        header[start:end].strip(): row[start:end].strip()
        for start, end in zip(starts, bounds, strict=True)
    }


@pytest.fixture(scope="module")
def objects(crds: Path, namespace: str) -> dict[str, str]:
    """One object of each kind with a status written by the models; kind -> name."""
    created = {}
    for name, (kind, status) in STATUSES.items():
        document = example(name)
        assert submit(crds, namespace, document, dry_run=False) == ""
        body = json.dumps(
            {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        )
        kubectl(
            crds,
            "-n",
            namespace,
            "patch",
            kind,
            document["metadata"]["name"],
            "--subresource=status",
            "--type=merge",
            "-p",
            body,
        )
        created[kind] = document["metadata"]["name"]
    return created


def test_explain_shows_descriptions_defaults_and_ranges(crds: Path) -> None:
    rollout = kubectl(crds, "explain", "modeldeployment.spec.rollout").stdout
    assert "How a new version replaces the champion." in rollout
    assert "enum: Recreate, Canary, Shadow" in rollout
    assert "canary.steps" in rollout
    test_size = kubectl(crds, "explain", "tj.spec.testSize").stdout
    assert "Share of rows held out" in test_size
    assert "Range: (0.0, 1.0). Default: `0.2`." in " ".join(test_size.split())
    conditions = kubectl(crds, "explain", "dp.status.conditions.lastTransitionTime").stdout
    assert "When the status last changed" in conditions


def test_get_mlops_lists_all_four_kinds(
    crds: Path, namespace: str, objects: dict[str, str]
) -> None:
    listed = kubectl(crds, "-n", namespace, "get", "mlops", "-o", "name").stdout.split()
    assert sorted(n.split("/")[0] for n in listed) == [
        "driftpolicy.mlops.dev",
        "modeldeployment.mlops.dev",
        "modelversion.mlops.dev",
        "trainingjob.mlops.dev",
    ]


@pytest.mark.parametrize("short", ["tj", "mv", "mdep", "dp"])
def test_short_names(crds: Path, namespace: str, objects: dict[str, str], short: str) -> None:
    assert kubectl(crds, "-n", namespace, "get", short, "-o", "name").stdout.strip()


@pytest.mark.parametrize("kind", sorted(EXPECTED_COLUMNS))
def test_printer_columns_show_the_status(
    crds: Path, namespace: str, objects: dict[str, str], kind: str
) -> None:
    table = _table(kubectl(crds, "-n", namespace, "get", kind, objects[kind]).stdout)
    assert {k: table[k] for k in EXPECTED_COLUMNS[kind]} == EXPECTED_COLUMNS[kind]
    assert table["AGE"]
    if kind == "driftpolicy":
        assert table["LAST RETRAIN"]


@pytest.mark.parametrize("kind", sorted(EXPECTED_COLUMNS))
def test_status_is_not_pruned(
    crds: Path, namespace: str, objects: dict[str, str], kind: str
) -> None:
    written = next(s for k, s in STATUSES.values() if k == kind)
    stored = get_json(crds, "-n", namespace, kind, objects[kind])["status"]
    assert stored == written.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.mark.parametrize(
    ("kind", "condition"),
    [
        ("trainingjob", "Succeeded"),
        ("modelversion", "Ready"),
        ("modeldeployment", "Ready"),
        ("driftpolicy", "Ready"),
    ],
)
def test_kubectl_wait_for_condition(
    crds: Path, namespace: str, objects: dict[str, str], kind: str, condition: str
) -> None:
    kubectl(
        crds,
        "-n",
        namespace,
        "wait",
        f"--for=condition={condition}",
        "--timeout=30s",
        f"{kind}/{objects[kind]}",
    )


def test_scale_subresource(crds: Path, namespace: str, objects: dict[str, str]) -> None:
    name = objects["modeldeployment"]
    kubectl(crds, "-n", namespace, "scale", "mdep", name, "--replicas=5")
    assert get_json(crds, "-n", namespace, "mdep", name)["spec"]["replicas"] == 5
    scale = json.loads(
        kubectl(
            crds,
            "get",
            "--raw",
            f"/apis/mlops.dev/v1alpha1/namespaces/{namespace}/modeldeployments/{name}/scale",
        ).stdout
    )
    assert scale["spec"]["replicas"] == 5
    assert scale["status"] == {
        "replicas": 3,
        "selector": "mlops.dev/deployment=churn,mlops.dev/role=champion",
    }


def test_server_fills_in_defaults(crds: Path, namespace: str) -> None:
    minimal = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "minimal"},
        "spec": {"modelName": "iris"},
    }
    assert submit(crds, namespace, minimal, dry_run=False) == ""
    spec = get_json(crds, "-n", namespace, "mdep", "minimal")["spec"]
    assert spec["promotion"] == "Auto"
    assert spec["replicas"] == 1
    assert spec["rollout"]["strategy"] == "Recreate"
    assert spec["rollout"]["analysis"]["maxErrorRate"] == 0.01
    assert spec["server"]["maxBatchSize"] == 64
    assert "canary" not in spec["rollout"]
