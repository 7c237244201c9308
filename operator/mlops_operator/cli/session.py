"""How a command reaches the API server: kubectl's global flags, the one loader, the one client.

Every command that reads or changes objects takes the flags kubectl users know, after the
command (``mlops promote iris --to 3 --context prod --as alice``) or before it (``mlops
--context prod promote iris --to 3``, which is also how ``kubectl mlops --context prod status``
arrives); a flag after the command wins. They become `kubeconfig.Overrides`, the loader
(`mlops_operator.k8s.kubeconfig`) finds the server and credentials exactly as kubectl would
(exec plugins included), and the operator's own `KubeClient` makes the requests, so a
refusal is the API server's `ApiError`, printed as one line and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_operator.k8s import KubeClient
    from mlops_operator.k8s.connection import Connection

__all__ = [
    "FLAGS",
    "Command",
    "add_cluster_flags",
    "add_global_flags",
    "connected",
    "connection",
    "failure",
    "merge_global_flags",
    "overrides",
    "run",
]

FLAGS = (
    "kubeconfig",
    "context",
    "namespace",
    "impersonate",
    "impersonate_groups",
    "impersonate_uid",
)
"""The destinations of the cluster flags, the same before and after the command."""

_GLOBAL = "global_"
"""Prefix of the destinations the flags before the command fill (merged by `merge_global_flags`)."""

_CLUSTER_COMMAND = "reaches_cluster"
"""Set on the commands that take the flags; the others refuse them before the command."""


def _add(parser: argparse.ArgumentParser, prefix: str, *, namespace: bool) -> None:
    group = parser.add_argument_group(
        "cluster access (as kubectl: KUBECONFIG or ~/.kube/config, exec plugins included)"
    )
    group.add_argument(
        "--kubeconfig", dest=f"{prefix}kubeconfig", type=Path, metavar="FILE",
        help="this kubeconfig file alone (default: KUBECONFIG's files merged, ~/.kube/config,"
        " or the pod's ServiceAccount)",
    )  # fmt: skip
    group.add_argument(
        "--context", dest=f"{prefix}context", metavar="NAME",
        help="the kubeconfig context to use (default: its current-context)",
    )  # fmt: skip
    if namespace:
        group.add_argument(
            "-n", "--namespace", dest=f"{prefix}namespace", metavar="NS",
            help="the namespace (default: the context's, else default)",
        )  # fmt: skip
    group.add_argument(
        "--as", dest=f"{prefix}impersonate", metavar="USER",
        help="act as this user (impersonation: RBAC decides for USER; you need the"
        " impersonate verb)",
    )  # fmt: skip
    group.add_argument(
        "--as-group", dest=f"{prefix}impersonate_groups", action="append", metavar="GROUP",
        help="act as a member of GROUP too (repeatable; needs --as)",
    )  # fmt: skip
    group.add_argument(
        "--as-uid", dest=f"{prefix}impersonate_uid", metavar="UID", help="the UID to act as"
    )


def add_cluster_flags(parser: argparse.ArgumentParser, *, namespace: bool = True) -> None:
    """Give a command the cluster flags (without `namespace`, the command has its own -n)."""
    _add(parser, "", namespace=namespace)
    parser.set_defaults(**{_CLUSTER_COMMAND: True})


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """The same flags before the command (`mlops --context prod promote …`)."""
    _add(parser, _GLOBAL, namespace=True)


def merge_global_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill each flag the command was not given from before the command; refuse flags before
    a command that does not reach a cluster as the caller (rather than ignore them)."""
    given = {flag: getattr(args, _GLOBAL + flag) for flag in FLAGS}
    for flag in FLAGS:
        delattr(args, _GLOBAL + flag)
    given = {flag: value for flag, value in given.items() if value is not None}
    if not given:
        return
    if not getattr(args, _CLUSTER_COMMAND, False):
        named = ", ".join(f"--{flag.replace('_', '-')}" for flag in given)
        parser.error(
            f"{named} before the command applies to commands that use your kubeconfig"
            " (promote, rollback, history, approve, reject, reproduce, status, lineage,"
            " console); give this command's own flags after it"
        )
    for flag, value in given.items():
        mine = getattr(args, flag, None)
        if mine in (None, []):
            # The console's -n is a list of namespaces to show: one given before it is one.
            setattr(args, flag, [value] if isinstance(mine, list) else value)


def overrides(args: argparse.Namespace) -> Any:
    """The flags as the loader's `Overrides`."""
    from mlops_operator.k8s.kubeconfig import Overrides

    namespace = getattr(args, "namespace", None)
    return Overrides(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=namespace if isinstance(namespace, str) else None,
        impersonate=args.impersonate,
        impersonate_groups=tuple(args.impersonate_groups or ()),
        impersonate_uid=args.impersonate_uid,
    )


def connection(args: argparse.Namespace) -> Connection:
    """Where the flags and the kubeconfig say to go, and as whom."""
    from mlops_operator.k8s.connection import Connection
    from mlops_operator.k8s.kubeconfig import load

    return Connection.from_target(load(overrides(args)))


@asynccontextmanager
async def connected(
    args: argparse.Namespace, *, field_manager: str = "mlops-cli"
) -> AsyncIterator[tuple[KubeClient, str]]:
    """The client, logged in as the flags say, and the namespace to act in; closed after."""
    from mlops_operator.k8s import KubeClient

    access = connection(args)
    kube = KubeClient(field_manager=field_manager)
    try:
        await kube.connect(access)
        yield kube, access.namespace or "default"
    finally:
        await kube.close()


def failure(error: BaseException) -> str | None:
    """One line saying why a command could not reach or use the cluster; None for a bug."""
    import aiohttp

    from mlops_operator.k8s import ApiError
    from mlops_operator.k8s.execcredential import CredentialError
    from mlops_operator.k8s.kubeconfig import KubeconfigError

    if isinstance(error, ApiError):
        if error.status == 401:
            return f"{error} (the API server did not accept the kubeconfig's credentials)"
        return str(error)
    if isinstance(error, KubeconfigError | CredentialError):
        return str(error)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"the API server's certificate is not trusted: {error.certificate_error}"
    if isinstance(error, aiohttp.ClientError | TimeoutError | OSError):
        return f"cannot reach the API server: {error or type(error).__name__}"
    return None


Command = Callable[["KubeClient", str, argparse.Namespace], Awaitable[int]]


def run(name: str, command: Command) -> Callable[[argparse.Namespace], int]:
    """`command(kube, namespace, args)` as an argparse ``func``: connected, errors as one line."""

    def main(args: argparse.Namespace) -> int:
        import asyncio  # here: `mlops cluster env` and the other local commands start faster

        async def go() -> int:
            async with connected(args) as (kube, namespace):
                return await command(kube, namespace, args)

        try:
            return asyncio.run(go())
        except Exception as error:
            reason = failure(error)
            if reason is None:
                raise
            print(f"mlops {name}: error: {reason}", file=sys.stderr)
            return 1

    return main
