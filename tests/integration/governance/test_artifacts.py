"""What serves is what was validated, gates judge measured numbers, children are owned.

Models are trained with the real trainer into the namespace's artifact claim and recorded by
hand as ModelVersions; in a governed namespace nobody but the operator may mark a version as a
TrainingJob's (not even a cluster admin), so each is held for approval, and the approver lets
them through.

- A hand-made version reporting excellent metrics fails a threshold its measured accuracy does
  not reach (the gate shows the measurement), and one that passes every gate is still held.
- After validation, v2's model and card are replaced together in the store by another
  consistent pair. Its rollout starts, its serving pod refuses the bytes (their sha256 is not
  the registered one), and the ModelDeployment withdraws it for good, saying why in its history,
  a condition and an Event, while v1 keeps serving; ``/feedback`` there needs the bearer token
  from the deployment's Secret.
- A ModelDeployment named like an existing, unrelated Deployment and Service leaves both
  unchanged and reports NameConflict (condition and Event).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from typing import Any

from mlops_operator.api.metadata import APPROVED_BY_ANNOTATION, TRAINING_JOB_UID_ANNOTATION
from mlops_operator.k8s import FIELD_MANAGER
from mlops_operator.modelcard import MODEL_CARD_FILE, MODEL_FILE
from tests.integration.governance.conftest import Governed
from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.operator.conftest import RunningOperator
from tests.kube import get_json, kubectl, wait_for

TOKEN = "labels-only-from-the-label-service"


def _hand_made(
    governed: Governed, name: str, version: int, key: str, card: Any, **spec: Any
) -> None:
    doc = model_version(name, "iris", version, key, card)
    doc["metadata"]["annotations"].pop(TRAINING_JOB_UID_ANNOTATION)
    doc["metadata"]["namespace"] = governed.namespace
    doc["spec"] |= spec
    kubectl(governed.kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))


def _approved(governed: Governed, name: str) -> None:
    wait_for(lambda: governed.phase(name) == "AwaitingApproval", timeout=240, what=f"{name} held")
    governed.allowed(governed.approver, "annotate", "modelversion", name,
                     f"{APPROVED_BY_ANNOTATION}={governed.approver}")  # fmt: skip
    wait_for(lambda: governed.phase(name) == "Validated", timeout=60, what=f"{name} Validated")


def test_a_hand_made_version_does_not_pass_a_gate_by_its_own_numbers(
    governed: Governed, governed_operator: RunningOperator
) -> None:
    store = governed.store()
    weak_key, weak = train_into(store, "iris", "DecisionTreeClassifier", {"max_depth": 1})
    good_key, good = train_into(store, "iris", "LogisticRegression", {"max_iter": 500})
    gates = {"metrics": [{"metric": "accuracy", "op": ">=", "threshold": 0.9}]}
    boast = {
        "metrics": {"accuracy": 0.9999},
        "primaryMetric": {"name": "accuracy", "value": 0.9999},
    }
    # Forging the mark of a TrainingJob is refused, even to a cluster admin.
    forged = model_version("iris-v1", "iris", 1, weak_key, weak)
    forged["metadata"]["namespace"] = governed.namespace
    refusal = governed.refused("root@example", "--as-group=system:masters", "apply", "-f", "-",
                               stdin=json.dumps(forged))  # fmt: skip
    assert (
        "mlops.dev/training-job-uid and mlops.dev/audited are kept by the mlops operator alone"
        in refusal
    )

    _hand_made(governed, "iris-v1", 1, weak_key, weak, gates=gates, **boast)
    _hand_made(governed, "iris-v2", 2, good_key, good, gates=gates)
    wait_for(lambda: governed.phase("iris-v1") == "Rejected", timeout=240, what="v1 rejected")
    status = governed.get("modelversion", "iris-v1")["status"]
    (gate,) = [g for g in status["gateResults"] if g["gate"] == "accuracy >= 0.9"]
    measured = status["measuredMetrics"]["accuracy"]
    assert gate["passed"] is False
    assert gate["value"] == measured < 0.9
    assert governed.get("modelversion", "iris-v1")["spec"]["metrics"]["accuracy"] == 0.9999

    wait_for(lambda: governed.phase("iris-v2") == "AwaitingApproval", timeout=240, what="v2 held")
    held = governed.get("modelversion", "iris-v2")["status"]
    assert all(g["passed"] for g in held["gateResults"])
    (provenance,) = [g for g in held["gateResults"] if g["gate"] == "provenance"]
    assert "not produced by a TrainingJob of this operator" in provenance["message"]


def _pod_ips(governed: Governed, version: int) -> list[str]:
    pods = get_json(governed.kubeconfig, "pods", "-n", governed.namespace,
                    "-l", f"mlops.dev/deployment=iris,mlops.dev/version={version}")["items"]  # fmt: skip
    return [p["status"]["podIP"] for p in pods
            if p["status"].get("phase") == "Running" and p["status"].get("podIP")]  # fmt: skip


def _post(url: str, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_artifact_replaced_after_validation_never_serves(
    governed: Governed, governed_operator: RunningOperator
) -> None:
    ns = governed.namespace
    store = governed.store()
    k1, c1 = train_into(store, "iris", "LogisticRegression", {"max_iter": 500})
    k2, c2 = train_into(store, "iris", "DecisionTreeClassifier", {"max_depth": 3})
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "labels", "namespace": ns},
              "stringData": {"token": TOKEN}}  # fmt: skip
    kubectl(governed.kubeconfig, "apply", "-f", "-", stdin=json.dumps(secret))
    _hand_made(governed, "iris-v1", 1, k1, c1)
    _approved(governed, "iris-v1")
    mdep = {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "iris", "namespace": ns},
            "spec": {"modelName": "iris", "feedback": {"tokenSecret": {"name": "labels"}}}}  # fmt: skip
    kubectl(governed.kubeconfig, "apply", "-f", "-", stdin=json.dumps(mdep))
    wait_for(lambda: _pod_ips(governed, 1), timeout=240, what="v1 serving")

    _hand_made(governed, "iris-v2", 2, k2, c2)
    wait_for(lambda: governed.phase("iris-v2") == "AwaitingApproval", timeout=240, what="v2 held")
    # Validated; now both files are replaced by another pair that agrees with itself.
    for name in (MODEL_FILE, MODEL_CARD_FILE):
        shutil.copyfile(store / k1 / name, store / k2 / name)
    governed.allowed(governed.approver, "annotate", "modelversion", "iris-v2",
                     f"{APPROVED_BY_ANNOTATION}={governed.approver}")  # fmt: skip

    def withdrawn() -> dict[str, Any] | None:
        history = (governed.get("mdep", "iris").get("status") or {}).get("history") or []
        return next((e for e in history if e["action"] == "Abort" and e["version"] == 2), None)

    entry = wait_for(withdrawn, timeout=300, what="v2 withdrawn")
    assert entry["reason"] == "ArtifactRefused"
    assert (
        f"hashes to {c1.artifact.sha256} but the ModelVersion registers {c2.artifact.sha256}"
        in entry["message"]
    )
    status = governed.get("mdep", "iris")["status"]
    assert status["champion"]["version"] == 1
    assert "challenger" not in status
    degraded = {c["type"]: c for c in status["conditions"]}["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "ArtifactRefused")
    wait_for(
        lambda: any(e["reason"] == "ArtifactRefused" and c2.artifact.sha256 in e["message"]
                    for e in governed.events("ModelDeployment", "iris")),
        timeout=30, what="the ArtifactRefused Event",
    )  # fmt: skip
    wait_for(
        lambda: not get_json(governed.kubeconfig, "deployments", "-n", ns, "-l",
                             "mlops.dev/deployment=iris,mlops.dev/version=2")["items"],
        timeout=120, what="v2's Deployment to be deleted",
    )  # fmt: skip

    # v1 serves on; its labels need the deployment's token.
    (ip, *_) = _pod_ips(governed, 1)
    code, answer = _post(f"http://{ip}:8080/predict", {"rows": [c1.parity.sample_inputs[0]]})
    assert (code, answer["model_version"]) == (200, "1")
    feedback = {"request_id": answer["request_id"], "labels": answer["labels"]}
    assert _post(f"http://{ip}:8080/feedback", feedback)[0] == 401
    assert _post(f"http://{ip}:8080/feedback", feedback, "guess")[0] == 401
    code, accepted = _post(f"http://{ip}:8080/feedback", feedback, TOKEN)
    assert (code, accepted["accepted"]) == (200, 1)
    # Not retried: v2 stays withdrawn.
    assert governed.get("mdep", "iris")["status"]["champion"]["version"] == 1


def test_a_deployment_named_like_unrelated_objects_leaves_them_alone(
    governed: Governed, governed_operator: RunningOperator
) -> None:
    ns = governed.namespace
    store = governed.store()
    key, card = train_into(store, "iris", "LogisticRegression", {"max_iter": 500})
    _hand_made(governed, "iris-v1", 1, key, card)
    _approved(governed, "iris-v1")
    theirs = [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web-v1", "namespace": ns, "labels": {"app": "web"}},
         "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "mlops-operator/python"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}},
    ]  # fmt: skip
    kubectl(governed.kubeconfig, "apply", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": theirs}))  # fmt: skip
    before = {
        kind: governed.get(kind, name)
        for kind, name in (("deployment", "web-v1"), ("service", "web"))
    }
    mdep = {"apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "web", "namespace": ns}, "spec": {"modelName": "iris"}}  # fmt: skip
    kubectl(governed.kubeconfig, "apply", "-f", "-", stdin=json.dumps(mdep))

    def conflict() -> dict[str, Any] | None:
        conditions = (governed.get("mdep", "web").get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        return (
            ready
            if ready
            and ready["reason"] == "NameConflict"
            and "Deployment web-v1" in ready["message"]
            else None
        )

    ready = wait_for(conflict, timeout=180, what="NameConflict for both children")
    assert ready["status"] == "False"
    assert (
        "Service web already exists and has no controller; the operator leaves it alone"
        in ready["message"]
    )
    assert "Deployment web-v1 already exists and has no controller" in ready["message"]

    def reported() -> list[str] | None:
        # Events are posted apart from the status write, maybe after it: wait for both.
        reasons = [
            e["message"]
            for e in governed.events("ModelDeployment", "web")
            if e["reason"] == "NameConflict"
        ]
        both = any("Service web" in m for m in reasons) and any(
            "Deployment web-v1" in m for m in reasons
        )
        return reasons if both else None

    wait_for(reported, timeout=60, what="a NameConflict Event for each child")
    for (kind, name), old in zip(
        (("deployment", "web-v1"), ("service", "web")), before.values(), strict=True
    ):
        now = governed.get(kind, name, "--show-managed-fields")
        # Not the resourceVersion: the Deployment controller writes the status of web-v1 (and its
        # revision annotation) whenever it gets to it, maybe after `before` was read. What the
        # operator would leave behind is its field manager, an owner, or another object.
        assert now["metadata"]["uid"] == old["metadata"]["uid"], kind
        managers = {entry["manager"] for entry in now["metadata"]["managedFields"]}
        assert FIELD_MANAGER not in managers, (kind, managers)
        assert now["metadata"].get("labels") == old["metadata"].get("labels"), kind
        assert now["spec"] == old["spec"]
        assert "ownerReferences" not in now["metadata"]
