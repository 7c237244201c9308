"""The API server enforces every rule of the generated CRDs, naming the offending field.

Aspects: every example passes server-side dry-run with strict field validation;
one malformed resource per rule (wrong types, out-of-range numbers, missing
required fields, unknown enum values, patterns, list uniqueness, each CEL rule)
is rejected with a message that names the field; unknown fields are rejected
under strict validation; the immutable specs refuse changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api.support import EXAMPLE_FILES, edit, example, submit
from tests.kube import kubectl

DELETE = object()
"""An edit value that removes the field."""

TJ, MV, MDEP, DP = (
    "trainingjob.yaml",
    "modelversion.yaml",
    "modeldeployment.yaml",
    "driftpolicy.yaml",
)


@dataclass(frozen=True)
class Case:
    """One malformed resource: an example with edits, and what the server must say."""

    id: str
    example: str
    edits: dict[str, Any]
    field: str
    message: str


CASES = [
    # TrainingJob: required fields, types, enums, ranges, patterns.
    Case(
        "tj-model-name-required", TJ, {"spec.modelName": DELETE}, "spec.modelName", "Required value"
    ),
    Case("tj-target-required", TJ, {"spec.target": DELETE}, "spec.target", "Required value"),
    Case("tj-dataset-required", TJ, {"spec.dataset": DELETE}, "spec.dataset", "Required value"),
    Case(
        "tj-model-name-pattern",
        TJ,
        {"spec.modelName": "Churn_Model"},
        "spec.modelName",
        "should match",
    ),
    Case(
        "tj-dataset-uri-scheme",
        TJ,
        {"spec.dataset.uri": "ftp://x/y.csv"},
        "spec.dataset.uri",
        "should match",
    ),
    Case(
        "tj-estimator-enum",
        TJ,
        {"spec.estimator.name": "XGBClassifier"},
        "spec.estimator.name",
        "Unsupported value",
    ),
    Case("tj-task-enum", TJ, {"spec.task": "clustering"}, "spec.task", "Unsupported value"),
    Case(
        "tj-impute-enum",
        TJ,
        {"spec.preprocessing.impute.numeric": "mode"},
        "spec.preprocessing.impute.numeric",
        "Unsupported value",
    ),
    Case("tj-seed-type", TJ, {"spec.seed": "seven"}, "spec.seed", "must be of type integer"),
    Case("tj-seed-negative", TJ, {"spec.seed": -1}, "spec.seed", "greater than or equal to 0"),
    Case("tj-test-size-one", TJ, {"spec.testSize": 1.0}, "spec.testSize", "less than 1"),
    Case("tj-test-size-zero", TJ, {"spec.testSize": 0}, "spec.testSize", "greater than 0"),
    Case("tj-cv-folds-low", TJ, {"spec.cvFolds": 1}, "spec.cvFolds", "greater than or equal to 2"),
    Case("tj-cv-folds-high", TJ, {"spec.cvFolds": 21}, "spec.cvFolds", "less than or equal to 20"),
    Case(
        "tj-deadline-zero",
        TJ,
        {"spec.activeDeadlineSeconds": 0},
        "spec.activeDeadlineSeconds",
        "greater than or equal to 1",
    ),
    Case(
        "tj-backoff-limit-high",
        TJ,
        {"spec.backoffLimit": 11},
        "spec.backoffLimit",
        "less than or equal to 10",
    ),
    Case(
        "tj-features-unique",
        TJ,
        {"spec.features": ["tenure_months", "tenure_months"]},
        "spec.features[1]",
        "Duplicate value",
    ),
    Case(
        "tj-quantity-format",
        TJ,
        {"spec.resources.requests.cpu": "lots"},
        "spec.resources.requests.cpu",
        "should match",
    ),
    Case(
        "tj-pvc-absolute-path",
        TJ,
        {"spec.dataset": {"pvc": {"claimName": "data", "path": "/etc/passwd"}}},
        "spec.dataset.pvc.path",
        "should match",
    ),
    Case(
        "tj-payload-log-window",
        TJ,
        {"spec.dataset": {"fromPayloadLog": {"deployment": "churn", "window": "1d"}}},
        "spec.dataset.fromPayloadLog.window",
        "should match",
    ),
    # TrainingJob: CEL rules.
    Case(
        "tj-dataset-two-sources",
        TJ,
        {"spec.dataset.pvc": {"claimName": "data", "path": "x.csv"}},
        "spec.dataset",
        "exactly one of `uri`, `pvc`, `fromPayloadLog` or `sources` must be set",
    ),
    Case(
        "tj-dataset-no-source",
        TJ,
        {"spec.dataset": {"format": "csv"}},
        "spec.dataset",
        "exactly one of `uri`, `pvc`, `fromPayloadLog` or `sources` must be set",
    ),
    Case(
        "tj-credentials-without-uri",
        TJ,
        {"spec.dataset": {"pvc": {"claimName": "data", "path": "x.csv"}, "credentialsSecret": "s"}},
        "spec.dataset.credentialsSecret",
        "`credentialsSecret` must only be set with `uri` or `sources`",
    ),
    Case(
        "tj-source-two-kinds",
        TJ,
        {
            "spec.dataset": {
                "sources": [
                    {"uri": "sklearn://iris", "fromPayloadLog": {"deployment": "iris"}},
                    {"uri": "sklearn://wine"},
                ]
            }
        },
        "spec.dataset.sources[0]",
        "exactly one of `uri`, `pvc` or `fromPayloadLog` must be set",
    ),
    Case(
        "tj-sources-one",
        TJ,
        {"spec.dataset": {"sources": [{"uri": "sklearn://iris"}]}},
        "spec.dataset.sources",
        "should have at least 2 items",
    ),
    Case(
        "tj-source-sample-range",
        TJ,
        {
            "spec.dataset": {
                "sources": [{"uri": "sklearn://iris", "sample": 0}, {"uri": "sklearn://wine"}]
            }
        },
        "spec.dataset.sources[0].sample",
        "should be greater than 0",
    ),
    Case(
        "tj-sources-format-per-source",
        TJ,
        {
            "spec.dataset": {
                "format": "csv",
                "sources": [{"uri": "sklearn://iris"}, {"uri": "sklearn://wine"}],
            }
        },
        "spec.dataset.format",
        "`format` is set per source with `sources`",
    ),
    Case(
        "tj-pvc-path-dotdot",
        TJ,
        {"spec.dataset": {"pvc": {"claimName": "data", "path": "a/../../etc"}}},
        "spec.dataset.pvc.path",
        "`path` must not contain `..`",
    ),
    Case(
        "tj-estimator-matches-task",
        TJ,
        {"spec.estimator.name": "RandomForestRegressor"},
        "spec.estimator.name",
        "`estimator.name` must be a classifier when `task` is classification",
    ),
    Case(
        "tj-scale-a-tree",
        TJ,
        {"spec.preprocessing.scaleNumeric": True, "spec.estimator.name": "RandomForestClassifier"},
        "spec.preprocessing.scaleNumeric",
        "must not be true for a tree ensemble or naive Bayes",
    ),
    Case(
        "tj-estimator-not-exportable",
        TJ,
        {"spec.estimator.name": "HistGradientBoostingClassifier"},
        "spec.estimator.name",
        "Unsupported value",
    ),
    Case(
        "tj-features-exclude-target",
        TJ,
        {"spec.features": ["churned", "tenure_months"]},
        "spec.features",
        "`features` must not contain the `target` column",
    ),
    Case(
        "tj-categorical-subset",
        TJ,
        {"spec.categoricalFeatures": ["region"]},
        "spec.categoricalFeatures",
        "`categoricalFeatures` must be a subset of `features`",
    ),
    Case(
        "tj-limits-below-requests",
        TJ,
        {"spec.resources.limits": {"memory": "1Gi"}},
        "spec.resources.limits",
        "`limits` must not be less than `requests`",
    ),
    Case(
        "tj-gate-threshold-range",
        TJ,
        {"spec.gates.metrics.0.threshold": 1.5},
        "spec.gates.metrics[0].threshold",
        "`threshold` must be between 0 and 1",
    ),
    Case(
        "tj-gate-op-enum",
        TJ,
        {"spec.gates.metrics.0.op": "=="},
        "spec.gates.metrics[0].op",
        "Unsupported value",
    ),
    Case(
        "tj-gate-duplicate",
        TJ,
        {"spec.gates.metrics.1.metric": "roc_auc"},
        "spec.gates.metrics[1]",
        "Duplicate value",
    ),
    Case(
        "tj-max-regression-both",
        TJ,
        {"spec.gates.compareToChampion.maxRegression": {"absolute": 0.01, "relative": 0.01}},
        "spec.gates.compareToChampion.maxRegression",
        "exactly one of `absolute` or `relative` must be set",
    ),
    Case(
        "tj-max-regression-relative-range",
        TJ,
        {"spec.gates.compareToChampion.maxRegression": {"relative": 1.5}},
        "spec.gates.compareToChampion.maxRegression.relative",
        "less than or equal to 1",
    ),
    # ModelVersion.
    Case(
        "mv-sha256-pattern",
        MV,
        {"spec.artifact.sha256": "ABC123"},
        "spec.artifact.sha256",
        "should",
    ),
    Case(
        "mv-format-enum",
        MV,
        {"spec.artifact.format": "pickle"},
        "spec.artifact.format",
        "Unsupported value",
    ),
    Case(
        "mv-version-positive", MV, {"spec.version": 0}, "spec.version", "greater than or equal to 1"
    ),
    Case(
        "mv-size-positive",
        MV,
        {"spec.artifact.sizeBytes": 0},
        "spec.artifact.sizeBytes",
        "greater than or equal to 1",
    ),
    Case(
        "mv-metric-type",
        MV,
        {"spec.metrics.accuracy": "high"},
        "spec.metrics.accuracy",
        "must be of type number",
    ),
    Case(
        "mv-dtype-enum",
        MV,
        {"spec.signature.inputs.0.dtype": "bfloat16"},
        "spec.signature.inputs[0].dtype",
        "Unsupported value",
    ),
    Case(
        "mv-shape-minimum",
        MV,
        {"spec.signature.inputs.0.shape": [-2, 4]},
        "spec.signature.inputs[0].shape[0]",
        "greater than or equal to -1",
    ),
    Case(
        "mv-primary-metric-known",
        MV,
        {"spec.primaryMetric.name": "auc_pr"},
        "spec.primaryMetric",
        "`primaryMetric` must name a key of `metrics`",
    ),
    Case(
        "mv-primary-metric-value",
        MV,
        {"spec.primaryMetric.value": 0.99},
        "spec.primaryMetric",
        "`primaryMetric` must name a key of `metrics` and carry its value",
    ),
    Case(
        "mv-metric-names",
        MV,
        {"spec.metrics.ROC-AUC": 0.9},
        "spec.metrics",
        "`metrics` keys must be lowercase snake_case",
    ),
    # ModelDeployment.
    Case(
        "mdep-model-name-required",
        MDEP,
        {"spec.modelName": DELETE},
        "spec.modelName",
        "Required value",
    ),
    Case(
        "mdep-replicas-negative",
        MDEP,
        {"spec.replicas": -1},
        "spec.replicas",
        "greater than or equal to 0",
    ),
    Case(
        "mdep-replicas-type",
        MDEP,
        {"spec.replicas": "three"},
        "spec.replicas",
        "must be of type integer",
    ),
    Case(
        "mdep-strategy-enum",
        MDEP,
        {"spec.rollout.strategy": "BlueGreen"},
        "spec.rollout.strategy",
        "Unsupported value",
    ),
    Case(
        "mdep-promotion-enum",
        MDEP,
        {"spec.promotion": "Sometimes"},
        "spec.promotion",
        "Unsupported value",
    ),
    Case(
        "mdep-canary-weight-low",
        MDEP,
        {"spec.rollout.canary.steps.0.weight": 0},
        "spec.rollout.canary.steps[0].weight",
        "greater than or equal to 1",
    ),
    Case(
        "mdep-canary-weight-high",
        MDEP,
        {"spec.rollout.canary.steps.3.weight": 101},
        "spec.rollout.canary.steps[3].weight",
        "less than or equal to 100",
    ),
    Case(
        "mdep-canary-pause-format",
        MDEP,
        {"spec.rollout.canary.steps.0.pause": "5 minutes"},
        "spec.rollout.canary.steps[0].pause",
        "should match",
    ),
    Case(
        "mdep-error-rate-range",
        MDEP,
        {"spec.rollout.analysis.maxErrorRate": 1.5},
        "spec.rollout.analysis.maxErrorRate",
        "less than or equal to 1",
    ),
    Case(
        "mdep-sample-rate-positive",
        MDEP,
        {"spec.payloadLogging.sampleRate": 0},
        "spec.payloadLogging.sampleRate",
        "greater than 0",
    ),
    Case(
        "mdep-batch-size-positive",
        MDEP,
        {"spec.server.maxBatchSize": 0},
        "spec.server.maxBatchSize",
        "greater than or equal to 1",
    ),
    Case(
        "mdep-grpc-port-not-http",
        MDEP,
        {"spec.server.grpcPort": 8080},
        "spec.server.grpcPort",
        "`grpcPort` must be 0 (no gRPC endpoint), or 1024-65535 and not the HTTP port 8080",
    ),
    Case(
        "mdep-grpc-port-unprivileged",
        MDEP,
        {"spec.server.grpcPort": 443},
        "spec.server.grpcPort",
        "`grpcPort` must be 0 (no gRPC endpoint), or 1024-65535",
    ),
    Case(
        "mdep-canary-steps-increase",
        MDEP,
        {"spec.rollout.canary.steps.2.weight": 20},
        "spec.rollout.canary.steps",
        "`steps` weights must be strictly increasing",
    ),
    Case(
        "mdep-canary-steps-strictly",
        MDEP,
        {"spec.rollout.canary.steps.1.weight": 10},
        "spec.rollout.canary.steps",
        "`steps` weights must be strictly increasing",
    ),
    Case(
        "mdep-canary-required",
        MDEP,
        {"spec.rollout.canary": DELETE},
        "spec.rollout.canary",
        "`canary` must be set when `strategy` is Canary",
    ),
    Case(
        "mdep-canary-forbidden",
        MDEP,
        {"spec.rollout.strategy": "Recreate"},
        "spec.rollout.canary",
        "`canary` must not be set unless `strategy` is Canary",
    ),
    Case(
        "mdep-shadow-forbidden",
        MDEP,
        {"spec.rollout.shadow": {"mirrorPercent": 50}},
        "spec.rollout.shadow",
        "`shadow` must not be set unless `strategy` is Shadow",
    ),
    Case(
        "mdep-manual-needs-version",
        MDEP,
        {"spec.promotion": "Manual"},
        "spec.version",
        "`version` must be set when `promotion` is Manual",
    ),
    Case(
        "mdep-auto-forbids-version",
        MDEP,
        {"spec.version": 3},
        "spec.version",
        "`version` must not be set when `promotion` is Auto",
    ),
    Case(
        "mdep-min-accuracy-needs-feedback",
        MDEP,
        {"spec.feedback": DELETE},
        "spec.feedback",
        "`rollbackFloors.minAccuracy` needs `feedback`",
    ),
    Case(
        "mdep-feedback-window-within-retention",
        MDEP,
        {"spec.feedback.window": "200h"},
        "spec.feedback.window",
        "`window` must not be longer than `retention`",
    ),
    Case(
        "mdep-feedback-delay-within-retention",
        MDEP,
        {"spec.feedback.maxLabelDelay": "200h"},
        "spec.feedback.maxLabelDelay",
        "`maxLabelDelay` must not be longer than `retention`",
    ),
    Case(
        "mdep-feedback-coverage-range",
        MDEP,
        {"spec.feedback.minLabelCoverage": 0},
        "spec.feedback.minLabelCoverage",
        "should be greater than 0",
    ),
    Case(
        "mdep-floors-need-one",
        MDEP,
        {"spec.rollbackFloors": {"window": "5m"}},
        "spec.rollbackFloors",
        "at least one of `maxErrorRate`, `maxP99LatencyMs` or `minAccuracy` must be set",
    ),
    # DriftPolicy.
    Case(
        "dp-deployment-required",
        DP,
        {"spec.deployment": DELETE},
        "spec.deployment",
        "Required value",
    ),
    Case(
        "dp-interval-format", DP, {"spec.interval": "five minutes"}, "spec.interval", "should match"
    ),
    Case(
        "dp-psi-positive",
        DP,
        {"spec.triggers.featureDrift.psiThreshold": 0},
        "spec.triggers.featureDrift.psiThreshold",
        "greater than 0",
    ),
    Case(
        "dp-psi-max",
        DP,
        {"spec.triggers.featureDrift.psiThreshold": 11},
        "spec.triggers.featureDrift.psiThreshold",
        "less than or equal to 10",
    ),
    Case(
        "dp-floor-range",
        DP,
        {"spec.triggers.accuracy.floor": 1.2},
        "spec.triggers.accuracy.floor",
        "less than or equal to 1",
    ),
    Case(
        "dp-drifted-share-positive",
        DP,
        {"spec.triggers.featureDrift.minDriftedShare": 0},
        "spec.triggers.featureDrift.minDriftedShare",
        "greater than 0",
    ),
    Case(
        "dp-schedule-cron",
        DP,
        {"spec.triggers.schedule": "every sunday"},
        "spec.triggers.schedule",
        "`schedule` must be 5 cron fields",
    ),
    Case(
        "dp-schedule-minute-range",
        DP,
        {"spec.triggers.schedule": "61 * * * *"},
        "spec.triggers.schedule",
        "minute 0-59",
    ),
    Case(
        "dp-custom-unique",
        DP,
        {
            "spec.triggers.custom": [
                {"name": "q", "query": "up", "threshold": 1},
                {"name": "q", "query": "up", "threshold": 2},
            ]
        },
        "spec.triggers.custom[1]",
        "Duplicate value",
    ),
    Case("dp-action-enum", DP, {"spec.action": "Page"}, "spec.action", "Unsupported value"),
    Case(
        "dp-prometheus-url",
        DP,
        {"spec.prometheus.url": "prometheus:9090"},
        "spec.prometheus.url",
        "should match",
    ),
    Case(
        "dp-cooldown-not-shorter",
        DP,
        {"spec.cooldown": "1m"},
        "spec.cooldown",
        "`cooldown` must not be shorter than `interval`",
    ),
    Case(
        "dp-window-not-shorter",
        DP,
        {"spec.window": "90s"},
        "spec.window",
        "`window` must not be shorter than `interval`",
    ),
    Case(
        "dp-interval-minimum",
        DP,
        {"spec.interval": "5s", "spec.window": "5s", "spec.cooldown": "5s"},
        "spec.interval",
        "`interval` must be at least 10s",
    ),
    Case(
        "dp-some-trigger",
        DP,
        {"spec.triggers": {}},
        "spec.triggers",
        "at least one trigger must be set",
    ),
    Case(
        "dp-accuracy-or-rmse",
        DP,
        {"spec.triggers.rmse": {"ceiling": 3.0}},
        "spec.triggers.rmse",
        "`accuracy` and `rmse` must not both be set",
    ),
    Case(
        "dp-retrain-required",
        DP,
        {"spec.retrain": DELETE},
        "spec.retrain",
        "`retrain` must be set when `action` is Retrain",
    ),
    Case(
        "dp-dataset-unless-logged-data",
        DP,
        {"spec.retrain.template.dataset": DELETE},
        "spec.retrain.template.dataset",
        "`template.dataset` must be set unless `useLoggedData` is true",
    ),
    Case(
        "dp-logged-sample-needs-logged-data",
        DP,
        {"spec.retrain.loggedDataSample": 0.5},
        "spec.retrain.loggedDataSample",
        "`loggedDataSample` needs `useLoggedData`",
    ),
    Case(
        "dp-estimated-accuracy-and-rmse",
        DP,
        {
            "spec.triggers.rmse": {"ceiling": 3.0},
            "spec.triggers.accuracy": DELETE,
            "spec.triggers.estimatedAccuracy": {"floor": 0.8},
        },
        "spec.triggers.rmse",
        "`estimatedAccuracy` is for classifiers and `rmse` for regressors: not both",
    ),
    Case(
        "dp-budget-period",
        DP,
        {"spec.budget.period": "30s"},
        "spec.budget.period",
        "`period` must be at least 1m",
    ),
    Case(
        "dp-template-estimator-task",
        DP,
        {"spec.retrain.template.task": "regression"},
        "spec.retrain.template.estimator.name",
        "must be a classifier when `task` is classification and a regressor",
    ),
]


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_example_passes_server_dry_run(crds: Path, namespace: str, name: str) -> None:
    assert submit(crds, namespace, example(name), dry_run=True) == ""


def test_enough_malformed_cases() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_malformed_resource_is_rejected(crds: Path, namespace: str, case: Case) -> None:
    document = example(case.example)
    for path, value in case.edits.items():
        edit(document, path, value, delete=value is DELETE)
    error = submit(crds, namespace, document, dry_run=True)
    assert error, f"{case.id}: the API server accepted it"
    assert f"{case.field}:" in error, error
    assert case.message in error, error


@pytest.mark.parametrize("name", [TJ, MV, MDEP, DP])
def test_unknown_fields_are_rejected_under_strict_validation(
    crds: Path, namespace: str, name: str
) -> None:
    document = example(name)
    edit(document, "spec.replicaCount", 3)
    error = submit(crds, namespace, document, dry_run=True)
    assert 'unknown field "spec.replicaCount"' in error


def test_model_version_spec_is_immutable(crds: Path, namespace: str) -> None:
    assert submit(crds, namespace, example(MV), dry_run=False) == ""
    for patch in ('{"spec":{"version":5}}', '{"spec":{"metrics":{"accuracy":0.99}}}'):
        proc = kubectl(
            crds,
            "-n",
            namespace,
            "patch",
            "mv",
            "churn-v4",
            "--type=merge",
            "-p",
            patch,
            check=False,
        )
        assert proc.returncode != 0
        assert "spec: Invalid value" in proc.stderr
        assert "`spec` is immutable: create a new ModelVersion instead" in proc.stderr
    labelled = kubectl(crds, "-n", namespace, "label", "mv", "churn-v4", "stage=candidate")
    assert labelled.returncode == 0, "metadata stays editable"


def test_training_job_spec_is_frozen_except_suspend(crds: Path, namespace: str) -> None:
    assert submit(crds, namespace, example(TJ), dry_run=False) == ""
    name = example(TJ)["metadata"]["name"]
    proc = kubectl(
        crds,
        "-n",
        namespace,
        "patch",
        "tj",
        name,
        "--type=merge",
        "-p",
        '{"spec":{"estimator":{"name":"RandomForestClassifier"}}}',
        check=False,
    )
    assert proc.returncode != 0
    assert "`spec` is immutable except `suspend` and `ttlSecondsAfterFinished`" in proc.stderr
    kubectl(
        crds,
        "-n",
        namespace,
        "patch",
        "tj",
        name,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true,"ttlSecondsAfterFinished":60}}',
    )
