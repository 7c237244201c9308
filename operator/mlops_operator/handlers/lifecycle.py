"""Kopf's own configuration, applied when the operator starts.

The choices, and why:

- **Events are posted only on purpose.** Kopf turns every log record at or above
  ``posting.level`` into a Kubernetes Event, which means one "Handler succeeded"
  Event per handler run at the default INFO. Handlers here post the few Events a
  human should see (a decision, a rejected spec) with ``kopf.event`` and a stable
  reason; everything else goes to the logs, the conditions and the metrics, the
  way controller-runtime's operators behave.
- **Progress and the last-handled state live in annotations** under ``mlops.dev``,
  and stay small: the last-handled spec is a digest (`bookkeeping.SpecDigestStorage`),
  not Kopf's JSON copy of the whole object, so ``kubectl get -o yaml`` shows the
  object, not Kopf's bookkeeping. Kopf's default also writes ``status.kopf``, which
  our typed status schema prunes, so every write there would be wasted.
- **One login, one identity, for Kopf and for the handlers' client.** The operator finds
  its credentials as the CLI does, with the one kubeconfig loader (`k8s.kubeconfig`): the
  kubeconfig outside a pod (``KUBECONFIG`` merged as kubectl merges it, ``--context``,
  client certificates, tokens, exec credential plugins such as ``aws eks get-token``),
  the service account inside one. The handlers' client (``memo.kube``) and the Lease
  renewals use that `k8s.Connection`; Kopf is handed the same credentials as a
  `kopf.ConnectionInfo` by `login`, with their expiry. Kopf asks again when they expire
  or when the API server refuses them (401), and is then handed fresh ones: the plugin
  runs again, unless the handlers' client already ran it for the same reason, so one run
  serves both. Kopf's own readers (``login_with_kubeconfig``) are not used: they do not run
  exec plugins, and a second loader would be a second idea of who the operator is.
- **A dead watch is noticed in about a minute.** Each watch ends server-side after
  ``watch_server_timeout`` (client-side after ``watch_client_timeout`` if that end
  never comes) and is re-opened; one that receives nothing, not even the bookmark
  the API server sends about once a minute, for ``watch_inactivity_timeout`` is
  taken for dead and re-opened, so a connection silently dropped by a NAT or a
  load balancer costs ~70 s, not the 5.5 minutes of the client timeout. Requests
  time out after ``api_request_timeout``. All are `OperatorSettings` (``MLOPS_*``).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mlops_operator.api.metadata import ANNOTATION_PREFIX, FINALIZER
from mlops_operator.handlers.bookkeeping import SpecDigestStorage
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.k8s import Connection
from mlops_operator.k8s.connection import Authorization
from mlops_operator.runtime.settings import OperatorSettings

__all__ = ["configure", "configure_kopf", "connection_info", "login"]

logger = logging.getLogger(__name__)


# Above CRITICAL: no log record becomes an Event; `kopf.event` still posts.
_NO_LOG_EVENTS = logging.CRITICAL + 10

_LOGIN_BACKOFF = 10.0
"""Seconds before Kopf asks again when a login failed (an exec plugin that could not run):
Kopf's requests wait meanwhile, so its default minute is too long for a passing failure."""


def configure_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """Set Kopf's `settings` for this operator from `ours` (see the module docstring for why)."""
    settings.posting.level = _NO_LOG_EVENTS
    settings.posting.reporting_component = "mlops-operator"
    settings.posting.event_name_prefix = "mlops-operator-"

    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX, v1=False
    )
    settings.persistence.diffbase_storage = SpecDigestStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.finalizer = FINALIZER

    settings.watching.server_timeout = ours.watch_server_timeout
    settings.watching.client_timeout = ours.watch_client_timeout
    settings.watching.inactivity_timeout = ours.watch_inactivity_timeout
    settings.watching.connect_timeout = ours.api_connect_timeout
    settings.networking.request_timeout = ours.api_request_timeout
    settings.networking.connect_timeout = ours.api_connect_timeout


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: OperatorContext, **_: Any) -> None:
    """Kopf's startup hook: apply `configure_kopf` with the operator's settings."""
    configure_kopf(settings, memo.settings)


def connection_info(connection: Connection, authorization: Authorization) -> kopf.ConnectionInfo:
    """What Kopf needs to act as `connection` does with `authorization`.

    A `kopf.ConnectionInfo` carries the server, its trust, and one ``Authorization`` header or
    a client certificate, nothing else. A connection that needs more (impersonation headers,
    a TLS server name other than the URL's host) is a ValueError saying so: Kopf would act as
    another identity than the handlers, or not connect at all.
    """
    if connection.impersonation.user is not None:
        raise ValueError(
            f"{connection.source} impersonates {connection.impersonation.user!r} (the user's"
            " `as`): the operator's watches (Kopf's) cannot send Impersonate-* headers, so"
            " they would act as another identity than its handlers; give the operator a"
            " credential of that identity itself (e.g. a token of its ServiceAccount)"
        )
    if connection.tls_server_name:
        raise ValueError(
            f"{connection.source} sets tls-server-name {connection.tls_server_name!r}: the"
            " operator's watches (Kopf's) can only check the server's certificate against the"
            " host of its URL; name the server by a host its certificate carries"
        )
    scheme = token = None
    for name, value in authorization.headers:
        if name == "Authorization":
            # "Bearer <token>" or "Basic <base64>": Kopf writes back `scheme token`.
            scheme, _, token = value.partition(" ")
    certificate, key = authorization.identity or (None, None)
    return kopf.ConnectionInfo(
        server=connection.server,
        ca_data=connection.ca_data,
        insecure=connection.insecure,
        scheme=scheme,
        token=token,
        certificate_data=certificate,
        private_key_data=key,
        default_namespace=connection.namespace,
        proxy_url=connection.proxy_url,
        trust_env=connection.trust_env,
        expiration=authorization.expires,
    )


@kopf.on.login(backoff=_LOGIN_BACKOFF)
async def login(memo: OperatorContext, **_: Any) -> kopf.ConnectionInfo:
    """Kopf's login hook: the handlers' credentials, fresh ones when Kopf asks again.

    Kopf calls it at start, once the credentials it holds expire, and after the API server
    refused them (401); in the last two cases those are handed in as refused, so that the
    plugin runs again unless the handlers' client already replaced them.
    """
    authorization = await memo.kube.connection.authorization(refused=memo.login.handed)
    info = connection_info(memo.kube.connection, authorization)
    memo.login.handed = authorization
    return info
