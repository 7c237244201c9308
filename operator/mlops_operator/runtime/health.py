"""The operator's probes: ``/healthz`` is its own health, ``/readyz`` whether it can work now.

Liveness must not depend on the API server: a kubelet restarts a container whose liveness
fails, and restarting every operator replica through an API-server or etcd outage only adds
load when the control plane comes back and loses the standby's warm state. Kopf's watches
and the handlers recover by themselves once the API answers again
(``tests/integration/reliability/test_control_plane_faults.py`` shows it). So:

- ``GET /healthz`` answers 200 while the process's own parts run: the event loop (which
  answers the request at all) and the tasks the operator cannot work without (Kopf's
  operator task while leading, the leader election while waiting or leading). A task that
  ended (crashed) makes it answer 500 with its name, and the kubelet restarts the pod.
- ``GET /readyz`` answers 200 when the API server answers its own ``/readyz`` (which fails
  while it has lost etcd too), else 500 with the reason: the pod shows NotReady through an
  outage and nothing restarts. Its body says whether this replica leads or stands by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["PROBE_TIMEOUT", "Health"]

PROBE_TIMEOUT = 3.0
"""Seconds ``/readyz`` waits for the API server: well below the chart's probe timeout (5 s)."""


class Health:
    """What the probes report; `serve` exposes it over HTTP."""

    def __init__(self, api_problem: Callable[[float], Awaitable[str | None]]) -> None:
        self._api_problem = api_problem
        self.role = "starting"
        self._vital: dict[str, asyncio.Task[object]] = {}

    def watch(self, name: str, task: asyncio.Task[object]) -> None:
        """Count `task` as vital: /healthz fails once it has ended."""
        self._vital[name] = task

    def forget(self, name: str) -> None:
        """Stop counting the task `name` (it was meant to end)."""
        self._vital.pop(name, None)

    def problem(self) -> str | None:
        """Why the process is not healthy, or None."""
        for name, task in self._vital.items():
            if task.done():
                error = None if task.cancelled() else task.exception()
                return f"{name} has stopped" + (f": {error!r}" if error else "")
        return None

    async def _healthz(self, _: web.Request) -> web.Response:
        problem = self.problem()
        if problem is not None:
            return web.Response(status=500, text=f"unhealthy: {problem}\n")
        return web.Response(text=f"ok ({self.role})\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        problem = self.problem() or await self._api_problem(PROBE_TIMEOUT)
        if problem is not None:
            return web.Response(status=500, text=f"not ready ({self.role}): {problem}\n")
        return web.Response(text=f"ready ({self.role})\n")

    async def serve(self, host: str, port: int) -> web.AppRunner:
        """Serve ``/healthz`` and ``/readyz`` on `host`:`port` until the runner is cleaned up."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner
