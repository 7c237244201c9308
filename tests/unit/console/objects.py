"""A small closed loop as the API server would return it: iris v1 trained from a dataset, a
DriftPolicy that retrained it into v2 on the logged traffic, a canary, a rollback."""

from __future__ import annotations

from typing import Any

from mlops_operator.console.store import Scope, Store

NS = "ml"
SHA1 = "1" * 64
SHA2 = "2" * 64


def meta(name: str, created: str, namespace: str = NS, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": created,
        "uid": name,
        **extra,
    }


def training_job(name: str, created: str, **extra: Any) -> dict[str, Any]:
    dataset = extra.pop("dataset", {"uri": "sklearn://iris"})
    labels = extra.pop("labels", {})
    annotations = extra.pop("annotations", {})
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": meta(name, created, labels=labels, annotations=annotations),
        "spec": {
            "modelName": "iris",
            "target": "target",
            "estimator": {"name": "LogisticRegression"},
            "dataset": dataset,
            **extra,
        },
        "status": {"phase": "Succeeded", "modelVersion": extra.get("produced")},
    }


def version(number: int, job: str, sha: str, uri: str, **lineage: Any) -> dict[str, Any]:
    phase = lineage.pop("phase", "Validated")
    gate_results = lineage.pop("gate_results", None) or [
        {"gate": "checksum", "passed": True, "message": "sha256 matches"},
        {
            "gate": "accuracy >= 0.85",
            "metric": "accuracy",
            "value": 0.9 + number / 100,
            "threshold": 0.85,
            "passed": True,
        },
    ]
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": meta(f"iris-v{number}", f"2026-12-01T10:0{number}:00Z"),
        "spec": {
            "modelName": "iris",
            "version": number,
            "artifact": {
                "uri": f"pvc://mlops-artifacts/models/iris/{'a' * 64}",
                "sha256": "a" * 64,
                "sizeBytes": 631,
                "format": "onnx",
                "opset": 17,
            },
            "signature": {
                "task": "classification",
                "features": [
                    {"name": "petal_length", "kind": "numeric"},
                    {"name": "sepal_width", "kind": "numeric"},
                ],
                "classes": ["0", "1", "2"],
            },
            "metrics": {"accuracy": 0.9 + number / 100, "f1_macro": 0.89},
            "primaryMetric": {"name": "accuracy", "value": 0.9 + number / 100},
            "lineage": {
                "dataset": {"uri": uri, "sha256": sha, "rows": 150, "columns": 5},
                "target": "target",
                "estimator": "LogisticRegression",
                "params": {"max_iter": 500},
                "seed": 42,
                "testSize": 0.3,
                "codeVersion": "0.1.0",
                "trainingJob": job,
                **lineage,
            },
        },
        "status": {"phase": phase, "gateResults": gate_results},
    }


def deployment(history: list[dict[str, Any]], champion: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": meta("iris", "2026-12-01T10:01:30Z"),
        "spec": {
            "modelName": "iris",
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": [{"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "30s"}]
                },
            },
        },
        "status": {
            "champion": {
                "version": champion,
                "modelVersion": f"iris-v{champion}",
                "since": history[0]["time"],
            },
            "history": history,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "message": "1/1 ready",
                    "lastTransitionTime": "2026-12-01T10:02:00Z",
                }
            ],
        },
    }


HISTORY = [  # newest first, as the status keeps it
    {
        "version": 1,
        "time": "2026-12-01T10:20:00Z",
        "action": "Rollback",
        "reason": "ManualRollback",
        "message": "rolled back to v1",
        "actor": "alice",
        "evidence": {},
    },
    {
        "version": 2,
        "time": "2026-12-01T10:10:00Z",
        "action": "Promote",
        "reason": "AnalysisPassed",
        "message": "canary passed",
        "evidence": {"accuracy": 0.97, "errorRate": 0.0},
    },
    {
        "version": 1,
        "time": "2026-12-01T10:02:00Z",
        "action": "Deploy",
        "reason": "FirstVersion",
        "message": "first version",
    },
]

RETRAIN = training_job(
    "iris-1a2b",
    "2026-12-01T10:04:00Z",
    dataset={"fromPayloadLog": {"deployment": "iris", "window": "1m"}},
    labels={"mlops.dev/drift-policy": "iris"},
    annotations={
        "mlops.dev/retrain-reason": "triggered by featureDrift = 1 (threshold 0.5)",
        "mlops.dev/retrain-values": '{"accuracy": 0.61, "featureDrift": 1.0}',
    },
    parentVersion="iris-v1",
    produced="iris-v2",
)

POLICY = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "DriftPolicy",
    "metadata": meta("iris", "2026-12-01T10:02:30Z"),
    "spec": {
        "deployment": "iris",
        "interval": "10s",
        "window": "1m",
        "cooldown": "2m",
        "budget": {"count": 3, "period": "1h"},
        "triggers": {"featureDrift": {"psiThreshold": 0.25}, "accuracy": {"floor": 0.8}},
    },
    "status": {
        "lastEvaluationTime": "2026-12-01T10:03:20Z",
        "retrainsInPeriod": 1,
        "triggers": [
            {
                "name": "featureDrift",
                "value": 1.0,
                "threshold": 0.5,
                "fired": True,
                "consecutive": 1,
                "samples": 240,
                "message": "PSI (threshold 0.25): petal_length=1.900, sepal_width=0.010",
            },
            {
                "name": "accuracy",
                "value": 0.61,
                "threshold": 0.8,
                "fired": True,
                "consecutive": 1,
                "samples": 80,
            },
        ],
        "lastRetrain": {
            "time": "2026-12-01T10:04:00Z",
            "reason": "triggered by featureDrift",
            "trainingJob": "iris-1a2b",
            "resultingVersion": "iris-v2",
        },
        "evaluations": [
            {
                "time": "2026-12-01T10:03:20Z",
                "values": {"featureDrift": 1.0, "accuracy": 0.61},
                "featurePsi": {"petal_length": 1.9, "sepal_width": 0.01},
            },
            {
                "time": "2026-12-01T10:03:10Z",
                "values": {"featureDrift": 0.0, "accuracy": 0.97},
                "featurePsi": {"petal_length": 0.02, "sepal_width": 0.01},
            },
        ],
        "conditions": [
            {
                "type": "DriftDetected",
                "status": "True",
                "reason": "RetrainTriggered",
                "message": "triggered by featureDrift",
                "lastTransitionTime": "2026-12-01T10:04:00Z",
            }
        ],
    },
}


def loop_store(namespaces: tuple[str, ...] | None = None) -> Store:
    """A store that has listed the whole loop."""
    store = Store(Scope(namespaces, "test"))
    ns = namespaces[0] if namespaces else ""
    store.replace(
        "TrainingJob",
        ns,
        [training_job("iris-initial", "2026-12-01T10:00:00Z", produced="iris-v1"), RETRAIN],
    )
    store.replace(
        "ModelVersion",
        ns,
        [
            version(1, "iris-initial", SHA1, "sklearn://iris"),
            version(
                2, "iris-1a2b", SHA2, f"payloadlog://{NS}/iris?window=1m", parentVersion="iris-v1"
            ),
        ],
    )
    store.replace("ModelDeployment", ns, [deployment(HISTORY)])
    store.replace("DriftPolicy", ns, [POLICY])
    return store
