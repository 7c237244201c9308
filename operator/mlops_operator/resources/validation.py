"""The validation Job of a ModelVersion: the trainer image running ``python -m mlops_operator.validator``.

One Job per ModelVersion, named ``<mv>-validate`` (shortened with a hash when
long), owned by the ModelVersion, never retried (a failed check is a result,
not a flake). The gates (the version's own merged with its deployments') and
the champions it compares with are fixed when the Job is created and recorded in
its `GATES_ANNOTATION` and `CHAMPIONS_ANNOTATION`, so the operator judges exactly
those gates against exactly the versions that were measured, even after a restart
or a change of a deployment meanwhile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from mlops_operator.api.gates import Gates, MetricGate
from mlops_operator.api.metadata import CHAMPIONS_ANNOTATION, GATES_ANNOTATION
from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, PodOverrides, WorkloadSecurityContext
from mlops_operator.podcontract import TERMINATION_MESSAGE_PATH
from mlops_operator.resources.common import (
    ArtifactStorage,
    labels,
    owner_reference,
    resolve_artifact_uri,
    restricted_job,
    scratch_mount,
    scratch_volume,
)
from mlops_operator.validator.report import ValidationReport
from mlops_operator.validator.settings import ValidatorSettings

__all__ = [
    "CONTAINER",
    "read_report",
    "recorded_champions",
    "recorded_gates",
    "validation_job",
    "validation_job_name",
]

CONTAINER = "validator"
_SUFFIX = "-validate"
_MAX_NAME = 63  # the Job's name becomes a label value on its pods


def validation_job_name(model_version: str) -> str:
    """The Job's deterministic name."""
    name = model_version + _SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(model_version.encode()).hexdigest()[:8]
    return f"{model_version[: _MAX_NAME - len(_SUFFIX) - 9].rstrip('-.')}-{digest}{_SUFFIX}"


def validation_job(
    mv: ModelVersion,
    *,
    image: str,
    storage: ArtifactStorage,
    gates: Gates,
    champions: Mapping[str, str],
    deadline_seconds: int = 600,
    defaults: PodOverrides | None = None,
    security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY,
) -> dict[str, Any]:
    """The Job validating `mv` for `gates`; `champions` maps champion ModelVersion names to
    artifact URIs; `defaults`, then the version's `validatorPodOverrides`, go over its pod,
    which runs with `security`'s ids."""
    spec = mv.spec
    signature = spec.signature
    settings = ValidatorSettings(
        model_uri=resolve_artifact_uri(spec.artifact.uri),
        expected_sha256=spec.artifact.sha256,
        expected_size_bytes=spec.artifact.size_bytes,
        expected_opset=spec.artifact.opset,
        expected_features=[f.name for f in signature.features] if signature else None,
        expected_classes=signature.classes if signature else None,
        champions={name: resolve_artifact_uri(uri) for name, uri in champions.items()},
        store_uri=storage.store_uri,
        termination_message_path=Path(TERMINATION_MESSAGE_PATH),
    )
    job_labels = labels(spec.model_name, component="validator", model_version=mv.name)
    container = {
        "name": CONTAINER,
        "image": image,
        "command": ["python", "-m", "mlops_operator.validator"],
        "env": settings.to_env(),  # its settings carry the store (MLOPS_STORE_URI)
        **storage.env_from_field(),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "volumeMounts": [scratch_mount(), *storage.mounts(read_only=True)],
    }
    metadata = {
        "name": validation_job_name(mv.name),
        "namespace": mv.namespace,
        "labels": job_labels,
        "annotations": {
            GATES_ANNOTATION: gates.model_dump_json(by_alias=True, exclude_defaults=True),
            CHAMPIONS_ANNOTATION: json.dumps(sorted(champions)),
        },
        "ownerReferences": [owner_reference(mv)],
    }
    job_spec = {"backoffLimit": 0, "activeDeadlineSeconds": deadline_seconds}
    volumes = [scratch_volume(), *storage.volumes()]
    layers = (defaults, spec.validator_pod_overrides)
    return restricted_job(
        metadata, container, volumes, job_spec, layers, security=security, cpu_threads=True
    )


def read_report(pods: Sequence[Mapping[str, Any]]) -> ValidationReport | str:
    """The report in the validator pod's termination message, or why there is none."""
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if status.get("name") != CONTAINER or not terminated:
                continue
            message = str(terminated.get("message") or "")
            try:
                return ValidationReport.model_validate_json(message)
            except ValidationError:
                reason = terminated.get("reason") or "Error"
                return (
                    f"the validator ended ({reason}, exit code {terminated.get('exitCode')})"
                    f" without a report: {message[:300]!r}"
                )
    return "the validation Job ended without a finished validator pod (deadline or eviction)"


class _MergedGates(Gates):
    """Gates as recorded: merged from several objects, so more metric gates than one may declare."""

    metrics: list[MetricGate] = Field(default_factory=list)


def recorded_gates(job: Mapping[str, Any], default: Gates | None) -> Gates:
    """The gates the Job was created for; `default` for a Job that recorded none.

    Raises pydantic's ``ValidationError`` when the record does not parse (edited by hand).
    """
    annotation = (job["metadata"].get("annotations") or {}).get(GATES_ANNOTATION)
    if annotation is None:
        return default or Gates()
    recorded = _MergedGates.model_validate_json(annotation)
    return Gates.model_construct(**dict(recorded))


def recorded_champions(job: Mapping[str, Any]) -> list[str]:
    """The champion ModelVersions the Job measured."""
    annotation = (job["metadata"].get("annotations") or {}).get(CHAMPIONS_ANNOTATION, "[]")
    return [str(name) for name in json.loads(annotation)]
