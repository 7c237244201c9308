"""The console's web application: server-rendered pages from the watched objects, read only.

Every route is a GET; the app has no handler that writes, and the identity it reads
with decides what exists for it. Pages are rendered with Jinja2 (autoescaped) from
`views`, and refresh themselves: each page polls its own URL with ``?since=<revision>``
every two seconds (htmx), and the server answers 204 while the store has not changed,
or the page's new content as soon as it has. The assets (htmx, uPlot, the stylesheet)
are files of this package: nothing is fetched from elsewhere, which the Content
Security Policy also enforces.

A request must name this server in its ``Host`` header (localhost by default, or the
names given): a web page elsewhere cannot use the browser to read the console through
DNS rebinding.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from mlops_operator import __version__
from mlops_operator.console import graph as loop
from mlops_operator.console import views
from mlops_operator.console.formatting import FILTERS
from mlops_operator.console.series import live_version_chart, policy_charts
from mlops_operator.console.store import Snapshot, Store
from mlops_operator.prometheus import PrometheusClient

__all__ = ["LOCAL_HOSTS", "POLL_SECONDS", "build_app"]

HERE = Path(__file__).parent
POLL_SECONDS = 2
"""How often an open page asks whether anything changed."""
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class _Console:
    """What the handlers read: the store, Prometheus (optional), templates, allowed hosts."""

    store: Store
    prometheus: PrometheusClient | None
    templates: jinja2.Environment
    hosts: frozenset[str]


_CONSOLE = web.AppKey("console", _Console)
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _environment(assets: web.AbstractResource) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)

    @functools.cache
    def asset(name: str) -> str:
        """The asset's URL with its content's hash, so browsers may cache it for good."""
        return str(assets.url_for(filename=name))

    env.globals.update(
        package_version=__version__, poll_seconds=POLL_SECONDS, quote=quote, asset=asset
    )
    return env


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    if "*" in allowed:
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in allowed or host in allowed


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse foreign Host headers and anything but reading; add the security headers."""
    if request.path != "/healthz" and not _host_allowed(request.host, request.app[_CONSOLE].hosts):
        raise web.HTTPMisdirectedRequest(
            text=f"this console answers to {', '.join(sorted(request.app[_CONSOLE].hosts))}, not"
            f" {request.host!r}; start it with --allow-host {request.host.rsplit(':', 1)[0]}"
        )
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(
            request.method, ["GET", "HEAD"], text="the console is read only"
        )
    response = await handler(request)
    response.headers.update(_SECURITY_HEADERS)
    if request.path.startswith("/static/") and "v" in request.query:
        # Asset URLs carry their content's hash (`asset`): a new version is a new URL.
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def _page(
    request: web.Request, template: str, http_status: int = 200, **context: Any
) -> web.Response:
    """Render `template` (only its live part for a poll); 204 when a poll finds no change."""
    snapshot: Snapshot = context.pop("snapshot", None) or request.app[_CONSOLE].store.snapshot()
    partial = "since" in request.query
    if partial and request.query.get("since") == str(snapshot.revision):
        return web.Response(status=204)
    # The page polls its own URL (its query kept) with the revision it shows.
    query = [(k, v) for k, v in request.query.items() if k != "since"]
    poll = urlencode([*query, ("since", str(snapshot.revision))])
    page = request.app[_CONSOLE].templates.get_template(template)
    html = page.render(
        snapshot=snapshot,
        scope=snapshot.scope,
        poll_url=f"{request.path}?{poll}",
        partial=partial,
        now=datetime.now(UTC),
        **context,
    )
    return web.Response(text=html, content_type="text/html", status=http_status)


def _missing(request: web.Request, kind: str, namespace: str, name: str) -> web.Response:
    snapshot = request.app[_CONSOLE].store.snapshot()
    refusal = snapshot.refusal(kind, namespace)
    if refusal is not None or not snapshot.scope.covers(namespace):
        message = refusal or (
            f"namespace {namespace} is outside what this console reads ({snapshot.scope.how})"
        )
        return _page(
            request,
            "missing.html",
            403,
            kind=kind,
            name=name,
            namespace=namespace,
            message=message,
            snapshot=snapshot,
        )
    message = f"no {kind} {name} in namespace {namespace}" + (
        "" if snapshot.synced else " yet: the console is still reading the cluster"
    )
    return _page(
        request,
        "missing.html",
        404,
        kind=kind,
        name=name,
        namespace=namespace,
        message=message,
        snapshot=snapshot,
    )


async def models(request: web.Request) -> web.Response:
    """Every model: its versions with phase, metrics, gates and approval."""
    snapshot = request.app[_CONSOLE].store.snapshot()
    namespace = request.query.get("namespace") or None
    return _page(
        request,
        "models.html",
        snapshot=snapshot,
        groups=views.model_groups(snapshot, namespace),
        namespace=namespace,
    )


async def version(request: web.Request) -> web.Response:
    """One ModelVersion: lineage, model card, validation report."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    page = views.version_page(request.app[_CONSOLE].store.snapshot(), namespace, name)
    if page is None:
        return _missing(request, "ModelVersion", namespace, name)
    return _page(request, "version.html", namespace=namespace, **page)


async def deployment(request: web.Request) -> web.Response:
    """One ModelDeployment: champion, challenger, rollout, what was live when."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    now = datetime.now(UTC)
    page = views.deployment_page(request.app[_CONSOLE].store.snapshot(), namespace, name, now)
    if page is None:
        return _missing(request, "ModelDeployment", namespace, name)
    chart = live_version_chart(page["periods"], now)
    return _page(request, "deployment.html", namespace=namespace, live_chart=chart, **page)


async def policy(request: web.Request) -> web.Response:
    """One DriftPolicy: triggers, cooldown, budget, and its values over time."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    snapshot = request.app[_CONSOLE].store.snapshot()
    if "since" in request.query and request.query["since"] == str(snapshot.revision):
        return web.Response(status=204)  # before any query to Prometheus
    page = views.policy_page(snapshot, namespace, name)
    if page is None:
        return _missing(request, "DriftPolicy", namespace, name)
    client = request.app[_CONSOLE].prometheus
    charts, source = await policy_charts(client, page["policy"], page["model"], datetime.now(UTC))
    return _page(
        request,
        "policy.html",
        snapshot=snapshot,
        namespace=namespace,
        charts=charts,
        chart_source=source,
        **page,
    )


async def loop_page(request: web.Request) -> web.Response:
    """One model's loop as a graph."""
    namespace, model = request.match_info["namespace"], request.match_info["model"]
    snapshot = request.app[_CONSOLE].store.snapshot()
    if snapshot.refusal("ModelVersion", namespace) or not snapshot.scope.covers(namespace):
        return _missing(request, "model", namespace, model)
    prefix = f"/ns/{quote(namespace, safe='')}"
    graph = loop.loop_graph(snapshot, namespace, model, prefix)
    if not graph.nodes:
        return _missing(request, "model", namespace, model)
    return _page(
        request,
        "loop.html",
        snapshot=snapshot,
        namespace=namespace,
        model=model,
        graph=graph,
        node_width=loop.NODE_WIDTH,
        node_height=loop.NODE_HEIGHT,
    )


async def health(request: web.Request) -> web.Response:
    """200 once every watch has listed its objects (refusals count as listed), else 503."""
    snapshot = request.app[_CONSOLE].store.snapshot()
    if not snapshot.synced:
        return web.Response(status=503, text="reading the cluster\n")
    return web.Response(text=f"ok revision={snapshot.revision}\n")


def build_app(
    store: Store, *, prometheus: PrometheusClient | None, hosts: Iterable[str] = LOCAL_HOSTS
) -> web.Application:
    """The console's aiohttp application over `store`."""
    app = web.Application(middlewares=[_guard])
    assets = app.router.add_static("/static", HERE / "static", append_version=True)
    app[_CONSOLE] = _Console(store, prometheus, _environment(assets), frozenset(hosts))
    app.router.add_get("/", models)
    app.router.add_get("/ns/{namespace}/versions/{name}", version)
    app.router.add_get("/ns/{namespace}/deployments/{name}", deployment)
    app.router.add_get("/ns/{namespace}/driftpolicies/{name}", policy)
    app.router.add_get("/ns/{namespace}/models/{model}/loop", loop_page)
    app.router.add_get("/healthz", health)
    return app
