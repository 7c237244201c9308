"""The operator's own Prometheus metrics, named as controller-runtime names them.

Go operators built on controller-runtime expose ``controller_runtime_reconcile_*``;
dashboards and alerts for them (kube-prometheus, the Operator SDK's) select on
those names and on the ``controller`` label. Using the same names and labels lets
them watch this operator unchanged. ``controller`` is the lowercase kind, as
controller-runtime names a controller by default.

Kopf's outcomes map onto controller-runtime's results:

- the handler returns: ``success``;
- it raises ``kopf.TemporaryError`` (a planned retry with a delay, Kopf's
  ``RequeueAfter``): ``requeue_after``;
- it raises ``kopf.PermanentError`` (a spec that cannot work until a human
  changes it, controller-runtime's ``TerminalError``): ``error``, counted in the
  errors and the terminal errors;
- any other exception (Kopf retries it with backoff): ``error``.

The decisions themselves are counted too (``mlops_promotions_total``,
``mlops_rollbacks_total``, ``mlops_retrains_total``, see docs/metrics.md): the
controllers call `count_deployment_decisions` and `count_retrain` once the status
write that records a decision succeeded, and only for entries that status did not
hold before, so a handler that runs again after a crash does not count twice.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ParamSpec

import kopf
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from mlops_operator.api.conditions import Reason
from mlops_operator.api.modeldeployment import HistoryAction, HistoryEntry

__all__ = [
    "ACTIVE_WORKERS",
    "PROMOTIONS",
    "RECONCILE_ERRORS",
    "RECONCILE_TIME",
    "RECONCILE_TOTAL",
    "REGISTRY",
    "RETRAINS",
    "ROLLBACKS",
    "TERMINAL_RECONCILE_ERRORS",
    "count_deployment_decisions",
    "count_retrain",
    "reconciler",
    "serve",
]

P = ParamSpec("P")

# controller-runtime has no `*_created` series; without them the scrape matches its shape.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Its own registry, so that the endpoint shows exactly the operator's metrics (plus
# the process ones every exporter has) whatever else the process imports.
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# controller-runtime's buckets for reconcile_time_seconds (pkg/internal/controller/metrics).
_RECONCILE_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5),
    *(6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60),
)

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller",
    ["controller", "result"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller",
    ["controller"],
    registry=REGISTRY,
)
TERMINAL_RECONCILE_ERRORS = Counter(
    "controller_runtime_terminal_reconcile_errors_total",
    "Total number of terminal reconciliation errors per controller",
    ["controller"],
    registry=REGISTRY,
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller",
    ["controller"],
    buckets=_RECONCILE_BUCKETS,
    registry=REGISTRY,
)
ACTIVE_WORKERS = Gauge(
    "controller_runtime_active_workers",
    "Number of currently used workers per controller",
    ["controller"],
    registry=REGISTRY,
)


# The model's namespace has a label of its own: Prometheus keeps the scraped pod's `namespace`.
PROMOTIONS = Counter(
    "mlops_promotions_total",
    "Versions promoted to champion per ModelDeployment",
    ["model_namespace", "model", "deployment"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "mlops_rollbacks_total",
    "Versions taken out of service per ModelDeployment, by reason",
    ["model_namespace", "model", "deployment", "reason"],
    registry=REGISTRY,
)
RETRAINS = Counter(
    "mlops_retrains_total",
    "TrainingJobs started by a DriftPolicy, by the first trigger that fired",
    ["model_namespace", "model", "policy", "trigger"],
    registry=REGISTRY,
)


def _restores_breach(history: Sequence[HistoryEntry], index: int) -> bool:
    """Whether the Rollback at `index` finishes a floor breach already counted as its Abort."""
    older = history[index + 1] if index + 1 < len(history) else None
    return older is not None and (older.action, older.reason) == (
        HistoryAction.ABORT,
        Reason.FLOOR_BREACHED.value,
    )


def count_deployment_decisions(
    namespace: str,
    model: str,
    deployment: str,
    before: Sequence[HistoryEntry],
    after: Sequence[HistoryEntry],
) -> None:
    """Count the entries of `after` (a history just written, newest first) absent from `before`.

    ``Promote`` is a promotion. ``Rollback`` (back to an earlier version) and
    ``Abort`` (a challenger withdrawn, or a champion breaching a floor) are
    rollbacks labelled with the entry's reason; the ``Rollback`` that completes a
    floor breach is the same rollback as its ``Abort`` and is not counted again.
    ``Deploy`` (the first version) is neither.
    """
    for index, entry in enumerate(after):
        if entry in before:
            continue
        if entry.action is HistoryAction.PROMOTE:
            PROMOTIONS.labels(namespace, model, deployment).inc()
        elif entry.action is HistoryAction.ABORT or (
            entry.action is HistoryAction.ROLLBACK and not _restores_breach(after, index)
        ):
            ROLLBACKS.labels(namespace, model, deployment, entry.reason).inc()


def count_retrain(namespace: str, model: str, policy: str, fired: Sequence[str]) -> None:
    """Count one retrain, labelled with the first trigger that fired (``unknown`` if none)."""
    RETRAINS.labels(namespace, model, policy, fired[0] if fired else "unknown").inc()


def _result_of(error: BaseException | None) -> str:
    if error is None:
        return "success"
    if isinstance(error, kopf.TemporaryError):
        return "requeue_after"
    return "error"


def _record(controller: str, error: BaseException | None, seconds: float) -> None:
    RECONCILE_TOTAL.labels(controller=controller, result=_result_of(error)).inc()
    RECONCILE_TIME.labels(controller=controller).observe(seconds)
    if error is not None and not isinstance(error, kopf.TemporaryError):
        RECONCILE_ERRORS.labels(controller=controller).inc()
        if isinstance(error, kopf.PermanentError):
            TERMINAL_RECONCILE_ERRORS.labels(controller=controller).inc()


def reconciler(
    controller: str,
) -> Callable[[Callable[P, Awaitable[None]]], Callable[P, Coroutine[Any, Any, None]]]:
    """Count, time and classify every run of the decorated handler under `controller`.

    Put it below Kopf's decorators, so Kopf registers the measured function; the
    handler keeps its name (and so its Kopf handler id) through ``functools.wraps``.
    """

    def decorate(handler: Callable[P, Awaitable[None]]) -> Callable[P, Coroutine[Any, Any, None]]:
        # Pre-create the series, so dashboards show zeros before the first reconcile.
        for result in ("success", "error", "requeue_after"):
            RECONCILE_TOTAL.labels(controller=controller, result=result)
        for metric in (RECONCILE_ERRORS, TERMINAL_RECONCILE_ERRORS, RECONCILE_TIME, ACTIVE_WORKERS):
            metric.labels(controller=controller)

        @functools.wraps(handler)
        async def measured(*args: P.args, **kwargs: P.kwargs) -> None:
            started = time.perf_counter()
            error: BaseException | None = None
            with ACTIVE_WORKERS.labels(controller=controller).track_inprogress():
                try:
                    await handler(*args, **kwargs)
                except Exception as exc:
                    error = exc
                    raise
                finally:
                    _record(controller, error, time.perf_counter() - started)

        return measured

    return decorate


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def serve(host: str, port: int) -> web.AppRunner:
    """Serve ``GET /metrics`` on `host`:`port` in the running event loop until the runner is cleaned up."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    # A scrape in flight at shutdown gets a second; the operator must not hang on it.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
