"""The operator's outbound clients follow no redirect and read no more than their limit.

Aspects: a scrape answered with a redirect (to an address the pod chose) is refused without
following it; a scrape or a Prometheus answer longer than the limit is refused; the
Prometheus client refuses a redirect too; within the limits both read normally. A local
aiohttp server on loopback plays the pod and Prometheus, and counts what reaches the
redirect's target.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mlops_operator.prometheus import PrometheusClient, PrometheusError, ScrapeError
from mlops_operator.prometheus.scrape import scrape

EXPOSITION = "# TYPE x counter\nx_total 1\n"
VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, list[str]]]:
    reached: list[str] = []

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=EXPOSITION)

    async def huge(_: web.Request) -> web.Response:
        return web.Response(text=EXPOSITION + "# " + "x" * 4096 + "\n")

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.Response(text=EXPOSITION)

    async def query(_: web.Request) -> web.Response:
        return web.Response(text=json.dumps(VECTOR), content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/huge", huge)
    app.router.add_get("/redirect", redirect)
    app.router.add_route("*", "/elsewhere", elsewhere)
    app.router.add_post("/ok/api/v1/query", query)
    app.router.add_post("/moved/api/v1/query", redirect)
    app.router.add_post("/big/api/v1/query", huge)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server, reached
    await test_server.close()


async def test_scrapes_follow_no_redirect_and_read_at_most_the_limit(
    server: tuple[TestServer, list[str]],
) -> None:
    running, reached = server
    base = str(running.make_url(""))
    samples = await scrape(f"{base}/metrics", max_bytes=1024)
    assert [s.name for s in samples] == ["x_total"]
    with pytest.raises(
        ScrapeError, match=r"answered a redirect \(HTTP 302 to /elsewhere\); not followed"
    ):
        await scrape(f"{base}/redirect")
    with pytest.raises(ScrapeError, match="answered more than 1024 bytes; not read"):
        await scrape(f"{base}/huge", max_bytes=1024)
    assert reached == []


async def test_prometheus_queries_follow_no_redirect_and_read_at_most_the_limit(
    server: tuple[TestServer, list[str]],
) -> None:
    running, reached = server
    base = str(running.make_url("")).rstrip("/")
    client = PrometheusClient(f"{base}/ok", max_bytes=1024)
    assert await client.query("up") == []
    moved = PrometheusClient(f"{base}/moved")
    with pytest.raises(PrometheusError, match="answered a redirect"):
        await moved.query("up")
    big = PrometheusClient(f"{base}/big", max_bytes=1024)
    with pytest.raises(PrometheusError, match="answered more than 1024 bytes"):
        await big.query("up")
    for opened in (client, moved, big):
        await opened.close()
    assert reached == []
