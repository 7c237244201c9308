"""``mlops console``: serve the read-only web console with the caller's credentials.

Out of a cluster it logs in with the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``,
its current context), so the API server's RBAC decides what the person running it
sees; in a pod (the chart's ``console.enabled``) with the pod's ServiceAccount, which
the chart binds to read-only rules. It listens on localhost unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ConsoleOptions", "register", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsoleOptions:
    """Where to listen, what to read, and where Prometheus is."""

    address: str = "127.0.0.1"
    port: int = 8090
    namespaces: Sequence[str] = ()
    prometheus_url: str | None = None
    allowed_hosts: Sequence[str] = ()


def _login() -> Any:
    import kopf

    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise SystemExit(
            "mlops console: no Kubernetes credentials: no kubeconfig (set KUBECONFIG or create"
            " ~/.kube/config) and not in a pod"
        )
    return info


async def serve(options: ConsoleOptions, *, ready: asyncio.Event | None = None) -> None:
    """Log in, decide the scope, start the watches and serve until SIGTERM or SIGINT."""
    from aiohttp import web

    from mlops_operator.console.app import LOCAL_HOSTS, build_app
    from mlops_operator.console.store import Store, discover, run_watches
    from mlops_operator.k8s import KubeClient
    from mlops_operator.prometheus import PrometheusClient

    info = _login()
    kube = KubeClient(field_manager="mlops-console")
    await kube.connect(info)
    prometheus = PrometheusClient(options.prometheus_url) if options.prometheus_url else None
    runner: web.AppRunner | None = None
    watches: asyncio.Task[None] | None = None
    try:
        scope = await discover(kube, options.namespaces, info.default_namespace)
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


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    options = ConsoleOptions(
        address=args.address,
        port=args.port,
        namespaces=tuple(args.namespace),
        prometheus_url=args.prometheus_url or None,
        allowed_hosts=tuple(args.allow_host),
    )
    try:
        asyncio.run(serve(options))
    except OSError as error:
        print(
            f"mlops console: cannot serve on {args.address}:{args.port}: {error}", file=sys.stderr
        )
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add `console`."""
    parser = subparsers.add_parser(
        "console",
        help="a read-only web console: models, versions, lineage, rollouts, drift, the loop",
        description="Serve a read-only web console of the mlops objects your kubeconfig's"
        " identity may read (its RBAC decides), live: pages follow changes within seconds.",
    )
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default: localhost only)"
    )
    parser.add_argument("--port", type=int, default=8090, help="port (default: 8090)")
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="a namespace to show (repeatable); default: every namespace RBAC lets you read",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument(
        "--prometheus-url",
        default=os.environ.get("PROMETHEUS_URL", ""),
        help="Prometheus for the drift charts (default: $PROMETHEUS_URL; without one the"
        " charts show the policies' last evaluations)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="another name the console may be reached by (repeatable; `*` for any, behind an"
        " Ingress); by default only localhost, against DNS rebinding",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the watches")
    parser.set_defaults(func=_run)
