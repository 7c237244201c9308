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
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
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

__all__ = [
    "ACTIVE_WORKERS",
    "RECONCILE_ERRORS",
    "RECONCILE_TIME",
    "RECONCILE_TOTAL",
    "REGISTRY",
    "TERMINAL_RECONCILE_ERRORS",
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
