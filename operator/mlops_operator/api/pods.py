"""Pod overrides: what a platform needs to change in the pods the operator builds.

In the spirit of KServe's predictor pod fields and Kubeflow Trainer's pod template
overrides, but validated: where pods run (``nodeSelector``, ``tolerations``,
``affinity``, ``priorityClassName``), as whom (``serviceAccountName``,
``imagePullSecrets``), with what (``resources``), and what else they see (``env``,
``volumes`` mounted through ``volumeMounts``, pod ``labels`` and ``annotations``).
Everything else (the image, the command, the security context, the probes, the
operator's own variables and volumes) is the operator's, so the pods keep meeting
the ``restricted`` Pod Security Standard and their contract
(`mlops_operator.podcontract`).

Overrides are merged over the generated pod in layers: the operator's defaults for
that workload (the chart's ``workloads`` values) first, then the object's own.
Maps merge key by key, lists by name (env, volumes, mounts, pull secrets) or by
value (tolerations), a later layer winning; ``affinity`` and the single values are
replaced whole; the operator's labels and annotations always win.

Who the pods run as is the operator's setting alone (`WorkloadSecurityContext`, the
chart's ``workloads.securityContext``), never an object's: the ids the images declare,
or none at all where the platform assigns them (OpenShift).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from mlops_operator.api.fields import ObjectName, ResourceRequirements
from mlops_operator.api.model import CamelModel, Rule
from mlops_operator.podcontract import ENV_PREFIX, IMAGE_USER, RESERVED_MOUNTS, RESERVED_VOLUMES

__all__ = [
    "DEFAULT_WORKLOAD_SECURITY",
    "VOLUME_SOURCES",
    "EnvVar",
    "LocalObjectReference",
    "PodOverrides",
    "Toleration",
    "Volume",
    "VolumeMount",
    "WorkloadSecurityContext",
    "contract_problems",
]

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_Name = Annotated[str, Field(min_length=1, max_length=63, pattern=_DNS_LABEL)]
_Labels = Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)]
_Annotations = Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)]
VOLUME_SOURCES = (  # the volume types the restricted Pod Security Standard allows
    "configMap",
    "secret",
    "persistentVolumeClaim",
    "emptyDir",
    "projected",
    "csi",
    "downwardAPI",
    "ephemeral",
)


# Kubernetes' bounds of a user or group id (apimachinery's IsValidUserID / IsValidGroupID).
_MAX_ID = 2**31 - 1


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


class TolerationOperator(StrEnum):
    """How a toleration matches a taint's value."""

    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    """Which taint effect a toleration tolerates."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(CamelModel):
    """A toleration, as in a pod's ``tolerations``."""

    cel_rules = (
        Rule(
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value)",
            "`value` must be empty when `operator` is Exists",
            field_path=".value",
        ),
    )

    key: str | None = Field(
        default=None, max_length=316, description="The taint key; empty with Exists: every taint."
    )
    operator: TolerationOperator | None = Field(
        default=None, description="`Equal` (the default) or `Exists`."
    )
    value: str | None = Field(default=None, max_length=63, description="The taint value.")
    effect: TaintEffect | None = Field(default=None, description="The effect; empty: all effects.")
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="With NoExecute: how long the pod stays bound once tainted."
    )


class LocalObjectReference(CamelModel):
    """A reference to an object in the same namespace."""

    name: ObjectName = Field(description="Its name.")


class EnvVar(CamelModel):
    """An environment variable of the workload's container."""

    cel_rules = (
        Rule(
            f"!self.name.startsWith('{ENV_PREFIX}')",
            f"`name` must not start with {ENV_PREFIX}: those variables are the operator's"
            " contract with the pod",
            field_path=".name",
        ),
        Rule(
            "!(has(self.value) && has(self.valueFrom))",
            "`value` and `valueFrom` must not both be set",
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
        description="The variable's name.",
    )
    value: str | None = Field(default=None, max_length=32768, description="Its value.")
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="A source, as in a container's `env[].valueFrom` (`secretKeyRef`,"
        " `configMapKeyRef`, `fieldRef`, `resourceFieldRef`).",
    )


class Volume(CamelModel):
    """A volume of the pod: one source among those the ``restricted`` standard allows."""

    cel_rules = (
        Rule(
            "[" + ", ".join(f"has(self.{s})" for s in VOLUME_SOURCES) + "].exists_one(x, x)",
            "exactly one of " + ", ".join(f"`{s}`" for s in VOLUME_SOURCES) + " must be set",
        ),
        Rule(
            f"!(self.name in {_cel_list(RESERVED_VOLUMES)})",
            f"`name` must not be one of the operator's volumes ({', '.join(RESERVED_VOLUMES)})",
            field_path=".name",
        ),
    )

    name: _Name = Field(description="The volume's name, which `volumeMounts` refer to.")
    config_map: dict[str, Any] | None = Field(default=None, description="A ConfigMap.")
    secret: dict[str, Any] | None = Field(default=None, description="A Secret.")
    persistent_volume_claim: dict[str, Any] | None = Field(
        default=None, description="A PersistentVolumeClaim (`claimName`, `readOnly`)."
    )
    empty_dir: dict[str, Any] | None = Field(default=None, description="An emptyDir.")
    projected: dict[str, Any] | None = Field(
        default=None, description="A projected volume (e.g. a service account token)."
    )
    csi: dict[str, Any] | None = Field(default=None, description="A CSI inline volume.")
    downward_api: dict[str, Any] | None = Field(
        default=None, alias="downwardAPI", description="A downward API volume."
    )
    ephemeral: dict[str, Any] | None = Field(
        default=None, description="A generic ephemeral volume."
    )


class VolumeMount(CamelModel):
    """Where a volume of `volumes` is mounted in the workload's container."""

    cel_rules = (
        Rule(
            "!("
            + " || ".join(
                f"self.mountPath == '{p}' || self.mountPath.startsWith('{p}/')"
                for p in RESERVED_MOUNTS
            )
            + ")",
            f"`mountPath` must not be under the operator's paths ({', '.join(RESERVED_MOUNTS)})",
            field_path=".mountPath",
        ),
    )

    name: _Name = Field(description="The volume, one of `volumes`.")
    mount_path: str = Field(
        min_length=2, max_length=1024, pattern=r"^/\S+$", description="An absolute path."
    )
    read_only: bool = Field(default=True, description="Mount read-only (the default).")
    sub_path: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^[^/]\S*$",
        description="A path inside the volume to mount instead of its root.",
    )


class PodOverrides(CamelModel):
    """Changes to a workload's pod, merged over the generated one (see the module docstring)."""

    cel_rules = (
        Rule(
            "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes)"
            " && self.volumes.exists(v, v.name == m.name))",
            "every `volumeMounts[].name` must be a volume of `volumes`",
            field_path=".volumeMounts",
        ),
    )

    labels: _Labels | None = Field(
        default=None, description="Pod labels to add (the operator's own keys are kept)."
    )
    annotations: _Annotations | None = Field(
        default=None,
        description="Pod annotations to add, e.g. a mesh's or a workload identity's (the"
        " operator's own keys are kept).",
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Compute resources of the workload's container, merged per resource over"
        " the operator's defaults.",
    )
    node_selector: Annotated[dict[str, str], Field(max_length=64)] | None = Field(
        default=None, description="Nodes the pod may run on, by label."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=32, description="Taints the pod tolerates."
    )
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="Node and pod (anti-)affinity, as in a pod's `affinity`; replaces the"
        " defaults' whole.",
    )
    priority_class_name: ObjectName | None = Field(
        default=None, description="The PriorityClass of the pod."
    )
    service_account_name: ObjectName | None = Field(
        default=None,
        description="The ServiceAccount the pod runs as (e.g. for workload identity to an"
        " object store); its token is not mounted unless a projected volume asks for it.",
    )
    image_pull_secrets: list[LocalObjectReference] | None = Field(
        default=None, max_length=16, description="Secrets to pull the image with."
    )
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=64,
        description="Variables added to the workload's container (never `MLOPS_*`).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    volumes: list[Volume] | None = Field(
        default=None,
        max_length=32,
        description="Volumes added to the pod.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None,
        max_length=32,
        description="Where the workload's container mounts `volumes`.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["mountPath"],
        },
    )


def contract_problems(overrides: PodOverrides) -> list[str]:
    """What in `overrides` would step on the pod contract: the CRDs' CEL rules, for overrides
    that never pass the API server (the operator's own defaults, from its settings)."""
    problems = [
        f"env {var.name}: {ENV_PREFIX}* variables are the operator's"
        for var in overrides.env or ()
        if var.name.startswith(ENV_PREFIX)
    ]
    problems += [
        f"volume {volume.name}: the name is the operator's"
        for volume in overrides.volumes or ()
        if volume.name in RESERVED_VOLUMES
    ]
    problems += [
        f"volumeMount {mount.mount_path}: under the operator's paths"
        for mount in overrides.volume_mounts or ()
        if any(
            mount.mount_path == p or mount.mount_path.startswith(f"{p}/") for p in RESERVED_MOUNTS
        )
    ]
    volumes = {volume.name for volume in overrides.volumes or ()}
    problems += [
        f"volumeMount {mount.mount_path}: no volume {mount.name} in volumes"
        for mount in overrides.volume_mounts or ()
        if mount.name not in volumes
    ]
    return problems


class WorkloadSecurityContext(CamelModel):
    """The ids in the ``securityContext`` of every pod the operator starts (trainer, validator,
    audit appender, inference server, evaluator).

    Each defaults to the images' own user (`mlops_operator.podcontract.IMAGE_USER`); null leaves
    the key out of the pod, for a platform that assigns it: OpenShift's ``restricted-v2``
    SecurityContextConstraints refuse a pod whose ``runAsUser`` or ``fsGroup`` lies outside the
    namespace's range and fill in both when they are missing. ``runAsNonRoot`` and the
    ``RuntimeDefault`` seccomp profile stay whatever these say, so the pods keep meeting the
    ``restricted`` Pod Security Standard (the images' user is numeric and not root).
    """

    model_config = ConfigDict(frozen=True)

    run_as_user: int | None = Field(
        default=IMAGE_USER,
        ge=1,
        le=_MAX_ID,
        description="The containers' user id; null: the image's (or the platform's) user.",
    )
    run_as_group: int | None = Field(
        default=IMAGE_USER,
        ge=0,
        le=_MAX_ID,
        description="The containers' primary group id; null: the image's.",
    )
    fs_group: int | None = Field(
        default=IMAGE_USER,
        ge=0,
        le=_MAX_ID,
        description="The group that owns the pod's writable volumes (and that every container"
        " joins); null: volumes keep their ownership, as the platform or the storage sets it.",
    )

    def pod_fields(self) -> dict[str, int]:
        """The ids that are set, as a pod's ``securityContext`` names them."""
        return self.model_dump(by_alias=True, exclude_none=True)


DEFAULT_WORKLOAD_SECURITY = WorkloadSecurityContext()
"""The pods run as the images' user, group and fsGroup."""
