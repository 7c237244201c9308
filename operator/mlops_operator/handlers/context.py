"""What every handler receives as Kopf's ``memo``: the settings and the API client, typed."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_operator.k8s import KubeClient
from mlops_operator.runtime.settings import OperatorSettings

__all__ = ["OperatorContext"]


@dataclass(frozen=True)
class OperatorContext:
    """The operator-wide objects; Kopf hands each handler a shallow copy as ``memo``."""

    settings: OperatorSettings
    kube: KubeClient
