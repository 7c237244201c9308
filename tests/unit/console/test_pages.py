"""The console's pages over a store holding a whole loop, through the real aiohttp app.

Aspects: each page answers 200 and shows what it promises (versions with phase, metrics,
gates and approval; a version's lineage back to its dataset and parent, its retrain and
why, its model card and validation report; a deployment's champion, steps, history with
the rollback and what was live when; a policy's triggers, cooldown, budget and charts with
points; the loop graph's edges); a poll answers 204 until the store changes, then the new
content; absent objects are 404 and namespaces the identity may not read 403 with the API
server's refusal; anything but GET is refused; a foreign Host header is refused (DNS
rebinding); every answer carries the Content-Security-Policy; /healthz is 503 until every
watch has listed.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mlops_operator.console.app import build_app
from mlops_operator.console.store import Scope, Store
from tests.unit.console.objects import NS, SHA2, loop_store, version


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(build_app(loop_store(), prometheus=None))) as running:
        yield running


async def page(client: TestClient, path: str, status: int = 200) -> str:  # type: ignore[type-arg]
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    return text


def chart_data(markup: str, chart: str) -> Any:
    """The data a chart hands to uPlot, from its element's attribute."""
    found = re.search(rf"data-chart=\"{chart}\" data-series='(.*?)'", markup)
    assert found is not None, f"no chart {chart}"
    return json.loads(html.unescape(found.group(1)))


def text_of(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


async def test_models_show_each_version_with_phase_metrics_gates_and_roles(
    client: TestClient,
) -> None:  # type: ignore[type-arg]
    html = await page(client, "/")
    words = text_of(html)
    assert "Versions of iris, newest first (2)" in words
    assert words.index("iris-v2") < words.index("iris-v1")
    assert "Validated" in words
    assert "accuracy 0.92" in words
    assert "2/2 passed" in words
    assert "champion" in words
    assert "served before" in words
    assert 'href="/ns/ml/versions/iris-v2"' in html
    assert 'href="/ns/ml/models/iris/loop"' in html


async def test_a_version_shows_its_lineage_back_to_the_dataset_and_its_parent(
    client: TestClient,
) -> None:  # type: ignore[type-arg]
    html = await page(client, f"/ns/{NS}/versions/iris-v2")
    words = text_of(html)
    assert SHA2 in words
    assert f"payloadlog://{NS}/iris?window=1m" in words
    assert "iris-1a2b" in words
    assert 'id="parent-version" href="/ns/ml/versions/iris-v1"' in html
    assert "started by drift policy iris" in words
    assert "triggered by featureDrift = 1 (threshold 0.5)" in words
    assert "featureDrift = 1" in words
    assert "accuracy = 0.61" in words
    # Model card and validation report.
    assert "classification" in words
    assert "petal_length" in words
    assert "opset 17" in words
    assert "accuracy >= 0.85" in words
    assert "sha256 matches" in words
    v1 = text_of(await page(client, f"/ns/{NS}/versions/iris-v1"))
    assert "none: trained from scratch" in v1
    assert "Retrained into iris-v2" in v1


async def test_a_deployment_shows_what_was_live_when_and_the_rollback(client: TestClient) -> None:  # type: ignore[type-arg]
    html = await page(client, f"/ns/{NS}/deployments/iris")
    words = text_of(html)
    assert "Champion iris-v1 v1" in words
    assert "10% for 30s 50% for 30s 100%: promoted" in words
    assert "History, newest first (3 entries, 1 rollback)" in words
    assert "ManualRollback" in words
    assert "alice" in words
    periods = html[html.index('id="live-periods"') :]
    assert text_of(periods).index("iris-v2") < text_of(periods).index("Rollback rollback")
    data = chart_data(html, "live-version")
    assert data["columns"][1] == [1.0, 2.0, 1.0, 1.0]


async def test_a_policy_shows_triggers_budget_cooldown_and_charts(client: TestClient) -> None:  # type: ignore[type-arg]
    html = await page(client, f"/ns/{NS}/driftpolicies/iris")
    words = text_of(html)
    assert "1 of 3 retrains used in the last 1h" in words
    assert "2m between retrains" in words
    assert "featureDrift 1 0.5 fired" in words
    assert "no Prometheus configured" in words
    psi = chart_data(html, "feature-psi")
    assert psi["series"] == ["petal_length", "sepal_width", "PSI threshold"]
    assert psi["columns"][1] == [0.02, 1.9]


async def test_the_loop_graph_links_dataset_job_versions_deployment_policy_and_retrain(
    client: TestClient,
) -> None:  # type: ignore[type-arg]
    words = text_of(await page(client, f"/ns/{NS}/models/iris/loop"))
    for link in (
        "dataset sklearn://iris trained on TrainingJob iris-initial",
        "TrainingJob iris-initial produced ModelVersion iris-v1",
        "ModelDeployment iris watched by DriftPolicy iris",
        "DriftPolicy iris retrain TrainingJob iris-1a2b",
        "TrainingJob iris-1a2b produced ModelVersion iris-v2",
        "ModelVersion iris-v1 retrained into ModelVersion iris-v2",
        f"ModelDeployment iris logged traffic dataset payloadlog://{NS}/iris?window=1m",
    ):
        assert link in words


async def test_a_poll_answers_204_until_something_changes() -> None:
    store = loop_store()
    async with TestClient(TestServer(build_app(store, prometheus=None))) as client:
        revision = store.revision
        unchanged = await client.get(f"/?since={revision}")
        assert unchanged.status == 204
        store.apply("ModelVersion", "ADDED", version(3, "iris-next", SHA2, "sklearn://iris"))
        changed = await client.get(f"/?since={revision}")
        html = await changed.text()
        assert changed.status == 200
        assert html.lstrip().startswith("<main")  # only the live part
        assert "iris-v3" in html
        assert f"since={store.revision}" in html


async def test_missing_and_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    assert "no ModelVersion nope in namespace ml" in await page(client, "/ns/ml/versions/nope", 404)
    store = Store(Scope(("team-a",), "test"))
    store.replace("ModelVersion", "team-a", [])
    store.refuse("DriftPolicy", "team-a", 'driftpolicies.mlops.dev is forbidden: User "bob"')
    async with TestClient(TestServer(build_app(store, prometheus=None))) as limited:
        outside = await page(limited, "/ns/team-b/versions/x", 403)
        assert "namespace team-b is outside what this console reads" in outside
        refused = await page(limited, "/ns/team-a/driftpolicies/x", 403)
        assert 'forbidden: User "bob"' in text_of(refused)
        models = await page(limited, "/")
        assert "Cannot read DriftPolicies in namespace team-a" in text_of(models)


async def test_only_get_from_this_host_with_the_security_headers(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.post("/", data=b"x")
    assert response.status == 405
    foreign = await client.get("/", headers={"Host": "attacker.example:8090"})
    assert foreign.status == 421
    assert "--allow-host attacker.example" in await foreign.text()
    ok = await client.get("/", headers={"Host": "localhost:8090"})
    assert ok.status == 200
    assert "script-src 'self'" in ok.headers["Content-Security-Policy"]
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    versioned = re.search(r'src="(/static/vendor/htmx\.min\.js\?v=[^"]+)"', await ok.text())
    assert versioned is not None  # the URL carries the content's hash...
    static = await client.get(versioned.group(1))
    assert static.status == 200
    assert "Content-Security-Policy" in static.headers
    assert "immutable" in static.headers["Cache-Control"]  # ...so browsers keep it


async def test_health_waits_for_every_watch_to_list() -> None:
    store = Store(Scope(("a",), "test"))
    async with TestClient(TestServer(build_app(store, prometheus=None))) as client:
        assert (await client.get("/healthz")).status == 503
        for kind in ("TrainingJob", "ModelVersion", "ModelDeployment"):
            store.replace(kind, "a", [])
        store.refuse("DriftPolicy", "a", "forbidden")
        assert (await client.get("/healthz")).status == 200
