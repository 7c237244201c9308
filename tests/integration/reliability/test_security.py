"""Security: generated pods meet the restricted Pod Security Standard; hostile specs go nowhere.

- The namespace enforces ``restricted`` for real (a plain pod is refused), and
  the pod templates the operator generates — the trainer Job's (taken from
  the Job the operator created), the validation Job's and the inference
  server Deployment's (from their builders) — are admitted by the API server.
- A TrainingJob cannot name an arbitrary import (the estimator is an enum), a
  host path, a service account, a command, or a dataset path outside its
  claim: strict validation refuses each naming the field, and without strict
  validation the unknown fields are pruned before the operator sees them, so
  the trainer pod has no host path, the default service account and no token.

Model artifacts (a pickle renamed ``.onnx``, a wrong sha256, a truncated file,
a signature mismatch) are refused before serving in
``tests/unit/serving/test_loading.py``; request size and row limits in
``tests/unit/serving/test_validation.py`` and ``test_inference_abuse.py`` here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.gates import Gates
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.modeldeployment import serving_deployment
from mlops_operator.resources.validation import validation_job
from tests.integration.operator.conftest import REPO, RunningOperator
from tests.integration.trainingjob.conftest import apply, training_job
from tests.kube import get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

STORAGE = ArtifactStorage(claim="mlops-artifacts", uri=None)
IMAGE = "mlops-operator/server:test"


def _as_pod(namespace: str, name: str, template: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": template["spec"],
    }


def _admission(kubeconfig: Path, pod: dict[str, Any]) -> str:
    """The API server's refusal of `pod` (server-side dry-run), or "" when admitted."""
    proc = kubectl(
        kubeconfig, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(pod), check=False
    )
    return proc.stderr.strip() if proc.returncode else ""


def _example(name: str, namespace: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (REPO / "manifests" / "examples" / "iris" / name).read_text()
    )
    # Builders set owner references, which need the uid the API server would have given.
    document["metadata"] |= {"namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"}
    return document


def _model_version(namespace: str) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "apiVersion": "mlops.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": "iris-v1", "namespace": namespace, "uid": "u"},
            "spec": {
                "modelName": "iris",
                "version": 1,
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
    )


def test_generated_pods_are_admitted_under_the_restricted_standard(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    labels = get_json(kubeconfig, "namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    plain = {"spec": {"containers": [{"name": "c", "image": "mlops-operator/python"}]}}
    assert "violates PodSecurity" in _admission(kubeconfig, _as_pod(namespace, "plain", plain))

    apply(kubeconfig, training_job(namespace, "iris-held", suspend=True))
    job = wait_for(
        lambda: get_json(kubeconfig, "jobs", "-n", namespace)["items"],
        timeout=60,
        what="the trainer Job",
    )[0]
    mdep = ModelDeployment.model_validate(_example("modeldeployment.yaml", namespace))
    templates = {
        "trainer": job["spec"]["template"],
        "validator": validation_job(
            _model_version(namespace), image=IMAGE, storage=STORAGE, gates=Gates(), champions={}
        )["spec"]["template"],
        "server": serving_deployment(
            mdep,
            version=1,
            model_version="iris-v1",
            artifact_uri="pvc://mlops-artifacts/models/iris/x",
            artifact_sha256="0" * 64,
            replicas=1,
            traffic=True,
            image=IMAGE,
            storage=STORAGE,
        )["spec"]["template"],
    }
    refusals = {
        name: _admission(kubeconfig, _as_pod(namespace, f"{name}-probe", template))
        for name, template in templates.items()
    }
    assert refusals == {name: "" for name in templates}


HOSTILE_SPECS = [
    ({"estimator": {"name": "os.system"}}, "spec.estimator.name", "Unsupported value"),
    ({"serviceAccountName": "admin"}, "spec.serviceAccountName", "unknown field"),
    ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "spec.volumes", "unknown field"),
    ({"command": ["python", "-c", "import os"]}, "spec.command", "unknown field"),
    (
        {"dataset": {"pvc": {"claimName": "data", "path": "ok/../../../etc/passwd"}}},
        "spec.dataset.pvc.path",
        "`path` must not contain `..`",
    ),
    (
        {"dataset": {"pvc": {"claimName": "data", "path": "/etc/passwd"}}},
        "spec.dataset.pvc.path",
        "should match",
    ),
]


@pytest.mark.parametrize(("spec", "field", "message"), HOSTILE_SPECS)
def test_a_hostile_training_job_is_refused_naming_the_field(
    kubeconfig: Path,
    namespace: str,
    crds: list[Path],
    spec: dict[str, Any],
    field: str,
    message: str,
) -> None:
    document = training_job(namespace, "hostile", suspend=True, **spec)
    proc = kubectl(
        kubeconfig,
        "create",
        "--validate=strict",
        "--dry-run=server",
        "-f",
        "-",
        stdin=json.dumps(document),
        check=False,
    )
    assert proc.returncode != 0
    assert field in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_unknown_fields_are_pruned_before_the_operator_sees_them(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    extras = {
        "serviceAccountName": "admin",
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "hostNetwork": True,
    }
    document = training_job(namespace, "sneaky", suspend=True, **extras)
    kubectl(kubeconfig, "create", "--validate=false", "-f", "-", stdin=json.dumps(document))

    stored = get_json(kubeconfig, "trainingjob", "sneaky", "-n", namespace)
    assert not set(extras) & set(stored["spec"]), stored["spec"]
    job = wait_for(
        lambda: get_json(kubeconfig, "jobs", "-n", namespace)["items"],
        timeout=60,
        what="the trainer Job",
    )[0]
    pod = job["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod
    assert not pod.get("hostNetwork")
    assert pod["automountServiceAccountToken"] is False
    assert not [v for v in pod["volumes"] if "hostPath" in v], pod["volumes"]
