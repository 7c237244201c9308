"""The evaluator's loop: join every `interval_seconds`, serve the latest numbers on ``/metrics``.

The join runs in a worker thread (DuckDB releases the GIL), so ``/metrics`` and the
probes answer while it works. A failed join (the store unreachable, a torn file) is
logged and counted, and the previous snapshot keeps being served: consumers see
the evaluation time stop advancing rather than numbers that lie.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import duckdb
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from mlops_operator.evaluator.join import connect, join_windows
from mlops_operator.evaluator.metrics import Snapshot, render
from mlops_operator.evaluator.settings import EvaluatorSettings
from mlops_operator.evaluator.windows import judge

__all__ = ["Evaluator", "run"]

log = logging.getLogger(__name__)


class Evaluator:
    """Joins the logs of one deployment and keeps the latest `Snapshot`."""

    def __init__(self, settings: EvaluatorSettings) -> None:
        self.settings = settings
        self.snapshot = Snapshot(model=settings.model_name)
        self.joins = 0
        self._con = connect(memory_limit=settings.memory_limit)

    def evaluate(self, now: float | None = None) -> Snapshot:
        """One join and judgement at `now` (Unix seconds); the new snapshot."""
        settings = self.settings
        started = time.perf_counter()
        now = time.time() if now is None else now
        now_ms = int(now * 1000)
        since_ms = now_ms - int(settings.retention_seconds * 1000)
        if settings.not_before is not None:
            since_ms = max(since_ms, int(settings.not_before * 1000))
        windows, totals = join_windows(
            self._con,
            settings.labels_uri,
            window_ms=int(settings.window_seconds * 1000),
            since_ms=since_ms,
        )
        versions = judge(
            windows,
            now_ms=now_ms,
            min_coverage=settings.min_label_coverage,
            max_delay_ms=int(settings.max_label_delay_seconds * 1000),
        )
        self.snapshot = Snapshot(
            settings.model_name, versions, totals, time.time(), time.perf_counter() - started
        )
        self.joins += 1
        return self.snapshot

    async def evaluate_forever(self) -> None:
        """Join now, then every `interval_seconds`."""
        while True:
            try:
                await asyncio.to_thread(self.evaluate)
            except (duckdb.Error, OSError) as error:
                log.warning("join failed (serving the previous numbers): %s", error)
            await asyncio.sleep(self.settings.interval_seconds)

    def application(self) -> web.Application:
        """``/metrics``, ``/v2/health/live`` and ``/v2/health/ready`` (after the first join)."""

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=render(self.snapshot), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        async def live(_: web.Request) -> web.Response:
            return web.json_response({"live": True})

        async def ready(_: web.Request) -> web.Response:
            joined = self.joins > 0
            return web.json_response({"ready": joined}, status=200 if joined else 503)

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/v2/health/live", live)
        app.router.add_get("/v2/health/ready", ready)
        return app


async def _serve(settings: EvaluatorSettings) -> None:
    evaluator = Evaluator(settings)
    runner = web.AppRunner(evaluator.application(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    log.info("evaluating %s every %gs", settings.labels_uri, settings.interval_seconds)
    task = asyncio.get_running_loop().create_task(evaluator.evaluate_forever())
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await runner.cleanup()


def run(settings: EvaluatorSettings | None = None, **overrides: Any) -> int:
    """Serve until SIGTERM; the exit code."""
    settings = settings or EvaluatorSettings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(_serve(settings))
    return 0
