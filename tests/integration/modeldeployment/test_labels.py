"""Labels at scale on the local cluster: any replica, any worker, after a rollout; the floor they drive.

- **Joined whatever answered.** A ModelDeployment with 3 replicas of 2 workers takes
  3,000 predictions through its Service, one connection each. The labels are posted
  later, in batches, each on a fresh connection, half of them after a rolling restart
  replaced every pod. Every label is accepted, the evaluator joins 100 % of them, and
  the accuracy it reports is exactly the one the client computes on the same rows.
- **Decay rolls back.** v2 is promoted over v1; its accuracy then decays (the world's
  labels change); once a window of its predictions is labelled, its realized accuracy
  breaches ``rollbackFloors.minAccuracy`` and the operator restores v1 by itself.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris

from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.modeldeployment.traffic import Traffic, predict, wait_until_routed
from tests.integration.operator.conftest import RunningOperator, http_get
from tests.kube import get_json, kubectl, wait_for

MDEP = "iris"
PREDICTIONS = 3000
BATCH = 100


def writable_labels(store: Path) -> None:
    """Let the serving pods (uid 65532) create the label logs in the test's store."""
    folder = store / "labels"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o777)


def _apply(kubeconfig: Path, ns: str, manifest: dict[str, Any]) -> None:
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", stdin=json.dumps(manifest))


def _post(url: str, body: object) -> tuple[int, dict[str, Any]]:
    """POST JSON on a new connection (urllib opens one per request)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"error": error.read().decode(errors="replace")}


def evaluator_metrics(kubeconfig: Path, ns: str) -> dict[tuple[str, str], float]:
    """The evaluator pod's gauges by (name, model_version); empty while it is not up."""
    pods = get_json(kubeconfig, "-n", ns, "pods", "-l",
                    f"mlops.dev/deployment={MDEP},app.kubernetes.io/component=evaluator")["items"]  # fmt: skip
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        answer = http_get(f"http://{ip}:8080/metrics") if ip else None
        if answer and answer[0] == 200:
            return {
                (sample.name, sample.labels.get("model_version", "")): sample.value
                for family in text_string_to_metric_families(answer[1])
                for sample in family.samples
            }
    return {}


def _serving_pods(kubeconfig: Path, ns: str) -> set[str]:
    pods = get_json(kubeconfig, "-n", ns, "pods", "-l",
                    f"mlops.dev/deployment={MDEP},app.kubernetes.io/component=inference-server")  # fmt: skip
    return {
        p["metadata"]["name"]
        for p in pods["items"]
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or [])
    }  # fmt: skip


def test_labels_join_whichever_replica_worker_or_restarted_pod_took_them(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    key, card = train_into(store, "iris", "LogisticRegression", {"C": 0.05, "max_iter": 500})
    writable_labels(store)
    _apply(kubeconfig, ns, model_version("iris-v1", "iris", 1, key, card))
    _apply(kubeconfig, ns, {
        "apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": MDEP},
        "spec": {"modelName": "iris", "replicas": 3, "server": {"workers": 2},
                 "feedback": {"window": "1h", "minLabelCoverage": 1.0}},
    })  # fmt: skip
    kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", f"mdep/{MDEP}",
            "--timeout=300s", timeout=320)  # fmt: skip
    wait_for(lambda: len(_serving_pods(kubeconfig, ns)) == 3, timeout=120, what="3 ready pods")
    before = _serving_pods(kubeconfig, ns)
    url = f"http://{get_json(kubeconfig, '-n', ns, 'service', MDEP)['spec']['clusterIP']}:80"
    wait_until_routed(url)  # every prediction below must be answered

    # Noisy flowers, so the model is wrong on some: the accuracy to match is not 1.
    iris = load_iris()
    rng = np.random.default_rng(15)
    index = rng.integers(0, len(iris.target), PREDICTIONS)
    rows = np.round(iris.data[index] + rng.normal(0, 0.6, (PREDICTIONS, 4)), 2).tolist()
    truth = [str(t) for t in iris.target[index]]
    answered: list[tuple[str, str, str]] = []  # request id, predicted, true label
    for row, label in zip(rows, truth, strict=True):
        status, body = predict(url, [row])
        assert status == 200, body
        answered.append((body["request_id"], body["labels"][0], label))
    client_accuracy = sum(p == t for _, p, t in answered) / PREDICTIONS
    assert 0.5 < client_accuracy < 0.98

    def send(labels: list[tuple[str, str, str]]) -> None:
        for start in range(0, len(labels), BATCH):
            batch = [
                {"request_id": rid, "labels": [t]} for rid, _, t in labels[start : start + BATCH]
            ]
            status, body = _post(f"{url}/feedback", batch)
            assert (status, body.get("accepted")) == (200, len(batch)), body

    half = PREDICTIONS // 2
    send(answered[:half])
    # Every pod replaced: the labels of the second half reach pods that never saw their requests.
    kubectl(kubeconfig, "-n", ns, "rollout", "restart", f"deployment/{MDEP}-v1")
    kubectl(kubeconfig, "-n", ns, "rollout", "status", f"deployment/{MDEP}-v1",
            "--timeout=300s", timeout=320)  # fmt: skip
    wait_for(lambda: (pods := _serving_pods(kubeconfig, ns)) and len(pods) == 3
             and not pods & before, timeout=120, what="three new pods")  # fmt: skip
    send(answered[half:])

    def joined() -> dict[tuple[str, str], float] | None:
        metrics = evaluator_metrics(kubeconfig, ns)
        done = metrics.get(("mlops_lifetime_labelled_rows", "1")) == PREDICTIONS
        return metrics if done else None

    metrics = wait_for(joined, timeout=120, what="every label joined by the evaluator")
    assert metrics[("mlops_lifetime_predictions", "1")] == PREDICTIONS
    assert metrics[("mlops_labels_unmatched", "")] == 0
    assert metrics[("mlops_label_duplicate_rows", "1")] == 0
    assert metrics[("mlops_lifetime_accuracy", "1")] == client_accuracy
    # The judged window (the newest hour of prediction time, every row labelled) is the one
    # number every consumer reads; the client finds its rows by the time each id carries.
    hour_ms = 3_600_000
    newest = max(int(rid.split("-")[0], 16) // hour_ms for rid, _, _ in answered)
    in_window = [
        (p, t) for rid, p, t in answered if int(rid.split("-")[0], 16) // hour_ms == newest
    ]
    assert metrics[("mlops_realized_window_start_seconds", "1")] == newest * 3600
    assert metrics[("mlops_realized_coverage", "1")] == 1.0
    assert metrics[("mlops_realized_labelled_rows", "1")] == len(in_window)
    assert metrics[("mlops_realized_accuracy", "1")] == sum(p == t for p, t in in_window) / len(
        in_window
    )


def _status(kubeconfig: Path, ns: str) -> dict[str, Any]:
    status: dict[str, Any] = get_json(kubeconfig, "-n", ns, "mdep", MDEP).get("status") or {}
    return status


def _champion(kubeconfig: Path, ns: str) -> int | None:
    champion = _status(kubeconfig, ns).get("champion") or {}
    version = champion.get("version")
    return int(version) if version is not None else None


def test_decayed_accuracy_breaches_the_floor_and_rolls_back(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    k1, c1 = train_into(store, "iris", "LogisticRegression", {"C": 0.05, "max_iter": 500})
    k2, c2 = train_into(store, "iris", "LogisticRegression", {"C": 1.0, "max_iter": 500})
    writable_labels(store)
    _apply(kubeconfig, ns, model_version("iris-v1", "iris", 1, k1, c1))
    _apply(kubeconfig, ns, {
        "apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": MDEP},
        "spec": {
            "modelName": "iris",
            "feedback": {"window": "15s", "minLabelCoverage": 0.9, "maxLabelDelay": "5m"},
            "rollbackFloors": {"window": "2m", "minRequests": 20, "minAccuracy": 0.8},
        },
    })  # fmt: skip
    wait_for(lambda: _champion(kubeconfig, ns) == 1, timeout=300, what="v1 deployed")
    _apply(kubeconfig, ns, model_version("iris-v2", "iris", 2, k2, c2))
    wait_for(lambda: _champion(kubeconfig, ns) == 2, timeout=300, what="v2 promoted")
    url = f"http://{get_json(kubeconfig, '-n', ns, 'service', MDEP)['spec']['clusterIP']}:80"

    # The world changed after the promotion: every true label is now another class, so v2 is
    # wrong on every row it serves. Traffic goes on (the floors judge a window with requests
    # in it) and a labeller posts each second the labels of what was answered since.
    rows = c2.parity.sample_inputs
    posted = 0

    def rolled_back() -> dict[str, Any] | None:
        history = _status(kubeconfig, ns).get("history") or []
        return history[0] if history and history[0]["action"] == "Rollback" else None

    def label_until_rolled_back() -> dict[str, Any] | None:
        nonlocal posted
        answered = traffic.request_ids[posted:]
        for start in range(0, len(answered), BATCH):
            batch = [
                {"request_id": rid, "labels": [str((int(label) + 1) % 3)]}
                for rid, label in answered[start : start + BATCH]
            ]
            status, body = _post(f"{url}/feedback", batch)
            assert status == 200, body
        posted += len(answered)
        return rolled_back()

    with Traffic(url, rows, interval=0.05, max_requests=8000, max_seconds=400) as traffic:
        entry = wait_for(label_until_rolled_back, timeout=300, interval=1.0,
                         what="the floor breach to roll v2 back")  # fmt: skip
    assert posted >= 20
    assert entry["version"] == 1
    breach = _status(kubeconfig, ns)["history"][1]
    assert (breach["action"], breach["version"], breach["reason"]) == (
        "Abort", 2, "FloorBreached"
    )  # fmt: skip
    assert breach["evidence"]["accuracy"] < 0.8
    assert "live accuracy" in breach["message"]
    assert _champion(kubeconfig, ns) == 1


def _policy(kubeconfig: Path, ns: str) -> dict[str, Any]:
    found: dict[str, Any] = get_json(kubeconfig, "-n", ns, "dp", "late-labels")
    return found


def _retrains(kubeconfig: Path, ns: str) -> list[str]:
    jobs = get_json(kubeconfig, "-n", ns, "tj", "-l", "mlops.dev/drift-policy=late-labels")
    return [j["metadata"]["name"] for j in jobs["items"]]


def _evaluations(kubeconfig: Path, ns: str, count: int) -> dict[str, Any]:
    """The policy's status after `count` more evaluations than now."""
    seen = {(_policy(kubeconfig, ns).get("status") or {}).get("lastEvaluationTime")}

    def advanced() -> dict[str, Any] | None:
        status = _policy(kubeconfig, ns).get("status") or {}
        seen.add(status.get("lastEvaluationTime"))
        return status if len(seen) > count else None

    result: dict[str, Any] = wait_for(advanced, timeout=40 * count, what=f"{count} evaluations")
    return result


def _window_with_room(seconds: float) -> int:
    """A feedback window length (whole minutes, 31 to 60, in seconds) whose current window,
    aligned to a multiple of it, has at least `seconds` left to run."""
    now = time.time()
    lengths = [minutes * 60 for minutes in range(60, 30, -1)]
    found = next((length for length in lengths if length - now % length >= seconds), None)
    assert found is not None, f"no window length of 31 to 60 minutes has {seconds} s left"
    return found


def test_a_policy_waits_for_late_labels_then_fires_once(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    key, card = train_into(store, "iris", "LogisticRegression", {"max_iter": 500})
    writable_labels(store)
    _apply(kubeconfig, ns, model_version("iris-v1", "iris", 1, key, card))
    # The 200 predictions below must fall in one window. Windows are aligned to multiples of
    # their length, so a length whose current window has most of its time still to run: an
    # hour's window would make the test wait out the hour's boundary when it starts near one.
    window = _window_with_room(seconds=900)
    _apply(kubeconfig, ns, {
        "apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": MDEP},
        "spec": {"modelName": "iris",
                 "feedback": {"window": f"{window}s", "minLabelCoverage": 0.8,
                              "maxLabelDelay": "2h"}},
    })  # fmt: skip
    kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", f"mdep/{MDEP}",
            "--timeout=300s", timeout=320)  # fmt: skip
    _apply(kubeconfig, ns, {
        "apiVersion": "mlops.dev/v1alpha1", "kind": "DriftPolicy",
        "metadata": {"name": "late-labels"},
        "spec": {
            "deployment": MDEP, "interval": "10s", "window": "10m",
            "triggers": {"accuracy": {"floor": 0.8, "minSamples": 50}},
            "consecutiveBreaches": 1, "cooldown": "1h", "action": "Retrain",
            "retrain": {"template": {
                "modelName": "iris", "dataset": {"uri": "sklearn://iris"}, "target": "target",
                "estimator": {"name": "LogisticRegression"}, "suspend": True,
            }},
        },
    })  # fmt: skip
    url = f"http://{get_json(kubeconfig, '-n', ns, 'service', MDEP)['spec']['clusterIP']}:80"
    rows = card.parity.sample_inputs
    # Held only if the deployment took most of the window's room: then its boundary must pass.
    wait_for(lambda: window - time.time() % window >= 240, timeout=300, interval=5,
             what="the feedback window's boundary to pass")  # fmt: skip
    with Traffic(url, rows, interval=0.02, max_requests=200, max_seconds=120) as traffic:
        wait_for(lambda: traffic.total >= 200, timeout=120, what="200 predictions")
    # The labels of the window come from another system, late, and show decay: every one is
    # another class than predicted. A fifth of them arrive first.
    labelled = [(rid, str((int(p) + 1) % 3)) for rid, p in traffic.request_ids]
    early, late = labelled[: len(labelled) // 5], labelled[len(labelled) // 5 :]

    def post(items: list[tuple[str, str]]) -> None:
        for start in range(0, len(items), BATCH):
            chunk = [{"request_id": r, "labels": [t]} for r, t in items[start : start + BATCH]]
            status, body = _post(f"{url}/feedback", chunk)
            assert status == 200, body

    post(early)
    wait_for(lambda: evaluator_metrics(kubeconfig, ns).get(("mlops_label_coverage", "1"), 0) > 0,
             timeout=90, what="the evaluator to join the early labels")  # fmt: skip
    status = _evaluations(kubeconfig, ns, 3)
    (accuracy,) = [t for t in status["triggers"] if t["name"] == "accuracy"]
    assert accuracy.get("value") is None, accuracy
    assert "no window judged yet" in accuracy["message"], accuracy
    assert _retrains(kubeconfig, ns) == []

    post(late)
    wait_for(lambda: _retrains(kubeconfig, ns), timeout=120, what="the retrain")
    status = _evaluations(kubeconfig, ns, 3)
    assert len(_retrains(kubeconfig, ns)) == 1
    (accuracy,) = [t for t in status["triggers"] if t["name"] == "accuracy"]
    assert accuracy["value"] < 0.8
    assert accuracy["coverage"] >= 0.8
    assert accuracy["samples"] >= 160
