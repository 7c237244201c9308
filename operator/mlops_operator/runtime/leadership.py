"""Leader election through a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does.

With several replicas of the operator, exactly one (the holder of the Lease) runs Kopf; the
others wait as standbys and take over when the holder stops renewing. Kopf's own peering is
not leader election (operators of equal priority all pause), so the Lease is ours.

The rules, client-go's:

- A standby takes the Lease when it is free (no holder: a holder that stopped cleanly
  released it) or when its record has not changed for ``lease_seconds`` *as this process
  observed it* (its own monotonic clock, never the holder's ``renewTime``: the two machines'
  clocks may disagree).
- Every write is conditional on the ``resourceVersion`` just read, so two standbys racing
  for a free Lease cannot both win: the loser gets a Conflict and stays standby.
- The holder renews every ``retry_seconds``; when it has not renewed for ``renew_seconds``
  (under ``lease_seconds``, so it gives up before anyone may take over), it has lost the
  Lease and `hold` returns: the caller stops acting at once and the process exits, as a Go
  controller does (its pod restarts as a standby).
- A holder stopping cleanly releases the Lease (no holder, 1 s duration), so a rolling
  restart hands over at once instead of after ``lease_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from mlops_operator.k8s import ApiError, Conflict, KubeClient, NotFound

__all__ = ["LEASE_API_VERSION", "LeaderElection", "LeaseTiming"]

LEASE_API_VERSION = "coordination.k8s.io/v1"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults: a dead holder is replaced within ``lease + retry`` seconds.

    `OperatorSettings` checks ``retry < renew < lease`` where the values come in.
    """

    lease_seconds: float = 15.0
    renew_seconds: float = 10.0
    retry_seconds: float = 2.0


def _micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    """One candidate for the Lease `namespace`/`name`, identified as `identity`."""

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self.is_leader = False
        # The last record seen (holder, renewTime, resourceVersion) and when it was first seen.
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._last_renewal = 0.0

    async def acquire(self) -> None:
        """Wait until this candidate holds the Lease."""
        logger.info(
            "waiting to lead",
            extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity},
        )
        while not await self._try_acquire_or_renew():  # noqa: ASYNC110 - polling the API
            await asyncio.sleep(self.timing.retry_seconds)
        logger.info("became the leader", extra={"lease": f"{self.namespace}/{self.name}"})

    async def hold(self) -> None:
        """Renew the Lease until a renewal fails for the renew deadline; then return (lost)."""
        while True:
            await asyncio.sleep(self.timing.retry_seconds)
            if await self._try_acquire_or_renew():
                continue
            if time.monotonic() - self._last_renewal >= self.timing.renew_seconds:
                self.is_leader = False
                logger.error(
                    "lost the leadership: the Lease was not renewed for %.0f s",
                    self.timing.renew_seconds,
                    extra={"lease": f"{self.namespace}/{self.name}"},
                )
                return

    async def release(self) -> None:
        """Give the Lease up (a clean stop), so a standby takes over at once."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self.kube.get(LEASE_API_VERSION, "Lease", self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            released = {
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": _micro_time(datetime.now(UTC)),
            }
            await self._write(lease, released)
            logger.info("released the leadership", extra={"lease": f"{self.namespace}/{self.name}"})
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            # The standby then takes over once the Lease expires, as after a crash.
            logger.warning("could not release the Lease: %s", error)

    async def _write(self, lease: dict[str, Any], spec: dict[str, Any]) -> None:
        """Merge `spec` into the Lease, only if it has not changed since `lease` was read."""
        await self.kube.patch(
            LEASE_API_VERSION,
            "Lease",
            self.name,
            self.namespace,
            {"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]}, "spec": spec},
        )

    def _spec(self, now: datetime, current: dict[str, Any] | None) -> dict[str, Any]:
        held_by_us = (current or {}).get("holderIdentity") == self.identity
        transitions = int((current or {}).get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.lease_seconds)),
            "acquireTime": (current or {}).get("acquireTime") if held_by_us else _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions if held_by_us or current is None else transitions + 1,
        }

    def _expired(self, lease: dict[str, Any]) -> bool:
        """Whether the record has not changed for a lease duration, by this process's clock."""
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_seconds)
        return now - self._observed_at >= duration

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        try:
            try:
                lease = await self.kube.get(LEASE_API_VERSION, "Lease", self.name, self.namespace)
            except NotFound:
                await self.kube.create(
                    {
                        "apiVersion": LEASE_API_VERSION,
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": self._spec(now, None),
                    }
                )
                return self._renewed()
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.identity and not self._expired(lease):
                self.is_leader = False
                return False
            await self._write(lease, self._spec(now, spec))
            return self._renewed()
        except Conflict:
            return False  # another candidate wrote first; read again next round
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            logger.warning("leader election: cannot read or write the Lease: %s", error)
            return False

    def _renewed(self) -> bool:
        self.is_leader = True
        self._last_renewal = time.monotonic()
        return True
