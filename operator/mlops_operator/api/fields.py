"""Field types shared by the four kinds: names, durations, quantities, URIs, compute resources.

Each type carries its wire constraints (pattern, length, format) so that
pydantic and the API server accept exactly the same values. Patterns are
RE2-compatible: the API server evaluates them with Go's regexp.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from mlops_operator.api.durations import DURATION_PATTERN, Duration
from mlops_operator.api.model import CamelModel, Rule

__all__ = [
    "DURATION_PATTERN",
    "QUANTITY_PATTERN",
    "ColumnName",
    "Duration",
    "Fraction",
    "Image",
    "MetricName",
    "ModelName",
    "ObjectName",
    "Quantity",
    "ResourceRequirements",
    "Sha256",
    "StorageUri",
    "quantity_value",
]

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

# Kubernetes' own pattern for resource.Quantity.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)

ModelName = Annotated[str, Field(min_length=1, max_length=50, pattern=DNS_LABEL_PATTERN)]
"""A model's name: a DNS label short enough to suffix with ``-v<version>``."""

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""The name of another object in the same namespace."""

MetricName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_]*$")]
"""A metric name as the trainer reports it (``accuracy``, ``f1_macro``, ``rmse`` …)."""

ColumnName = Annotated[str, Field(min_length=1, max_length=256)]
"""A column of a tabular dataset."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
"""A number between 0 and 1 inclusive."""

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64)]
"""A lowercase hex SHA-256 digest."""

StorageUri = Annotated[
    str, Field(min_length=1, max_length=2048, pattern=r"^[a-z][a-z0-9+.-]*://\S+$")
]
"""A URI that fsspec can open (``file://``, ``s3://``, ``gs://`` …)."""

Image = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^\S+$")]
"""A container image reference."""


_BINARY = {f"{p}i": Decimal(2) ** (10 * n) for n, p in enumerate("KMGTPE", 1)}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def quantity_value(quantity: int | str) -> Decimal:
    """The number a Kubernetes quantity stands for (``500m`` is 0.5, ``1Gi`` is 2**30)."""
    text = str(quantity)
    if not _QUANTITY.match(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    if text[-1:] in _DECIMAL:
        return Decimal(text[:-1]) * _DECIMAL[text[-1]]
    return Decimal(text)


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and (len(value) > 64 or not _QUANTITY.match(value)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (such as 500m, 2, 1Gi or 1.5G)")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": 64,
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity: ``500m``, ``2``, ``1Gi``."""

_ResourceList = Annotated[dict[str, Quantity], Field(max_length=16)]


class ResourceRequirements(CamelModel):
    """Compute resources of the pods, as in a container's ``resources``."""

    cel_rules = (
        Rule(
            "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits)"
            " || quantity(string(self.limits[k])).compareTo(quantity(string(self.requests[k]))) >= 0)",
            "`limits` must not be less than `requests` for any resource",
            field_path=".limits",
        ),
    )

    requests: _ResourceList | None = Field(
        default=None,
        description="Minimum resources the scheduler reserves, e.g. `{cpu: 500m, memory: 1Gi}`.",
    )
    limits: _ResourceList | None = Field(
        default=None, description="Maximum resources the pod may use, e.g. `{memory: 2Gi}`."
    )
