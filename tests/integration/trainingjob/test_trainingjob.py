"""The TrainingJob controller on the local cluster, with the real trainer in a restricted pod.

Aspects: the iris example trains into a ModelVersion whose lineage and metrics
match the model card the trainer wrote, with the Job owned, released (TTL) once
recorded, and Events for the start and the result, and `mlops reproduce`
re-creates it; a bad parameter fails at once with the trainer's sentence and
no ModelVersion; deleting a TrainingJob deletes its Job and pods; SIGKILL of
the operator between Job and ModelVersion, with two TrainingJobs of one model
finishing while it is down, still yields one Job and one ModelVersion each,
with distinct version numbers, and a further restart adds nothing; a version
made just before a crash is found by the TrainingJob's uid, not made again; a
suspended TrainingJob holds its Job and runs once resumed; a TrainingJob deleted (its Job
orphaned) and created again under its name trains in a Job of its own into exactly one new
version, numbers gapless, the orphan untouched; an image outside the allowed prefixes is
refused with ImageNotAllowed and no Job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops_operator.runtime.settings import PROJECT_IMAGE_PREFIX
from tests.integration.operator.conftest import RunningOperator, start_operator
from tests.integration.trainingjob.conftest import (
    apply,
    items,
    kill,
    our_events,
    trainer_job,
    trainer_pods,
    training_job,
    wait_finished,
)
from tests.kube import get_json, gone, kubectl, wait_for

MLOPS = Path(sys.executable).with_name("mlops")
# Other controllers run Jobs too (e.g. validation of a ModelVersion): count the trainers only.
TRAINERS = ("-l", "app.kubernetes.io/component=trainer")


def _model_card(kubeconfig: Path, namespace: str, artifact_uri: str) -> dict[str, Any]:
    """The model card behind a ``pvc://claim/key`` URI, read from the claim's local volume."""
    parts = urlsplit(artifact_uri)
    claim = get_json(kubeconfig, "pvc", parts.netloc, "-n", namespace)
    volume = get_json(kubeconfig, "pv", claim["spec"]["volumeName"])
    root = Path(volume["spec"]["hostPath"]["path"])
    card: dict[str, Any] = json.loads(
        (root / parts.path.strip("/") / "model-card.json").read_text()
    )
    return card


def test_iris_trains_into_a_version_matching_its_model_card(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, training_job(namespace))

    trained = wait_finished(kubeconfig, namespace, "iris-initial")
    status = trained["status"]
    assert status["phase"] == "Succeeded", status
    assert status["modelVersion"] == "iris-v1"
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("True", "Trained")
    assert status["observedGeneration"] == trained["metadata"]["generation"]
    assert status["startTime"] <= status["completionTime"]

    version = get_json(kubeconfig, "modelversion", "iris-v1", "-n", namespace)
    spec = version["spec"]
    assert "ownerReferences" not in version["metadata"]
    assert (
        version["metadata"]["annotations"]["mlops.dev/training-job-uid"]
        == (trained["metadata"]["uid"])
    )
    card = _model_card(kubeconfig, namespace, spec["artifact"]["uri"])
    assert spec["metrics"] == card["metrics"] == status["metrics"]
    assert spec["artifact"]["sha256"] == card["artifact"]["sha256"]
    assert spec["artifact"]["sizeBytes"] == card["artifact"]["size_bytes"]
    lineage = spec["lineage"]
    assert lineage["dataset"] == {
        "uri": card["lineage"]["dataset_uri"],
        "sha256": card["lineage"]["dataset_sha256"],
        "rows": card["lineage"]["dataset_rows"],
        "columns": card["lineage"]["dataset_columns"],
    }
    assert lineage["dataset"]["sha256"] == status["datasetSha256"]
    assert (lineage["estimator"], lineage["seed"], lineage["testSize"]) == (
        card["lineage"]["estimator"],
        card["lineage"]["seed"],
        card["lineage"]["test_size"],
    )
    assert lineage["params"] == {"max_iter": 500}
    assert lineage["trainingJob"] == "iris-initial"
    assert card["lineage"]["training_job"] == f"{namespace}/iris-initial"
    assert lineage["libraries"] == card["lineage"]["libraries"]
    assert [f["name"] for f in spec["signature"]["features"]] == [
        f["name"] for f in card["signature"]["features"]
    ]
    assert spec["targetDeployment"] == "iris"
    assert spec["gates"]["metrics"] == [{"metric": "accuracy", "op": ">=", "threshold": 0.9}]

    def released() -> dict[str, Any] | None:
        # The Job gets its TTL once the outcome is recorded, in a request after the status write.
        job: dict[str, Any] = trainer_job(kubeconfig, namespace, "iris-initial")
        return job if job["spec"].get("ttlSecondsAfterFinished") is not None else None

    job = wait_for(released, timeout=30, what="the Job's TTL")
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("TrainingJob", trained["metadata"]["uid"])
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600

    def reasons() -> set[str]:
        return {e["reason"] for e in our_events(kubeconfig, namespace, "iris-initial")}

    wait_for(lambda: reasons() >= {"Started", "Trained"}, timeout=30, what="the Events")
    assert reasons() == {"Started", "Trained"}

    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    reproduced = subprocess.run(
        [str(MLOPS), "reproduce", "iris-v1", "-n", namespace],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "onnx sha256" in reproduced.stdout
    assert "DIFFERS" not in reproduced.stdout

    # ttlSecondsAfterFinished stays editable once finished: the kept Job follows it.
    kept_job = trainer_job(kubeconfig, namespace, "iris-initial")["metadata"]["name"]
    kubectl(kubeconfig, "-n", namespace, "patch", "trainingjob", "iris-initial", "--type=merge",
            "-p", json.dumps({"spec": {"ttlSecondsAfterFinished": 0}}))  # fmt: skip
    wait_for(lambda: gone(kubeconfig, "-n", namespace, "job", kept_job),
             timeout=120, what="the trainer Job removed by its new TTL")  # fmt: skip
    kept = get_json(kubeconfig, "trainingjob", "iris-initial", "-n", namespace)
    assert kept["status"]["phase"] == "Succeeded"
    get_json(kubeconfig, "modelversion", "iris-v1", "-n", namespace)


def test_a_bad_parameter_fails_with_the_trainers_sentence_and_no_version(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    doc = training_job(
        namespace,
        "iris-bad",
        estimator={"name": "LogisticRegression", "params": {"max_iterations": 500}},
        backoffLimit=3,
    )
    apply(kubeconfig, doc)

    status = wait_finished(kubeconfig, namespace, "iris-bad")["status"]
    assert status["phase"] == "Failed"
    expected = "LogisticRegression has no parameter 'max_iterations'"
    assert status["message"].startswith(expected), status["message"]
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("False", "TrainingFailed")
    assert succeeded["message"] == status["message"]
    assert "modelVersion" not in status
    assert items(kubeconfig, namespace, "modelversions") == []
    # The pod failure policy stops at the first deterministic failure despite backoffLimit 3.
    assert len(items(kubeconfig, namespace, "pods", *trainer_pods("iris-bad"))) == 1
    warnings = wait_for(
        lambda: [
            e for e in our_events(kubeconfig, namespace, "iris-bad") if e["type"] == "Warning"
        ],
        timeout=30,
        what="the failure Event",
    )
    assert warnings[0]["reason"] == "TrainingFailed"
    assert warnings[0]["message"].startswith(expected)


def test_deleting_a_training_job_removes_its_job_and_pods(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, training_job(namespace, "iris-doomed"))
    selector = ("-l", "mlops.dev/training-job=iris-doomed")
    wait_for(
        lambda: items(kubeconfig, namespace, "pods", *selector),
        timeout=120,
        what="the trainer pod",
    )

    kubectl(kubeconfig, "delete", "trainingjob", "iris-doomed", "-n", namespace)

    wait_for(
        lambda: (
            not items(kubeconfig, namespace, "jobs", *selector)
            and not items(kubeconfig, namespace, "pods", *selector)
        ),
        timeout=120,
        what="the garbage collector to delete the Job and its pods",
    )


def test_a_training_job_recreated_under_its_name_gets_one_version_of_its_own(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    """GitOps deletes and re-creates objects under one name: the earlier TrainingJob's Job, here
    orphaned so that it stays for good, is neither taken as the new one's nor touched."""
    apply(kubeconfig, training_job(namespace, "iris-again"))
    first = wait_finished(kubeconfig, namespace, "iris-again")
    assert (first["status"]["phase"], first["status"]["modelVersion"]) == ("Succeeded", "iris-v1")
    kubectl(kubeconfig, "delete", "trainingjob", "iris-again", "-n", namespace, "--cascade=orphan")
    # Both writes to the old Job done before it is read: the garbage collector's (owner gone)
    # and the operator's own release (its TTL, patched just after the status it waited for).
    old = wait_for(
        lambda: (
            (j := trainer_job(kubeconfig, namespace, "iris-again"))
            and not j["metadata"].get("ownerReferences")
            and j["spec"].get("ttlSecondsAfterFinished") is not None
            and j
        ),
        timeout=60,
        what="the garbage collector to orphan the old Job, released by the operator",
    )

    apply(kubeconfig, training_job(namespace, "iris-again"))
    second = wait_finished(kubeconfig, namespace, "iris-again")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    assert (second["status"]["phase"], second["status"]["modelVersion"]) == (
        "Succeeded",
        "iris-v2",
    )
    versions = items(kubeconfig, namespace, "modelversions")
    made_by = {
        v["spec"]["version"]: v["metadata"]["annotations"]["mlops.dev/training-job-uid"]
        for v in versions
    }
    # Gapless, and exactly one version for each run.
    assert made_by == {1: first["metadata"]["uid"], 2: second["metadata"]["uid"]}
    jobs = {j["metadata"]["uid"]: j for j in items(kubeconfig, namespace, "jobs", *TRAINERS)}
    assert len(jobs) == 2
    kept = jobs[old["metadata"]["uid"]]
    assert kept["metadata"]["resourceVersion"] == old["metadata"]["resourceVersion"]
    (new,) = [j for j in jobs.values() if j["metadata"]["uid"] != old["metadata"]["uid"]]
    owner = new["metadata"]["ownerReferences"][0]
    assert (owner["uid"], owner["controller"]) == (second["metadata"]["uid"], True)
    assert second["status"]["jobName"] == new["metadata"]["name"] != old["metadata"]["name"]


def test_an_image_outside_the_allowed_prefixes_is_refused_with_a_reason(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, training_job(namespace, "iris-foreign", image="docker.io/evil/trainer:1"))
    failed = wait_finished(kubeconfig, namespace, "iris-foreign")["status"]
    assert failed["phase"] == "Failed"
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["Succeeded"]["reason"] == "ImageNotAllowed"
    assert "image 'docker.io/evil/trainer:1' is not allowed" in conditions["Succeeded"]["message"]
    assert f"'{PROJECT_IMAGE_PREFIX}'" in conditions["Succeeded"]["message"]
    assert items(kubeconfig, namespace, "jobs", *trainer_pods("iris-foreign")) == []
    wait_for(
        lambda: (
            "ImageNotAllowed"
            in {e["reason"] for e in our_events(kubeconfig, namespace, "iris-foreign")}
        ),
        timeout=30,
        what="the Warning Event",
    )


def _complete(kubeconfig: Path, namespace: str, name: str) -> bool:
    job = trainer_job(kubeconfig, namespace, name)
    conditions = job.get("status", {}).get("conditions", [])
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


def _reconciles(running: RunningOperator) -> float:
    prefix = 'controller_runtime_reconcile_total{controller="trainingjob",result="success"} '
    for line in running.metrics().splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def test_sigkill_between_job_and_version_yields_one_of_each(
    operator: RunningOperator, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    names = ("iris-a", "iris-b")
    for name in names:
        apply(kubeconfig, training_job(namespace, name))
    wait_for(
        lambda: len(items(kubeconfig, namespace, "jobs", *TRAINERS)) == len(names),
        timeout=60,
        what="both trainer Jobs",
    )
    kill(operator)
    assert items(kubeconfig, namespace, "modelversions") == []

    wait_for(
        lambda: all(_complete(kubeconfig, namespace, name) for name in names),
        timeout=240,
        what="both Jobs to complete without the operator",
    )

    restarted = start_operator(kubeconfig, namespace, tmp_path / "restarted.log")
    try:
        statuses = {name: wait_finished(kubeconfig, namespace, name)["status"] for name in names}
    finally:
        kill(restarted)
    assert {s["phase"] for s in statuses.values()} == {"Succeeded"}
    assert sorted(s["modelVersion"] for s in statuses.values()) == ["iris-v1", "iris-v2"]

    again = start_operator(kubeconfig, namespace, tmp_path / "again.log")
    try:
        wait_for(lambda: _reconciles(again) >= len(names), timeout=60, what="the resume pass")
    finally:
        again.stop()
    versions = items(kubeconfig, namespace, "modelversions")
    assert len(versions) == len(names)
    produced = {v["spec"]["lineage"]["trainingJob"]: v["metadata"]["name"] for v in versions}
    assert produced == {name: statuses[name]["modelVersion"] for name in names}
    assert sorted(v["spec"]["version"] for v in versions) == [1, 2]
    assert len(items(kubeconfig, namespace, "jobs", *TRAINERS)) == len(names)


def test_a_version_made_before_a_crash_is_found_not_made_again(
    operator: RunningOperator, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    apply(kubeconfig, training_job(namespace, "iris-c"))
    wait_for(lambda: items(kubeconfig, namespace, "jobs", *TRAINERS), timeout=60, what="the Job")
    kill(operator)
    wait_for(lambda: _complete(kubeconfig, namespace, "iris-c"), timeout=240, what="the Job")
    # What a crash right after creating the ModelVersion leaves: the version, no status yet.
    uid = get_json(kubeconfig, "trainingjob", "iris-c", "-n", namespace)["metadata"]["uid"]
    version = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": "iris-v7",
            "namespace": namespace,
            "labels": {"mlops.dev/model": "iris", "mlops.dev/training-job": "iris-c"},
            "annotations": {"mlops.dev/training-job-uid": uid},
        },
        "spec": {
            "modelName": "iris",
            "version": 7,
            "artifact": {
                "uri": "pvc://mlops-artifacts/models/iris/x",
                "sha256": "0" * 64,
                "sizeBytes": 1,
                "opset": 17,
            },
            "metrics": {"accuracy": 0.9},
            "primaryMetric": {"name": "accuracy", "value": 0.9},
        },
    }
    apply(kubeconfig, version)

    restarted = start_operator(kubeconfig, namespace, tmp_path / "restarted.log")
    try:
        status = wait_finished(kubeconfig, namespace, "iris-c")["status"]
    finally:
        restarted.stop()
    assert (status["phase"], status["modelVersion"]) == ("Succeeded", "iris-v7")
    assert [v["metadata"]["name"] for v in items(kubeconfig, namespace, "modelversions")] == [
        "iris-v7"
    ]


def test_a_suspended_training_job_waits_and_then_runs(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, training_job(namespace, "iris-held", suspend=True))

    def suspended() -> bool:
        obj = get_json(kubeconfig, "trainingjob", "iris-held", "-n", namespace)
        conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}
        held = conditions.get("Suspended")
        return held is not None and held["status"] == "True"

    wait_for(suspended, timeout=60, what="the Suspended condition")
    assert trainer_job(kubeconfig, namespace, "iris-held")["spec"]["suspend"] is True
    assert items(kubeconfig, namespace, "pods", *trainer_pods("iris-held")) == []

    kubectl(
        kubeconfig,
        "patch",
        "trainingjob",
        "iris-held",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"suspend": false}}',
    )

    trained = wait_finished(kubeconfig, namespace, "iris-held")
    assert trained["status"]["phase"] == "Succeeded"
    assert trained["status"]["observedGeneration"] == trained["metadata"]["generation"] == 2
    held = next(c for c in trained["status"]["conditions"] if c["type"] == "Suspended")
    assert held["status"] == "False"
