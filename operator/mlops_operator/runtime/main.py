"""Run the operator: logging, its probes and metrics, leader election, then Kopf with the handlers.

SIGINT and SIGTERM, once the probes are served, are one stop request (`_Stop`; a second signal
exits at once): a standby stops waiting, and Kopf, handed it as its stop flag, stops
watching, lets running handlers finish (bounded by its own timeouts) and returns; the probe
and metrics endpoints are closed after it. Kopf puts in signal handlers of its own when it starts; ours replace them at once, so
that a stop asked for stays known here: Kopf stopped during its start-up can fail on
requests its own shutdown cut (its API discovery in flight when its session closes), and
such a failure after a stop request is a clean exit, not a crash. With leader election, a
replica first waits as a standby and runs Kopf only once it holds the Lease; a leader that
loses the Lease stops Kopf at once and the process exits with status 1, so its pod restarts
as a standby (`mlops_operator.runtime.leadership`).
The probes are the operator's own (`mlops_operator.runtime.health`), not Kopf's.

The credentials are found once, before anything starts, by the one kubeconfig loader
(`mlops_operator.k8s.kubeconfig`: the kubeconfig, ``--kubeconfig`` and ``--context`` outside a
pod, the service account inside one); the handlers' client, the Lease renewals and Kopf's
login hook (`mlops_operator.handlers.lifecycle.login`) share that one `k8s.Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import kopf

from mlops_operator import handlers
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.lifecycle import connection_info
from mlops_operator.k8s import Connection, KubeClient, Unauthorized
from mlops_operator.k8s.execcredential import CredentialError
from mlops_operator.k8s.kubeconfig import Overrides, load
from mlops_operator.runtime import metrics
from mlops_operator.runtime.health import Health
from mlops_operator.runtime.leadership import LeaderElection, LeaseTiming
from mlops_operator.runtime.settings import LogFormat, LogLevel, OperatorSettings

__all__ = ["LeadershipLost", "configure_logging", "run", "run_operator"]

logger = logging.getLogger(__name__)

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# Kopf gets this long to stop its handlers once the Lease is lost; then the process exits.
_STOP_AFTER_LOSS = 2.0


class LeadershipLost(RuntimeError):
    """This replica stopped renewing its Lease: another may lead now, so it must stop."""


class _Stop:
    """The process's stop request: set by SIGINT or SIGTERM, whoever installed handlers last."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.signal: signal.Signals | None = None

    def listen(self) -> None:
        """(Re)install the handlers: at the start, and again once Kopf has put in its own."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._received, signum)

    def _received(self, signum: signal.Signals) -> None:
        if self.signal is not None:
            # A second signal while a stop hangs (Kopf's own forced exit is off when it is
            # stopped by a flag): go now, as Ctrl+C twice means.
            logger.warning("second signal: exiting at once", extra={"signal": signum.name})
            os._exit(128 + signum)
        logger.info("signal received: stopping", extra={"signal": signum.name})
        self.signal = signum
        self.requested.set()


def configure_logging(log_format: LogFormat, level: LogLevel) -> None:
    """One record per line; as JSON, each carries the object it is about under ``object``."""
    kopf.configure(
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object",
    )
    logging.getLogger().setLevel(level)
    # One line per probe (every few seconds, forever) drowns everything else.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _identity() -> str:
    """This process's name in the Lease: ``<pod name>_<random>`` (controller-runtime's form).

    The pod's name (POD_ID, as Kopf reads it; else the host name) says where it runs; the
    random part makes a restarted container a new candidate: with the pod's name alone, it
    would find its dead predecessor's unexpired Lease under its own name and take it at once.
    """
    return f"{os.environ.get('POD_ID') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _lease_namespace(settings: OperatorSettings) -> str:
    found = settings.leader_election_namespace or os.environ.get("POD_NAMESPACE")
    if not found and _SERVICE_ACCOUNT_NAMESPACE.is_file():
        found = _SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    if not found:
        raise ValueError(
            "leader election needs the Lease's namespace: set MLOPS_LEADER_ELECTION_NAMESPACE"
            " (--leader-election-namespace) or POD_NAMESPACE"
        )
    return found


async def _kopf(settings: OperatorSettings, kube: KubeClient, health: Health, stop: _Stop) -> None:
    if stop.requested.is_set():
        return
    context = OperatorContext.create(settings, kube)
    # What runs already is not Kopf's to stop when it ends (kopf.operator's own rule).
    existing = asyncio.all_tasks()
    try:
        tasks = await kopf.spawn_tasks(
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            standalone=settings.peering is None,
            peering_name=settings.peering,
            memo=context,
            stop_flag=stop.requested,
        )
        stop.listen()  # Kopf has just put in its own handlers; no await came in between
        operator = asyncio.create_task(kopf.run_tasks(tasks, ignored=existing), name="kopf")
        health.watch("kopf", operator)
        try:
            await operator
        except (aiohttp.ClientError, AssertionError) as error:
            # What a request Kopf's own shutdown cut raises (aiohttp asserts on a closed
            # session). After a signal it is the stop, in one line; any other failure, a
            # refused login included, still ends the process with its own status.
            if stop.signal is None:
                raise
            logger.warning("Kopf failed while stopping on a signal: %r", error)
    finally:
        health.forget("kopf")
        await context.close()


async def _standby(election: LeaderElection, health: Health, stop: _Stop) -> bool:
    """Wait for the Lease; False when a stop was requested first."""
    acquiring = asyncio.create_task(election.acquire(), name="leader election")
    health.watch("leader election", acquiring)
    stopping = asyncio.create_task(stop.requested.wait())
    try:
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        health.forget("leader election")
        for task in (acquiring, stopping):
            task.cancel()
    return not stop.requested.is_set()


async def _lead(settings: OperatorSettings, kube: KubeClient, health: Health, stop: _Stop) -> None:
    timing = LeaseTiming(
        lease_seconds=settings.leader_election_lease_seconds,
        renew_seconds=settings.leader_election_renew_seconds,
        retry_seconds=settings.leader_election_retry_seconds,
    )
    # A client of its own with a short timeout: a hung request must not outlast the deadline.
    lease_kube = KubeClient(
        connections=2,
        request_timeout=timing.renew_seconds / 2,
        connect_timeout=timing.renew_seconds / 2,
    )
    await lease_kube.connect(kube.connection)
    election = LeaderElection(
        lease_kube,
        namespace=_lease_namespace(settings),
        name=settings.leader_election_lease,
        identity=_identity(),
        timing=timing,
    )
    try:
        health.role = "standby"
        if not await _standby(election, health, stop):
            return
        health.role = "leader"
        holding = asyncio.create_task(election.hold(), name="lease renewal")
        health.watch("lease renewal", holding)
        leading = asyncio.create_task(_kopf(settings, kube, health, stop), name="leading")
        await asyncio.wait({holding, leading}, return_when=asyncio.FIRST_COMPLETED)
        health.forget("lease renewal")
        if holding.done():
            # Another replica may lead from now on: stop acting at once (no graceful drain).
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                await asyncio.wait_for(leading, _STOP_AFTER_LOSS)
            raise LeadershipLost(
                f"lost the Lease {election.namespace}/{election.name}; exiting so that the pod"
                " restarts as a standby"
            )
        holding.cancel()
        await election.release()
        leading.result()
    finally:
        await lease_kube.close()


async def run_operator(settings: OperatorSettings) -> None:
    """Serve probes and metrics and run Kopf (once leading) until it is stopped or loses the Lease."""
    stop = _Stop()
    # Timers and daemons call the API outside the reconcile slots: room for them too.
    kube = KubeClient(
        connections=2 * settings.max_concurrent_reconciles,
        request_timeout=settings.api_request_timeout,
        connect_timeout=settings.api_connect_timeout,
    )
    connection = Connection.from_target(
        load(Overrides(kubeconfig=settings.kubeconfig, context=settings.kube_context))
    )
    # What Kopf's login hook will be handed, checked now: a kubeconfig Kopf cannot act on (or a
    # plugin that cannot run) stops the start here, with one line, rather than in Kopf's retries.
    connection_info(connection, await connection.authorization())
    async with contextlib.AsyncExitStack() as stack:
        # Undone in reverse on any exit, a refused start included: "stopped" is logged last.
        stack.callback(logger.info, "operator stopped")
        stack.push_async_callback(kube.close)
        # Logged in before Kopf, so /readyz answers from the start (the plugin does not run
        # again).
        await kube.connect(connection)
        # Asked before Kopf starts, so that credentials the API server refuses stop the start
        # here (`Unauthorized`, after one fresh token if a plugin gives them). Kopf would learn
        # it in several requests at once, and its first refusal closes the session under the
        # others: which error ends the process is then a race (in some runs an AssertionError
        # from aiohttp), not the refusal.
        user = await kube.whoami()
        logger.info(
            "logged in",
            extra={"server": connection.server, "credentials": connection.source, "user": user},
        )
        # From here a signal is a clean stop; before, it ends the process at once, as it would
        # have to wait for a plugin or a login still under way.
        stop.listen()
        health = Health(kube.readiness_problem)
        stack.push_async_callback(
            (await health.serve(settings.bind_address, settings.liveness_port)).cleanup
        )
        stack.push_async_callback(
            (await metrics.serve(settings.bind_address, settings.metrics_port)).cleanup
        )
        logger.info(
            "operator starting",
            extra={
                "namespaces": settings.namespaces or "*",
                "handlers": handlers.__all__,
                "leaderElection": settings.leader_election,
                "metrics": f"http://{settings.bind_address}:{settings.metrics_port}/metrics",
            },
        )
        if settings.leader_election:
            await _lead(settings, kube, health, stop)
        else:
            health.role = "standalone"
            await _kopf(settings, kube, health, stop)


def run(settings: OperatorSettings) -> int:
    """Run the operator in this process until it stops; the process's exit status."""
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(run_operator(settings))
    except (Unauthorized, kopf.LoginError):
        # Refused at the start (`Unauthorized`), or later while Kopf ran: the API server refused
        # the credentials and refused (or Kopf was handed again) what the login hook found next.
        # Kopf's own message suggests installing client libraries, which is not the fix here.
        print(
            "mlops operator run: the API server does not accept the operator's credentials"
            " (the kubeconfig's user, or in a pod its service account)",
            file=sys.stderr,
        )
        return 1
    except (LeadershipLost, CredentialError, ValueError) as error:
        # ValueError: a KubeconfigError naming the file and field, or bad settings.
        print(f"mlops operator run: {error}", file=sys.stderr)
        return 1
    return 0
