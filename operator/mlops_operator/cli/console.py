"""`mlops console`: launch the read-only web console (`mlops_operator.console`) as the caller.

The credentials come from the one loader (`session`), so the console shows what the
kubeconfig's identity may read, or, with ``--as``, what the impersonated user may; in a
pod, the ServiceAccount's. ``-n`` here is the namespaces to show (repeatable), not one to
act in.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from mlops_operator.cli.session import add_cluster_flags, connection, failure

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from mlops_operator.console.server import ConsoleOptions, serve

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    options = ConsoleOptions(
        address=args.address,
        port=args.port,
        namespaces=tuple(args.namespace),
        prometheus_url=args.prometheus_url or None,
        allowed_hosts=tuple(args.allow_host),
    )
    try:
        asyncio.run(serve(options, connection(args)))
    except Exception as error:
        import aiohttp

        if isinstance(error, OSError) and not isinstance(error, aiohttp.ClientError):
            reason: str | None = f"cannot serve on {args.address}:{args.port}: {error}"
        else:
            reason = failure(error)
            if reason is None:
                raise
        print(f"mlops console: {reason}", file=sys.stderr)
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
    add_cluster_flags(parser, namespace=False)
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
