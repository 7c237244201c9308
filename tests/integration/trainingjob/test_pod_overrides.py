"""Pod overrides reach the trainer, validator and server pods the API server runs.

A TrainingJob with ``podOverrides`` and ``validatorPodOverrides`` and a
ModelDeployment with ``podOverrides`` (nodeSelector, tolerations, resources, a
label, an env var): the pods themselves, as the API server stored and the
scheduler placed them, carry every override merged over the operator's defaults
(a resource the object does not name keeps the default), and still meet the
``restricted`` Pod Security Standard the namespace enforces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_operator.runtime.settings import WORKLOAD_DEFAULTS
from tests.integration.operator.conftest import RunningOperator
from tests.integration.trainingjob.conftest import (
    apply,
    items,
    trainer_pods,
    training_job,
    wait_finished,
)
from tests.kube import get_json, kubectl, wait_for

NODE = {"kubernetes.io/os": "linux"}
TOLERATION = {"key": "mlops.dev/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _overrides(cpu: str, **extra: Any) -> dict[str, Any]:
    return {
        "nodeSelector": NODE,
        "tolerations": [TOLERATION],
        "resources": {"requests": {"cpu": cpu}},
        "labels": {"team": "risk"},
        "env": [{"name": "TEAM", "value": "risk"}],
        **extra,
    }


def _pod(kubeconfig: Path, namespace: str, *selector: str) -> dict[str, Any]:
    pods = wait_for(
        lambda: [p for p in items(kubeconfig, namespace, "pods", "-l", ",".join(selector))
                 if p["spec"].get("nodeName")],
        timeout=180, what=f"a scheduled pod with {selector}",
    )  # fmt: skip
    found: dict[str, Any] = pods[0]
    return found


def _check(pod: dict[str, Any], container: str, cpu: str, workload: str) -> None:
    spec = pod["spec"]
    assert spec["nodeSelector"] == NODE
    assert TOLERATION in spec["tolerations"]
    assert pod["metadata"]["labels"]["team"] == "risk"
    (main,) = [c for c in spec["containers"] if c["name"] == container]
    defaults = WORKLOAD_DEFAULTS[workload].resources
    assert defaults is not None
    assert defaults.requests
    assert defaults.limits
    # The object's CPU request; the operator's defaults for the rest.
    assert main["resources"]["requests"] == {"cpu": cpu, "memory": defaults.requests["memory"]}
    assert main["resources"]["limits"] == {"memory": defaults.limits["memory"]}
    assert {"name": "TEAM", "value": "risk"} in main["env"]
    assert main["securityContext"]["allowPrivilegeEscalation"] is False


def test_overrides_reach_the_trainer_validator_and_server_pods(
    operator: RunningOperator, kubeconfig: Path, namespace: str
) -> None:
    apply(
        kubeconfig,
        training_job(
            namespace,
            podOverrides=_overrides("150m"),
            validatorPodOverrides=_overrides("120m"),
        ),
    )
    trained = wait_finished(kubeconfig, namespace, "iris-initial")
    assert trained["status"]["phase"] == "Succeeded", trained["status"]
    _check(
        _pod(kubeconfig, namespace, trainer_pods("iris-initial")[1]),
        "trainer", "150m", "trainer",
    )  # fmt: skip
    version = get_json(kubeconfig, "modelversion", "iris-v1", "-n", namespace)
    assert version["spec"]["validatorPodOverrides"]["resources"] == {"requests": {"cpu": "120m"}}
    _check(
        _pod(kubeconfig, namespace, "batch.kubernetes.io/job-name=iris-v1-validate"),
        "validator", "120m", "validator",
    )  # fmt: skip

    deployment = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": namespace},
        "spec": {"modelName": "iris", "podOverrides": _overrides("110m")},
    }
    apply(kubeconfig, deployment)
    kubectl(kubeconfig, "-n", namespace, "wait", "--for=condition=Ready", "mdep/iris",
            "--timeout=240s", timeout=260)  # fmt: skip
    _check(
        _pod(kubeconfig, namespace, "mlops.dev/deployment=iris", "mlops.dev/version=1"),
        "server", "110m", "server",
    )  # fmt: skip
