"""The custom-resource base: API group and version, CRD metadata on the class, status basics.

A kind is declared once, as a subclass that names its CRD-level metadata
(like kube-rs's ``#[kube(...)]`` or kubebuilder's markers)::

    class TrainingJob(CustomResource, kind="TrainingJob", plural="trainingjobs",
                      short_names=("tj",), printer_columns=(...)):
        spec: TrainingJobSpec
        status: TrainingJobStatus | None = None

`mlops_operator.crdgen` reads ``cls.crd`` and the field types to write the CRD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from mlops_operator.api.conditions import Condition
from mlops_operator.api.model import CamelModel

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "VERSION",
    "CrdInfo",
    "CustomResource",
    "PrinterColumn",
    "ResourceStatus",
    "ScaleSubresource",
]

GROUP = "mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "mlops"
"""Every kind is in this category, so `kubectl get mlops` lists them all."""


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get` (``additionalPrinterColumns``)."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    json_path: str
    description: str
    priority: int = 0
    """0: always shown; 1: only with ``-o wide``."""


@dataclass(frozen=True)
class ScaleSubresource:
    """Paths of the ``scale`` subresource (`kubectl scale`, HorizontalPodAutoscaler)."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str


@dataclass(frozen=True)
class CrdInfo:
    """What a CRD says about a kind besides its schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    scale: ScaleSubresource | None

    @property
    def singular(self) -> str:
        """The lowercase kind, as kubectl accepts it."""
        return self.kind.lower()

    @property
    def name(self) -> str:
        """The CRD's own name: ``<plural>.<group>``."""
        return f"{self.plural}.{GROUP}"


class ResourceStatus(CamelModel):
    """The status fields every kind has."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The `metadata.generation` the controller last acted on; when it is lower"
        " than `metadata.generation`, the status describes an older spec.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="The latest observations of the object's state, one per condition type.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class CustomResource(CamelModel):
    """A whole object of one of our kinds: the body Kopf hands to a handler, typed."""

    crd: ClassVar[CrdInfo]

    api_version: str = Field(
        default=API_VERSION,
        alias="apiVersion",
        description="The versioned schema of this object.",
    )
    kind: str = Field(default="", description="The kind of this object.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Standard object metadata (name, namespace, labels …)."
    )

    def __init_subclass__(
        cls,
        *,
        kind: str,
        plural: str,
        short_names: tuple[str, ...] = (),
        printer_columns: tuple[PrinterColumn, ...] = (),
        scale: ScaleSubresource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.crd = CrdInfo(kind, plural, short_names, printer_columns, scale)

    @model_validator(mode="before")
    @classmethod
    def _check_type(cls, data: Any) -> Any:
        """Fill in ``kind``; refuse a body of another kind or version before reading its spec."""
        if not isinstance(data, dict):
            return data
        expected = cls.crd.kind
        version = data.get("apiVersion", data.get("api_version", API_VERSION))
        found = (version, data.get("kind", expected))
        if found != (API_VERSION, expected):
            raise ValueError(
                f"expected apiVersion {API_VERSION} and kind {expected},"
                f" got {found[0]} and {found[1]}"
            )
        return {**data, "kind": expected}

    @property
    def name(self) -> str:
        """``metadata.name`` (empty when not set)."""
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        """``metadata.namespace`` (empty when not set)."""
        return str(self.metadata.get("namespace", ""))

    @property
    def generation(self) -> int | None:
        """``metadata.generation``, which the API server bumps on every spec change."""
        value = self.metadata.get("generation")
        return int(value) if value is not None else None
