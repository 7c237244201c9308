"""ModelVersion validation on the real cluster: a Job checks the artifact, gates judge it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.operator.conftest import RunningOperator
from tests.kube import get_json, kubectl, wait_for


def _phase(kubeconfig: Path, namespace: str, name: str) -> str | None:
    status = get_json(kubeconfig, "-n", namespace, "mv", name).get("status") or {}
    phase = status.get("phase")
    return phase if phase in ("Validated", "Rejected", "AwaitingApproval") else None


def test_validated_rejected_and_approved(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    key, card = train_into(store, "iris", "LogisticRegression", {"max_iter": 500})
    weak_key, weak = train_into(store, "iris", "DecisionTreeClassifier", {"max_depth": 1})
    good = model_version(
        "iris-v1",
        "iris",
        1,
        key,
        card,
        gates={
            "metrics": [
                {"metric": "accuracy", "threshold": 0.9},
                {"metric": "log_loss", "op": "<=", "threshold": 0.3},
            ]
        },
    )
    bad = model_version(
        "iris-v2",
        "iris",
        2,
        weak_key,
        weak,
        gates={"metrics": [{"metric": "accuracy", "threshold": 0.9}]},
    )
    held = model_version("iris-v3", "iris", 3, key, card, gates={"requireApproval": True})
    tampered = model_version("iris-v4", "iris", 4, key, card)
    tampered["spec"]["artifact"]["sha256"] = "0" * 64
    # The right file, recorded with another size and opset: sizeBytes and opset are promises too.
    misrecorded = model_version("iris-v5", "iris", 5, key, card)
    misrecorded["spec"]["artifact"] |= {"sizeBytes": card.artifact.size_bytes + 1, "opset": 3}
    # A deployment's gates reach the versions of its model: this one has none of its own.
    gated_deployment = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "gated"},
        "spec": {
            "modelName": "gated",
            "gates": {
                "metrics": [{"metric": "accuracy", "threshold": 0.5}],
                "requireApproval": True,
            },
        },
    }
    gated = model_version("gated-v1", "gated", 1, key, card)
    for manifest in (gated_deployment, good, bad, held, tampered, misrecorded, gated):
        kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", stdin=json.dumps(manifest))  # fmt: skip

    names = ("iris-v1", "iris-v2", "iris-v3", "iris-v4", "iris-v5", "gated-v1")
    phases = {
        name: wait_for(lambda n=name: _phase(kubeconfig, ns, n), timeout=240, what=f"{name} judged")
        for name in names
    }
    assert phases == {
        "iris-v1": "Validated",
        "iris-v2": "Rejected",
        "iris-v3": "AwaitingApproval",
        "iris-v4": "Rejected",
        "iris-v5": "Rejected",
        "gated-v1": "AwaitingApproval",
    }
    deployment_gated = get_json(kubeconfig, "-n", ns, "mv", "gated-v1")["status"]
    assert "accuracy >= 0.5" in [g["gate"] for g in deployment_gated["gateResults"]]
    v1 = get_json(kubeconfig, "-n", ns, "mv", "iris-v1")["status"]
    gates = {g["gate"]: g for g in v1["gateResults"]}
    assert [g["gate"] for g in v1["gateResults"]][:6] == [
        "checksum", "artifact", "load", "signature", "parity", "evaluation"
    ]  # fmt: skip
    assert gates["accuracy >= 0.9"]["passed"]
    assert gates["accuracy >= 0.9"]["value"] == card.metrics["accuracy"]
    assert gates["log_loss <= 0.3"]["threshold"] == 0.3
    kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", "mv/iris-v1", "--timeout=5s")

    v2 = get_json(kubeconfig, "-n", ns, "mv", "iris-v2")["status"]
    failed = [g for g in v2["gateResults"] if not g["passed"]]
    assert [(g["gate"], g["value"]) for g in failed] == [
        ("accuracy >= 0.9", weak.metrics["accuracy"])
    ]
    v4 = get_json(kubeconfig, "-n", ns, "mv", "iris-v4")["status"]
    assert v4["gateResults"][0]["gate"] == "checksum"
    assert "0" * 64 in v4["gateResults"][0]["message"]
    v5 = get_json(kubeconfig, "-n", ns, "mv", "iris-v5")["status"]
    artifact = next(g for g in v5["gateResults"] if g["gate"] == "artifact")
    assert not artifact["passed"]
    assert f"records {card.artifact.size_bytes + 1}" in artifact["message"]
    assert "opset" in artifact["message"]
    # The Job ran under the restricted standard with the trainer image.
    job = get_json(kubeconfig, "-n", ns, "job", "iris-v1-validate")
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    kubectl(kubeconfig, "-n", ns, "annotate", "mv", "iris-v3", "mlops.dev/approved-by=alice")
    wait_for(lambda: _phase(kubeconfig, ns, "iris-v3") == "Validated", timeout=60,
             what="approval recorded")  # fmt: skip
    approval = get_json(kubeconfig, "-n", ns, "mv", "iris-v3")["status"]["approval"]
    assert approval["by"] == "alice"

    def approved_events() -> list[dict[str, Any]]:
        # Kopf posts Events from a queue of its own, after the status write: wait for it.
        events = get_json(kubeconfig, "-n", ns, "events", "--field-selector",
                          "involvedObject.name=iris-v3")["items"]  # fmt: skip
        return [e for e in events if e["reason"] == "Approved"]

    approved = wait_for(approved_events, timeout=30, what="the Approved Event")
    assert any("alice" in e["message"] for e in approved), approved
