"""The API of mlops-operator: pydantic models of the four custom resources.

They are the single source of truth: `mlops_operator.crdgen` renders the CRDs
from them, the controllers parse every object with them, and the examples in
``manifests/examples`` are checked against them.
"""

from __future__ import annotations

from mlops_operator.api.driftpolicy import DriftPolicy, DriftPolicySpec, DriftPolicyStatus
from mlops_operator.api.modeldeployment import (
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)
from mlops_operator.api.modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus
from mlops_operator.api.resource import API_VERSION, CATEGORY, GROUP, VERSION, CustomResource
from mlops_operator.api.trainingjob import TrainingJob, TrainingJobSpec, TrainingJobStatus

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "VERSION",
    "CustomResource",
    "DriftPolicy",
    "DriftPolicySpec",
    "DriftPolicyStatus",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
]

KINDS: tuple[type[CustomResource], ...] = (TrainingJob, ModelVersion, ModelDeployment, DriftPolicy)
"""Every kind, in the order of the loop."""
