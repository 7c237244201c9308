"""The pod contract: every pod the operator builds speaks the language its program reads.

Aspects, for each workload (trainer, validator, audit, server) rendered by its
builder: the container is the contract's; every variable it sets is one its program
reads (a field of its settings class, or one the contract lists) and the class
parses them back to what the builder meant; every path it mounts is the contract's;
the termination message goes where the program writes it. Every pod the operator builds,
the evaluator's too, runs as the images' user by default and with exactly the ids of the
operator's `WorkloadSecurityContext` otherwise: none when they are unset (OpenShift), while
``runAsNonRoot`` and seccomp stay.
"""

from __future__ import annotations

import importlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from mlops_operator.api.gates import Gates
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, WorkloadSecurityContext
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.audit.entry import make_entry
from mlops_operator.podcontract import (
    ARTIFACT_MOUNT,
    DATASET_MOUNT_ROOT,
    ENV_PREFIX,
    IMAGE_USER,
    LABELS_MOUNT,
    PAYLOAD_LOG_MOUNT,
    SCRATCH_MOUNT,
    TERMINATION_MESSAGE_PATH,
    WORKLOADS,
    Workload,
)
from mlops_operator.resources.audit import audit_job
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.labels import evaluator_deployment
from mlops_operator.resources.modeldeployment import Forwarding, serving_deployment
from mlops_operator.resources.trainingjob import build_job
from mlops_operator.resources.validation import validation_job
from mlops_operator.runtime.settings import WORKLOAD_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ArtifactStorage()


def _trainer(security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "manifests/examples/trainingjob.yaml").read_text())
    doc["metadata"] |= {"namespace": "ml", "uid": "u-1", "generation": 1}
    doc["spec"]["dataset"] = {"pvc": {"claimName": "data", "path": "train.csv"}}
    doc["spec"].pop("resources", None)
    return build_job(
        TrainingJob.model_validate(doc), STORAGE, "t:1", defaults=WORKLOAD_DEFAULTS["trainer"],
        security=security,
    )  # fmt: skip


def _validator(security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY) -> dict[str, Any]:
    version = ModelVersion.model_validate(
        {"metadata": {"name": "iris-v2", "namespace": "ml", "uid": "u-2"},
         "spec": {"modelName": "iris", "version": 2,
                  "artifact": {"uri": "pvc://mlops-artifacts/m/k", "sha256": "a" * 64,
                               "sizeBytes": 10, "opset": 17},
                  "signature": {"task": "classification",
                                "features": [{"name": "x", "kind": "numeric"}], "classes": ["a"]},
                  "metrics": {"accuracy": 0.9},
                  "primaryMetric": {"name": "accuracy", "value": 0.9}}}
    )  # fmt: skip
    return validation_job(
        version, image="t:1", storage=STORAGE, gates=Gates(),
        champions={"iris-v1": "pvc://mlops-artifacts/m/old"},
        defaults=WORKLOAD_DEFAULTS["validator"], security=security,
    )  # fmt: skip


def _audit(security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY) -> dict[str, Any]:
    entry = make_entry(kind="ModelDeployment", namespace="ml", name="iris", uid="u",
                       time=datetime(2026, 1, 1, tzinfo=UTC), action="Deploy", version=1,
                       reason="RolloutStarted")  # fmt: skip
    return audit_job([entry], key="audit/ml/modeldeployments/iris.jsonl", model="iris",
                     image="t:1", storage=STORAGE, defaults=WORKLOAD_DEFAULTS["audit"],
                     security=security)  # fmt: skip


def _deployment(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {"metadata": {"name": "iris", "namespace": "ml", "uid": "u-3"},
         "spec": {"modelName": "iris", "payloadLogging": {"enabled": True}, **spec}}
    )  # fmt: skip


def _server(security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY) -> dict[str, Any]:
    return serving_deployment(
        _deployment(),
        version=1, model_version="iris-v1", artifact_uri="pvc://mlops-artifacts/m/k", artifact_sha256="0" * 64,
        replicas=1, traffic=True, image="s:1", storage=STORAGE,
        mirror=Forwarding("http://iris-v2.ml.svc.cluster.local:80", 50),
        canary=Forwarding("http://iris-v3.ml.svc.cluster.local:80", 10),
        defaults=WORKLOAD_DEFAULTS["server"], security=security,
    )  # fmt: skip


def _evaluator(security: WorkloadSecurityContext) -> dict[str, Any]:
    mdep = _deployment(feedback={})
    return evaluator_deployment(mdep, image="s:1", storage=STORAGE, security=security)


BUILT = {"trainer": _trainer, "validator": _validator, "audit": _audit, "server": _server}
EVERY_POD = {**BUILT, "evaluator": _evaluator}


def _settings_class(workload: Workload) -> type[BaseSettings] | None:
    if workload.settings is None:
        return None
    module, name = workload.settings.split(":")
    found: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return found


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
def test_every_pod_speaks_its_programs_language(
    workload: Workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = BUILT[workload.name]()["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == workload.container]
    names = [e["name"] for e in container["env"]]
    # A second entry of a name hides the first (the API server only warns).
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    env = {e["name"]: e["value"] for e in container["env"]}
    settings = _settings_class(workload)
    read = {f"{ENV_PREFIX}{name.upper()}" for name in (settings.model_fields if settings else {})}
    assert set(env) <= read | set(workload.env), set(env) - read - set(workload.env)
    if settings is not None:
        for name in list(os.environ):
            if name.startswith(ENV_PREFIX):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        parsed = settings()
        dumped = parsed.model_dump(mode="json")
        for name in read & set(env):
            field = name.removeprefix(ENV_PREFIX).lower()
            assert dumped[field] is not None, name
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    allowed = (SCRATCH_MOUNT, ARTIFACT_MOUNT, DATASET_MOUNT_ROOT, PAYLOAD_LOG_MOUNT, LABELS_MOUNT)
    assert all(any(m == a or m.startswith(f"{a}/") for a in allowed) for m in mounts), mounts
    assert container.get("terminationMessagePath", TERMINATION_MESSAGE_PATH) == (
        TERMINATION_MESSAGE_PATH
    )


_IDS = ("runAsUser", "runAsGroup", "fsGroup")


@pytest.mark.parametrize(
    ("security", "ids"),
    [
        (DEFAULT_WORKLOAD_SECURITY, dict.fromkeys(_IDS, IMAGE_USER)),
        (WorkloadSecurityContext(run_as_user=None, run_as_group=None, fs_group=None), {}),
        (
            WorkloadSecurityContext(run_as_user=1000680000, run_as_group=None, fs_group=1000680001),
            {"runAsUser": 1000680000, "fsGroup": 1000680001},
        ),
    ],
    ids=["default", "unset", "assigned"],
)
@pytest.mark.parametrize("workload", EVERY_POD)
def test_every_pod_runs_with_the_operators_ids_and_stays_non_root(
    workload: str, security: WorkloadSecurityContext, ids: dict[str, int]
) -> None:
    pod = EVERY_POD[workload](security)["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert {key: context[key] for key in _IDS if key in context} == ids
    assert context["runAsNonRoot"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        # An id at the container's level would override the pod's (and the platform's).
        assert not set(_IDS) & set(container["securityContext"]), container["name"]
        assert container["securityContext"]["runAsNonRoot"] is True
