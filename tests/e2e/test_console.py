"""The console in Debian's chromium, against the local cluster after the loop has run.

Aspects, each on the real pages of the closed loop (`conftest.closed_loop`):
- the models page lists iris-v1 and iris-v2 with their phase, metric and gates;
- from v2, the lineage leads back to its dataset (the payload log, the sha256 the
  ModelVersion records), to the retrain that produced it and why, and to v1, whose own
  lineage leads to scikit-learn's iris;
- the deployment page, left open while `mlops rollback` runs, shows the rollback in its
  history within seconds without a reload (live updates), and what was live when;
- the DriftPolicy page's charts come from Prometheus and have points;
- the loop graph links dataset, TrainingJob, versions, deployment, policy and retrain;
- keyboard: the first Tab reaches the skip link, which moves focus to the content;
- axe-core finds no WCAG 2.1 A/AA violation (labels, contrast, names) on any page.
Each page is photographed; with ``MLOPS_UPDATE_SCREENSHOTS=1`` the pictures replace those
in docs/console/, which docs/console.md shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console import RunningConsole, browser, start_console
from tests.e2e.conftest import ClosedLoop
from tests.kube import get_json, wait_for
from tests.unit.chart.rendered import REPO

# One worker runs the session's closed loop once for every test that looks at it.
pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group("closed-loop")]

DOCS = REPO / "docs" / "console"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


@pytest.fixture
def console(closed_loop: ClosedLoop, kubeconfig: Path, tmp_path: Path) -> Iterator[RunningConsole]:
    url = closed_loop.demo.prometheus_url
    with start_console(kubeconfig, tmp_path / "console.log", "--prometheus-url", url) as running:
        yield running


@pytest.fixture
def pictures(tmp_path: Path) -> Iterator[Path]:
    """Where the screenshots go; copied into docs/console/ when asked to."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    if os.environ.get("MLOPS_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for picture in folder.glob("*.png"):
            shutil.copy(picture, DOCS / picture.name)


def _accessible(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG)
    assert results.violations_count == 0, results.generate_report()


def _snap(page: Any, pictures: Path, name: str) -> None:
    page.screenshot(path=str(pictures / f"{name}.png"), full_page=True)


def _rollback(kubeconfig: Path, namespace: str) -> None:
    command = [
        str(Path(sys.executable).with_name("mlops")),
        "rollback",
        "iris",
        "--to",
        "1",
        "-n",
        namespace,
    ]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_console_shows_the_loop(
    closed_loop: ClosedLoop, console: RunningConsole, kubeconfig: Path, pictures: Path
) -> None:
    namespace = closed_loop.namespace
    v1 = get_json(kubeconfig, "modelversions.mlops.dev", "iris-v1", "-n", namespace)
    v2 = get_json(kubeconfig, "modelversions.mlops.dev", "iris-v2", "-n", namespace)
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})

        # Models: both versions with phase, metric, gates.
        page.goto(f"{console.url}/?namespace={namespace}")
        table = page.get_by_role("table", name="Versions of iris")
        rows = table.get_by_role("row")
        assert rows.count() == 3  # header + v2 + v1
        assert "Validated" in rows.nth(1).inner_text()
        assert "passed" in rows.nth(1).inner_text()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "content"
        _accessible(page)
        _snap(page, pictures, "models")

        # v2's lineage: back to its dataset, its retrain, and v1.
        table.get_by_role("link", name="iris-v2", exact=True).click()
        page.get_by_role("heading", name="Lineage").wait_for()
        lineage = v2["spec"]["lineage"]
        assert page.locator("#dataset-uri").inner_text() == lineage["dataset"]["uri"]
        assert page.locator("#dataset-sha").inner_text() == lineage["dataset"]["sha256"]
        # The retrain combined the original data with the logged window: each source with its
        # own data version.
        sources = page.locator("#dataset-sources li")
        assert sources.count() == len(lineage["dataset"]["sources"]) == 2
        for shown, source in zip(sources.all(), lineage["dataset"]["sources"], strict=True):
            assert shown.locator(".source-uri").inner_text() == source["uri"]
            assert shown.locator(".source-sha").inner_text() == source["sha256"]
        assert (
            sources.nth(1)
            .locator(".source-uri")
            .inner_text()
            .startswith(f"payloadlog://{namespace}/iris")
        )
        assert page.locator("#training-job").inner_text() == lineage["trainingJob"]
        assert "started by drift policy iris" in page.locator("#retrain").inner_text()
        assert "compareToChampion" in page.locator("#gate-results").inner_text()
        _accessible(page)
        _snap(page, pictures, "version")
        page.locator("#parent-version").click()
        page.get_by_role("heading", name="iris-v1").wait_for()
        assert page.locator("#dataset-uri").inner_text() == "sklearn://iris"
        assert (
            page.locator("#dataset-sha").inner_text() == v1["spec"]["lineage"]["dataset"]["sha256"]
        )
        assert "Retrained into iris-v2" in page.locator("ol.chain").inner_text()

        # The deployment: open while the rollback happens, updated without a reload.
        page.goto(f"{console.url}/ns/{namespace}/deployments/iris")
        assert "Rollback" not in page.locator("#history").inner_text()
        page.evaluate("window.mlopsLoaded = true")  # gone if the page were reloaded
        _rollback(kubeconfig, namespace)
        page.locator("#history .rollback-badge").first.wait_for(timeout=30_000)
        assert page.evaluate("window.mlopsLoaded") is True
        wait_for(
            lambda: "iris-v1" in page.locator("#champion-version").inner_text(),
            timeout=60,
            what="v1 champion again",
        )
        periods = page.locator("#live-periods").inner_text().splitlines()
        assert "Rollback" in periods[-1]
        assert "now" in periods[-1]
        # The chart was drawn again into the new content, not left behind in the old one.
        drawn = "document.body.contains(window.mlopsCharts['live-version'].chart.root)"
        assert page.evaluate(drawn)
        assert page.locator("#plot-live-version canvas").count() == 1
        assert page.evaluate("window.mlopsCharts['live-version'].points") >= 4
        _accessible(page)
        _snap(page, pictures, "deployment")

        # The DriftPolicy: charts from Prometheus, with points.
        page.goto(f"{console.url}/ns/{namespace}/driftpolicies/iris")
        assert page.locator("#chart-source").inner_text().startswith("From Prometheus")
        page.wait_for_function("window.mlopsCharts && window.mlopsCharts['feature-psi']")
        assert page.evaluate("window.mlopsCharts['feature-psi'].points") > 0
        assert page.evaluate("window.mlopsCharts['accuracy'].points") > 0
        assert "featureDrift" in page.locator("#trigger-table").inner_text()
        _accessible(page)
        _snap(page, pictures, "driftpolicy")

        # The loop as one graph.
        page.goto(f"{console.url}/ns/{namespace}/models/iris/loop")
        links = page.locator("#edge-list").inner_text()
        retrain_job = lineage["trainingJob"]
        for link in (
            "dataset sklearn://iris trained on TrainingJob iris-initial",
            "TrainingJob iris-initial produced ModelVersion iris-v1",
            "ModelDeployment iris watched by DriftPolicy iris",
            f"DriftPolicy iris retrain TrainingJob {retrain_job}",
            f"TrainingJob {retrain_job} produced ModelVersion iris-v2",
            "ModelVersion iris-v1 retrained into ModelVersion iris-v2",
        ):
            assert link in links, links
        assert page.locator("#loop-graph a").count() >= 4
        _accessible(page)
        _snap(page, pictures, "loop")
