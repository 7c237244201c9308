"""The plugin's pure views: `status` rows, the table, and `lineage` as a tree and as JSON.

Aspects: one row per model with its versions, champion, challenger, serving state, last
training and drift; the table aligns like kubectl's; the lineage runs dataset → TrainingJob →
ModelVersion → ModelDeployment with each step's state, says when the TrainingJob was deleted
or the model was imported, and its JSON form carries the same facts.
"""

from __future__ import annotations

import copy

from mlops_operator.plugin import views
from tests.unit.plugin.objects import load

JOB = load("TrainingJob", "succeeded")
VERSION = load("ModelVersion", "validated")
CANARY = load("ModelDeployment", "canary")
POLICY = load("DriftPolicy", "drift-detected")
POLICY["status"]["headline"] = {"name": "featureDrift", "value": 0.31, "threshold": 0.2}


def test_status_has_one_row_per_model_with_what_serves_and_drift() -> None:
    newer = copy.deepcopy(VERSION)
    newer["metadata"]["name"] = "churn-v5"
    newer["spec"]["version"] = 5
    newer["status"]["phase"] = "Validating"
    challenger = copy.deepcopy(CANARY)
    challenger["status"]["challenger"] = {
        "version": 5,
        "modelVersion": "churn-v5",
        "weight": 25,
        "phase": "Canary",
    }
    challenger["status"]["readyReplicas"] = 2
    other = load("TrainingJob", "running")
    other["spec"]["modelName"] = "fraud"
    rows = views.model_statuses([JOB, other], [VERSION, newer], [challenger], [POLICY])
    assert rows == [
        {
            "namespace": "default",
            "model": "churn",
            "versions": 2,
            "latest": "v5 Validating",
            "champion": "v4",
            "challenger": "v5 25% Canary",
            "serving": "2/3 Available",
            "training": "churn-2026-11-26 Succeeded",
            "drift": "drift featureDrift=0.31/0.2",
        },
        {
            "namespace": "default",
            "model": "fraud",
            "versions": 0,
            "latest": "-",
            "champion": "-",
            "challenger": "-",
            "serving": "-",
            "training": "churn-2026-11-26 Running",
            "drift": "-",
        },
    ]


def test_a_suspended_policy_and_an_unserved_model_read_as_such() -> None:
    (row,) = views.model_statuses(
        [], [VERSION], [load("ModelDeployment", "no-version")], [load("DriftPolicy", "suspended")]
    )
    assert row["serving"] == "0/3 NoVersion"
    assert row["champion"] == "-"
    assert row["drift"] == "suspended"


def test_the_table_aligns_columns_like_kubectl() -> None:
    table = views.format_table(
        [{"model": "iris", "versions": 3}, {"model": "churn-model", "versions": 12}],
        [("model", "MODEL"), ("versions", "VERSIONS")],
    )
    assert table.splitlines() == [
        "MODEL         VERSIONS",
        "iris          3",
        "churn-model   12",
    ]


def test_lineage_runs_from_the_dataset_to_the_deployments() -> None:
    tree = views.render_tree(
        views.lineage(VERSION, JOB, [CANARY, load("ModelDeployment", "no-version")])
    )
    assert tree.splitlines() == [
        (
            "dataset s3://ml-data/churn/2026-11-26/customers.parquet  sha256:9b1d4c1e0f3a"
            "  70432 rows × 7 columns"
        ),
        "└─ TrainingJob churn-2026-11-26  Succeeded  GradientBoostingClassifier seed=7",
        "   └─ ModelVersion churn-v4  v4  roc_auc=0.912  Validated  (retrained from churn-v3)",
        "      ├─ ModelDeployment churn  champion",
        "      └─ ModelDeployment churn  candidate",
    ]


def test_lineage_says_when_the_training_job_is_gone_or_there_is_none() -> None:
    gone = views.render_tree(views.lineage(VERSION, None, []))
    assert "TrainingJob churn-2026-11-26  (deleted)" in gone
    imported = copy.deepcopy(VERSION)
    del imported["spec"]["lineage"]
    assert views.render_tree(views.lineage(imported, None, [])).splitlines() == [
        "no lineage: an imported model",
        "└─ ModelVersion churn-v4  v4  roc_auc=0.912  Validated",
    ]


def test_lineage_json_carries_the_same_facts() -> None:
    found = views.lineage_json(VERSION, JOB, [CANARY])
    assert found["dataset"]["sha256"].startswith("9b1d4c1e0f3a")
    assert found["trainingJob"] == {
        "name": "churn-2026-11-26",
        "exists": True,
        "phase": "Succeeded",
        "estimator": "GradientBoostingClassifier",
        "params": {"n_estimators": 300, "learning_rate": 0.05, "max_leaf_nodes": 31},
        "seed": 7,
    }
    assert found["modelVersion"]["name"] == "churn-v4"
    assert found["modelVersion"]["parentVersion"] == "churn-v3"
    assert found["deployments"] == [{"name": "churn", "role": "champion"}]
