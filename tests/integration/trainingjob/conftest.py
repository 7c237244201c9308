"""Fixtures of the TrainingJob controller tests: a restricted namespace, the operator, helpers.

Each test gets a namespace that enforces the ``restricted`` Pod Security
Standard (so the API server itself refuses a trainer pod that does not meet
it) and its own operator subprocess watching only that namespace.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator.conftest import (  # noqa: F401  # `crds` is a fixture
    REPO,
    RunningOperator,
    crds,
    operator_for_test,
)
from tests.kube import delete_namespace, get_json, kubectl, wait_for

EXAMPLE = REPO / "manifests" / "examples" / "iris" / "trainingjob.yaml"
TRAINING_TIMEOUT = 240


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard, deleted afterwards."""
    name = f"tj-it-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", name)
    kubectl(kubeconfig, "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    yield name
    delete_namespace(kubeconfig, name)


@pytest.fixture
def operator(
    kubeconfig: Path, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[RunningOperator]:
    """The operator watching `namespace` (CRDs applied first); stopped after the test."""
    request.getfixturevalue("crds")
    with operator_for_test(kubeconfig, namespace, tmp_path / "operator.log") as running:
        yield running


def kill(running: RunningOperator) -> None:
    """SIGKILL: no handler finishes, nothing is cleaned up."""
    running.process.send_signal(signal.SIGKILL)
    running.process.wait(timeout=30)


def training_job(namespace: str, name: str = "iris-initial", **spec: Any) -> dict[str, Any]:
    """The iris example TrainingJob in `namespace`, renamed and with `spec` overrides."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] |= {"name": name, "namespace": namespace}
    doc["spec"] |= spec
    return doc


def apply(kubeconfig: Path, doc: dict[str, Any]) -> None:
    """kubectl apply one object."""
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))


def finished(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any] | None:
    """The TrainingJob once its phase is Succeeded or Failed, else None."""
    obj: dict[str, Any] = get_json(kubeconfig, "trainingjob", name, "-n", namespace)
    if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return obj
    return None


def wait_finished(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    """Wait for the TrainingJob to succeed or fail; the object."""
    return wait_for(
        lambda: finished(kubeconfig, namespace, name),
        timeout=TRAINING_TIMEOUT,
        what=f"TrainingJob {name} to finish",
    )


def items(kubeconfig: Path, namespace: str, resource: str, *selector: str) -> list[dict[str, Any]]:
    """The objects of `resource` in `namespace` (optionally ``-l`` selected)."""
    found: list[dict[str, Any]] = get_json(kubeconfig, resource, "-n", namespace, *selector)[
        "items"
    ]
    return found


def trainer_pods(name: str) -> tuple[str, str]:
    """The ``-l`` selector of TrainingJob `name`'s trainer pods (its Job's name ends in its uid)."""
    return ("-l", f"mlops.dev/training-job={name},app.kubernetes.io/component=trainer")


def trainer_job(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    """The trainer Job of TrainingJob `name` (named after it and its uid; found by label)."""
    (job,) = items(kubeconfig, namespace, "jobs", *trainer_pods(name))
    return job


def our_events(kubeconfig: Path, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events the operator posted about TrainingJob `name`."""
    return [
        e
        for e in items(kubeconfig, namespace, "events")
        if e["involvedObject"].get("kind") == "TrainingJob"
        and e["involvedObject"].get("name") == name
        and e.get("source", {}).get("component", e.get("reportingComponent")) == "mlops-operator"
    ]
