"""Serving the read-only web console with the caller's credentials (``mlops console``).

`serve` is handed a `Connection` by the command (`mlops_operator.cli.console`), which
the one kubeconfig loader made: out of a cluster from the kubeconfig (``KUBECONFIG`` or
``~/.kube/config``; ``--context``, exec plugins and ``--as`` as in kubectl), so the API
server's RBAC decides what the person running it sees; in a pod (the chart's
``console.enabled``) from the pod's ServiceAccount, which the chart binds to read-only
rules. It listens on localhost unless told otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_operator.k8s.connection import Connection

__all__ = ["ConsoleOptions", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsoleOptions:
    """Where to listen, what to read, and where Prometheus is."""

    address: str = "127.0.0.1"
    port: int = 8090
    namespaces: Sequence[str] = ()
    prometheus_url: str | None = None
    allowed_hosts: Sequence[str] = ()


async def serve(
    options: ConsoleOptions, access: Connection, *, ready: asyncio.Event | None = None
) -> None:
    """Log in with `access`, decide the scope, start the watches and serve until SIGTERM or
    SIGINT."""
    from aiohttp import web

    from mlops_operator.console.app import LOCAL_HOSTS, build_app
    from mlops_operator.console.store import Store, discover, run_watches
    from mlops_operator.k8s import KubeClient
    from mlops_operator.prometheus import PrometheusClient

    kube = KubeClient(field_manager="mlops-console")
    await kube.connect(access)
    prometheus = PrometheusClient(options.prometheus_url) if options.prometheus_url else None
    runner: web.AppRunner | None = None
    watches: asyncio.Task[None] | None = None
    try:
        scope = await discover(kube, options.namespaces, access.namespace)
        store = Store(scope)
        hosts = (*LOCAL_HOSTS, *options.allowed_hosts)
        runner = web.AppRunner(build_app(store, prometheus=prometheus, hosts=hosts))
        await runner.setup()
        await web.TCPSite(runner, options.address, options.port).start()
        watches = asyncio.create_task(run_watches(kube, store))
        where = "every namespace" if scope.namespaces is None else ", ".join(scope.namespaces)
        print(
            f"mlops console: http://{options.address}:{options.port}/ reading {where}"
            f" ({scope.how}); Prometheus: {options.prometheus_url or 'none'}",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        if watches is not None:
            watches.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watches
        if runner is not None:
            await runner.cleanup()
        if prometheus is not None:
            await prometheus.close()
        await kube.close()
