"""Run the operator: logging, the metrics endpoint, then Kopf with the project's handlers.

Kopf owns the process's lifetime: it installs the SIGINT/SIGTERM handlers, serves
the liveness probe (whose check, importing `health` registers, is that the API server
is ready), and on a signal stops watching, lets running handlers finish
(bounded by its own timeouts) and returns; the metrics endpoint is closed after it.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import kopf

from mlops_operator import handlers
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.k8s import KubeClient
from mlops_operator.runtime import health, metrics
from mlops_operator.runtime.settings import LogFormat, LogLevel, OperatorSettings

__all__ = ["configure_logging", "health", "run", "run_operator"]

logger = logging.getLogger(__name__)


def configure_logging(log_format: LogFormat, level: LogLevel) -> None:
    """One record per line; as JSON, each carries the object it is about under ``object``."""
    kopf.configure(
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object",
    )
    logging.getLogger().setLevel(level)
    # One line per liveness probe (every few seconds, forever) drowns everything else.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def run_operator(settings: OperatorSettings) -> None:
    """Serve metrics and run Kopf until it is stopped (SIGTERM, SIGINT, or a fatal error)."""
    # Timers and daemons call the API outside the reconcile slots: room for them too.
    kube = KubeClient(
        connections=2 * settings.max_concurrent_reconciles,
        request_timeout=settings.api_request_timeout,
        connect_timeout=settings.api_connect_timeout,
    )
    runner = await metrics.serve(settings.bind_address, settings.metrics_port)
    logger.info(
        "operator starting",
        extra={
            "namespaces": settings.namespaces or "*",
            "handlers": handlers.__all__,
            "metrics": f"http://{settings.bind_address}:{settings.metrics_port}/metrics",
        },
    )
    try:
        await kopf.operator(
            clusterwide=settings.clusterwide,
            namespaces=settings.namespaces,
            standalone=settings.peering is None,
            peering_name=settings.peering,
            liveness_endpoint=f"http://{settings.bind_address}:{settings.liveness_port}/healthz",
            memo=OperatorContext.create(settings, kube),
        )
    finally:
        await runner.cleanup()
        await kube.close()
        logger.info("operator stopped")


def run(settings: OperatorSettings) -> int:
    """Run the operator in this process until it stops; the process's exit status."""
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(run_operator(settings))
    except kopf.LoginError:
        # Kopf's own message suggests installing client libraries, which is not the fix here.
        print(
            "mlops operator run: no valid Kubernetes credentials; expected the service account's"
            " token in a pod, or a kubeconfig the API server accepts (KUBECONFIG or"
            " ~/.kube/config) outside one",
            file=sys.stderr,
        )
        return 1
    return 0
