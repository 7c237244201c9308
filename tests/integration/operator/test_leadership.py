"""Leader election against the real API server: one holder, a standby that takes over, no split.

Aspects (timings shortened to a 6 s lease, 4 s renew deadline, 1 s retry): a candidate
takes a missing Lease and renews it, while a second candidate stays standby through several
lease durations; when the holder stops renewing (killed: no release) the standby takes over
within a lease duration plus a few retries and the Lease counts one transition; the old
holder, coming back, cannot renew and gives up within its renew deadline; a holder that
stops cleanly releases the Lease and a waiting candidate takes it at once; two candidates
racing for a missing Lease, or for a released one, never both win (the loser's write is
refused by the API server's optimistic concurrency).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from mlops_operator.k8s import KubeClient
from mlops_operator.runtime.leadership import LEASE_API_VERSION, LeaderElection, LeaseTiming
from tests.integration.operator.conftest import operator_client

# Short, for a short test; not shorter, since the tests run beside the parallel phase's load
# and the deadlines asserted below are these values' multiples (a renewal that took longer
# than the lease on a loaded API server would let the standby in).
TIMING = LeaseTiming(lease_seconds=6.0, renew_seconds=4.0, retry_seconds=1.0)


@asynccontextmanager
async def _candidates(
    kubeconfig: Path, namespace: str, lease: str, *identities: str
) -> AsyncIterator[list[LeaderElection]]:
    """One candidate per identity, each with a client (a connection pool) of its own."""
    async with AsyncExitStack() as stack:
        found = []
        for identity in identities:
            kube = await stack.enter_async_context(operator_client(kubeconfig))
            found.append(
                LeaderElection(
                    kube, namespace=namespace, name=lease, identity=identity, timing=TIMING
                )
            )
        yield found


async def _lease(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    return await kube.get(LEASE_API_VERSION, "Lease", name, namespace)


async def test_a_standby_takes_over_only_when_the_holder_stops_renewing(
    kubeconfig: Path, namespace: str
) -> None:
    async with _candidates(kubeconfig, namespace, "lead", "a", "b") as (a, b):
        await asyncio.wait_for(a.acquire(), timeout=10)
        first = await _lease(a.kube, namespace, "lead")
        assert first["spec"]["holderIdentity"] == "a"
        assert first["spec"]["leaseDurationSeconds"] == TIMING.lease_seconds

        holding = asyncio.create_task(a.hold())
        waiting = asyncio.create_task(b.acquire())
        # Several lease durations: a renews all along, so b must not take over.
        deadline = time.monotonic() + 3 * TIMING.lease_seconds
        while time.monotonic() < deadline:
            assert not waiting.done(), "the standby took a Lease that was being renewed"
            await asyncio.sleep(TIMING.retry_seconds)
        renewed = await _lease(a.kube, namespace, "lead")
        assert renewed["spec"]["holderIdentity"] == "a"
        assert renewed["spec"]["renewTime"] != first["spec"]["renewTime"]

        holding.cancel()  # a dies: no release, its renewals just stop
        stopped = time.monotonic()
        await asyncio.wait_for(waiting, timeout=TIMING.lease_seconds + 10 * TIMING.retry_seconds)
        took = time.monotonic() - stopped
        assert took >= TIMING.lease_seconds - 2 * TIMING.retry_seconds, took
        taken = await _lease(b.kube, namespace, "lead")
        assert taken["spec"]["holderIdentity"] == "b"
        assert taken["spec"]["leaseTransitions"] == 1
        assert b.is_leader

        # a comes back (a paused process) and tries to go on: it finds b and gives up.
        started = time.monotonic()
        await asyncio.wait_for(a.hold(), timeout=TIMING.renew_seconds + 5)
        assert not a.is_leader
        assert time.monotonic() - started <= TIMING.renew_seconds + 4 * TIMING.retry_seconds
        assert (await _lease(b.kube, namespace, "lead"))["spec"]["holderIdentity"] == "b"


async def test_a_clean_stop_hands_over_at_once(kubeconfig: Path, namespace: str) -> None:
    async with _candidates(kubeconfig, namespace, "handover", "a", "b") as (a, b):
        await asyncio.wait_for(a.acquire(), timeout=10)
        waiting = asyncio.create_task(b.acquire())
        await a.release()
        released = time.monotonic()
        await asyncio.wait_for(waiting, timeout=TIMING.lease_seconds)
        # Well under the lease duration a dead holder would have cost.
        assert time.monotonic() - released < TIMING.lease_seconds - TIMING.retry_seconds
        assert (await _lease(b.kube, namespace, "handover"))["spec"]["holderIdentity"] == "b"


async def test_two_candidates_racing_never_both_win(kubeconfig: Path, namespace: str) -> None:
    async with _candidates(kubeconfig, namespace, "race", "c", "d") as (c, d):
        # Both find no Lease and create one: the API server accepts exactly one create.
        won = await asyncio.gather(c._try_acquire_or_renew(), d._try_acquire_or_renew())
        assert sorted(won) == [False, True]
        winner, loser = (c, d) if won[0] else (d, c)
        assert (await _lease(c.kube, namespace, "race"))["spec"]["holderIdentity"] == (
            winner.identity
        )
        await winner.release()
        # Both read the released Lease and write with its resourceVersion: one write conflicts.
        third = LeaderElection(
            winner.kube, namespace=namespace, name="race", identity="e", timing=TIMING
        )
        won = await asyncio.gather(loser._try_acquire_or_renew(), third._try_acquire_or_renew())
        assert sorted(won) == [False, True]
        holder = (await _lease(c.kube, namespace, "race"))["spec"]["holderIdentity"]
        assert holder == (loser.identity if won[0] else "e")
