"""What every handler receives as Kopf's ``memo``: the settings, the API client and shared state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mlops_operator.k8s import KubeClient
from mlops_operator.runtime.settings import OperatorSettings

__all__ = ["OperatorContext"]


@dataclass(frozen=True)
class OperatorContext:
    """The operator-wide objects; Kopf hands each handler a shallow copy as ``memo``.

    Being shallow, the copies share the mutable parts: the reconcile slots and the
    in-memory notes below, which are hints only (lost on restart, re-derived from
    the API then).
    """

    settings: OperatorSettings
    kube: KubeClient
    slots: asyncio.Semaphore
    recorded: dict[str, object] = field(default_factory=dict)
    """What was last written for a child (by uid), so an unchanged child costs no call."""
    claims: dict[str, float] = field(default_factory=dict)
    """Namespaces whose artifact claim was seen, with the (monotonic) time it was seen."""
    applied: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Children last applied (a digest of the manifest) or deleted, and when (`children`)."""

    @classmethod
    def create(cls, settings: OperatorSettings, kube: KubeClient) -> OperatorContext:
        """The context for `settings`, with `settings.max_concurrent_reconciles` slots."""
        return cls(
            settings=settings,
            kube=kube,
            slots=asyncio.Semaphore(settings.max_concurrent_reconciles),
        )
