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
- **One login for Kopf and for the handlers' client**: the service account in a
  pod, the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) outside one, as
  `kopf.ConnectionInfo`, handed to both. Kopf's own minimal kubeconfig reader is
  used, so exec-plugin credentials (cloud CLIs) are not supported out of cluster.
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

from mlops_operator.api.metadata import ANNOTATION_PREFIX
from mlops_operator.handlers.bookkeeping import SpecDigestStorage
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.runtime.settings import OperatorSettings

__all__ = ["configure", "configure_kopf", "credentials", "login"]

logger = logging.getLogger(__name__)


# Above CRITICAL: no log record becomes an Event; `kopf.event` still posts.
_NO_LOG_EVENTS = logging.CRITICAL + 10


def configure_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """Set Kopf's `settings` for this operator from `ours` (see the module docstring for why)."""
    settings.posting.level = _NO_LOG_EVENTS
    settings.posting.reporting_component = "mlops-operator"
    settings.posting.event_name_prefix = "mlops-operator-"

    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX, v1=False
    )
    settings.persistence.diffbase_storage = SpecDigestStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"

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


def credentials(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """The service account's credentials in a pod, else the kubeconfig's; None (logged) if neither."""
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        logger.error(
            "no Kubernetes credentials: no service-account token (not in a pod?) and no "
            "kubeconfig; set KUBECONFIG or create ~/.kube/config"
        )
    return info


@kopf.on.login()
async def login(
    settings: kopf.OperatorSettings, memo: OperatorContext, **_: Any
) -> kopf.ConnectionInfo | None:
    """Kopf's login hook (also on re-login): resolve credentials and share them with `memo.kube`."""
    info = credentials(settings)
    if info is None:
        return None
    await memo.kube.connect(info)
    return info
