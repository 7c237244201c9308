"""What every handler receives as Kopf's ``memo``: the settings, the API client and shared state.

All the operator's short-lived state lives here, none in module globals: what a
handler remembers between calls is visible in one place, dies with the operator
(a test's operator starts from nothing), and is bounded (`Notes`) or keyed by a
live object (a policy's wake-up, removed when its daemon ends).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from mlops_operator.handlers.notes import Notes
from mlops_operator.k8s import KubeClient
from mlops_operator.k8s.connection import Authorization
from mlops_operator.prometheus import PrometheusClient
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.runtime.settings import OperatorSettings

__all__ = [
    "CLAIM_RECHECK_SECONDS",
    "FLOOR_CHECK_SECONDS",
    "RECORDED_SECONDS",
    "RESYNC_SECONDS",
    "SETTLED_TICK_SECONDS",
    "KopfLogin",
    "OperatorContext",
]

RECORDED_SECONDS = 600.0
"""How long a trainer Job's recorded state spares re-reading its TrainingJob."""
CLAIM_RECHECK_SECONDS = 60.0
"""How long a namespace's artifact claim, once seen, is not looked up again."""
RESYNC_SECONDS = 60.0
"""How long a child applied (or deleted) is not applied (or deleted) again unchanged."""
FLOOR_CHECK_SECONDS = 15.0
"""How often a champion's rollback floors are measured."""
SETTLED_TICK_SECONDS = 10.0
"""How often a settled ModelDeployment whose inputs did not change is ticked."""


@dataclass
class KopfLogin:
    """What Kopf's login hook handed Kopf last (`handlers.lifecycle.login`)."""

    handed: Authorization | None = None
    """When Kopf asks again, these expired or were refused: they are replaced."""


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
    recorded: Notes[object] = field(default_factory=lambda: Notes(RECORDED_SECONDS))
    """What was last written for a trainer Job (by uid), so an unchanged Job costs no call."""
    claims: Notes[bool] = field(default_factory=lambda: Notes(CLAIM_RECHECK_SECONDS))
    """Namespaces whose artifact claim was seen."""
    applied: Notes[str] = field(default_factory=lambda: Notes(RESYNC_SECONDS))
    """Children last applied (a digest of the manifest) or deleted (`children`)."""
    floor_checks: Notes[bool] = field(default_factory=lambda: Notes(FLOOR_CHECK_SECONDS))
    """ModelDeployments (by uid) whose rollback floors were measured."""
    conflicts: Notes[tuple[str, ...]] = field(default_factory=lambda: Notes(RESYNC_SECONDS))
    """ModelDeployments (by uid): children left alone at the last tick (names held by others)."""
    ticks: Notes[tuple[tuple[Any, ...], bool]] = field(
        default_factory=lambda: Notes(SETTLED_TICK_SECONDS)
    )
    """ModelDeployments (by uid): the inputs of the last tick, and whether it left them settled."""
    apis: Notes[bool] = field(default_factory=lambda: Notes(RESYNC_SECONDS))
    """Optional APIs (by group-version, e.g. the Gateway API's) and whether the cluster serves them."""
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    """DriftPolicies (by uid) whose daemon runs: set to evaluate at once (a spec change)."""
    prometheus_clients: dict[str, PrometheusClient] = field(default_factory=dict)
    """One client (and its connections) per Prometheus URL, shared by the ModelDeployment ticks."""
    login: KopfLogin = field(default_factory=KopfLogin)
    """The credentials Kopf holds, from the connection `kube` uses (one identity for both)."""

    @classmethod
    def create(cls, settings: OperatorSettings, kube: KubeClient) -> OperatorContext:
        """The context for `settings`, with `settings.max_concurrent_reconciles` slots."""
        return cls(
            settings=settings,
            kube=kube,
            slots=asyncio.Semaphore(settings.max_concurrent_reconciles),
        )

    @property
    def storage(self) -> ArtifactStorage:
        """The artifact store the settings describe."""
        settings = self.settings
        return ArtifactStorage(
            claim=settings.artifact_pvc,
            uri=settings.artifact_uri,
            credentials_secret=settings.artifact_credentials_secret,
        )

    def prometheus(self, url: str) -> PrometheusClient:
        """The shared client of the Prometheus at `url`."""
        return self.prometheus_clients.setdefault(url, PrometheusClient(url))

    async def close(self) -> None:
        """Close the connections the context opened (not `kube`: its owner closes it)."""
        for client in self.prometheus_clients.values():
            await client.close()
        self.prometheus_clients.clear()
