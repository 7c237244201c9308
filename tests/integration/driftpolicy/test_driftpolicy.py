"""The DriftPolicy controller against the real API server, a real server and real Prometheus.

Aspects: traffic like the reference never retrains; shifted traffic retrains exactly once
(hysteresis and cooldown hold while the drift lasts), with the reason, the measured values
and an Event; a Prometheus that does not answer gives SourceReachable=False and no retrain,
and the condition recovers when a Prometheus starts on that address; the direct-scrape
fallback and Prometheus measure the same PSI, and Prometheus' own PSI expression agrees;
the schedule fires on time; suspend stops the evaluations.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api.durations import parse_duration
from mlops_operator.localcluster.cluster import LocalCluster
from mlops_operator.prometheus import PrometheusClient, promql
from mlops_operator.prometheus.history import PodTarget, ScrapeHistory, scrape_pods
from mlops_operator.prometheus.windows import SourceError, WindowQueries
from tests.integration.driftpolicy.conftest import (
    MODEL,
    Server,
    Traffic,
    condition,
    evaluations,
    policy,
    retraining_jobs,
    status_of,
)
from tests.integration.operator.conftest import RunningOperator
from tests.kube import get_json, kubectl, wait_for

PETAL = "petal length (cm)"
DRIFT = {"featureDrift": {"psiThreshold": 0.25, "minSamples": 50, "minDriftedShare": 0.5}}


def apply(kubeconfig: Path, manifest: dict[str, object]) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(manifest))


def events_of(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = get_json(kubeconfig, "events", "-n", namespace)["items"]
    return events


def test_reference_traffic_never_retrains_and_one_drift_episode_retrains_once(
    kubeconfig: Path,
    restricted: str,
    server: Server,
    operator_for: RunningOperator,
    prometheus_url: str,
) -> None:
    namespace = restricted
    apply(kubeconfig, policy(namespace, "drift", DRIFT, prometheus={"url": prometheus_url}))
    with Traffic(server):
        wait_for(
            lambda: (
                condition(status_of(kubeconfig, namespace, "drift"), "DriftDetected").get("reason")
                == "NoDrift"
            ),
            timeout=120,
            what="an evaluation on enough reference traffic",
        )
        # Two breaches in a row retrain: three evaluations would have been enough to.
        status = evaluations(kubeconfig, namespace, "drift", 2)
        assert condition(status, "DriftDetected")["reason"] == "NoDrift"
        assert condition(status, "SourceReachable")["status"] == "True"
        assert condition(status, "Ready")["status"] == "True"
        assert retraining_jobs(kubeconfig, namespace, "drift") == []

    with Traffic(server, shift=1.8):
        job = wait_for(
            lambda: retraining_jobs(kubeconfig, namespace, "drift"),
            timeout=180,
            what="a retrain after the shift",
        )[0]
        # The drift goes on: enough evaluations for a second pair of breaches, still one retrain.
        status = evaluations(kubeconfig, namespace, "drift", 2)
    assert len(retraining_jobs(kubeconfig, namespace, "drift")) == 1
    assert condition(status, "DriftDetected")["status"] == "True"
    assert condition(status, "DriftDetected")["reason"] in {"Cooldown", "DriftDetected"}
    assert status["lastRetrain"]["trainingJob"] == job["metadata"]["name"]
    assert status["lastRetrain"]["reason"].startswith("triggered by featureDrift")
    values = json.loads(job["metadata"]["annotations"]["mlops.dev/retrain-values"])
    assert values["featureDrift"] >= 0.5
    assert job["spec"]["targetDeployment"] == MODEL
    assert job["metadata"]["labels"]["mlops.dev/model"] == MODEL
    feature = next(t for t in status["triggers"] if t["name"] == "featureDrift")
    assert f"{PETAL}=" in feature["message"]
    # Kopf posts Events from a queue of its own, after the status write: wait for it.
    triggered = wait_for(
        lambda: [e for e in events_of(kubeconfig, namespace) if e["reason"] == "RetrainTriggered"],
        timeout=30,
        what="the RetrainTriggered Event",
    )
    assert len(triggered) == 1, triggered


def test_unreachable_prometheus_never_retrains_and_recovers(
    kubeconfig: Path,
    restricted: str,
    server: Server,
    operator_for: RunningOperator,
    local_cluster: LocalCluster,
    dead_port: int,
    tmp_path: Path,
) -> None:
    namespace = restricted
    url = f"http://127.0.0.1:{dead_port}"
    apply(kubeconfig, policy(namespace, "blind", DRIFT, prometheus={"url": url}))
    with Traffic(server, shift=1.8):
        status = wait_for(
            lambda: (
                (s := status_of(kubeconfig, namespace, "blind"))
                and condition(s, "SourceReachable").get("status") == "False"
                and s
            ),
            timeout=60,
            what="SourceReachable=False",
        )
        assert condition(status, "SourceReachable")["reason"] == "SourceUnreachable"
        assert (
            f"cannot query Prometheus at {url}" in condition(status, "SourceReachable")["message"]
        )
        assert condition(status, "DriftDetected")["status"] == "Unknown"
        evaluations(kubeconfig, namespace, "blind", 3)
        assert retraining_jobs(kubeconfig, namespace, "blind") == []

        # A second Prometheus, with the cluster's configuration, on the address the policy uses.
        binary = shutil.which("prometheus")
        assert binary, "Debian's prometheus is needed"
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={local_cluster.layout.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{dead_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: (
                    condition(status_of(kubeconfig, namespace, "blind"), "SourceReachable").get(
                        "status"
                    )
                    == "True"
                ),
                timeout=120,
                what="SourceReachable=True once Prometheus answers",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    # Kopf posts Events from a queue of its own, after the status write: wait for them.
    wait_for(
        lambda: (
            {"SourceUnreachable", "SourceReachable"}
            <= {e["reason"] for e in events_of(kubeconfig, namespace)}
        ),
        timeout=30,
        what="the SourceUnreachable and SourceReachable Events",
    )


def test_scrape_fallback_and_prometheus_measure_the_same_psi(
    kubeconfig: Path, restricted: str, server: Server, prometheus_url: str
) -> None:
    namespace = restricted
    pod = get_json(kubeconfig, "pods", "-n", namespace, "-l", f"mlops.dev/deployment={MODEL}")[
        "items"
    ][0]
    target = PodTarget(
        pod["metadata"]["uid"],
        f"http://{pod['status']['podIP']}:8080/metrics",
        datetime.fromisoformat(pod["status"]["startTime"]),
    )
    scope = promql.Scope(model=MODEL, namespace=namespace)
    window = "15m"
    petal = 'feature="' + PETAL + '"'
    raw = f"sum(mlops_feature_bin_total{scope.matchers(petal)})"

    async def prometheus_total() -> float | None:
        client = PrometheusClient(prometheus_url)
        try:
            samples = await client.query(raw)
        finally:
            await client.close()
        return samples[0].value if samples else None

    # Prometheus counts from its first scrape (a counter already above zero then adds
    # nothing to increase()), while the fallback counts a new pod from zero: let Prometheus
    # see the idle server first.
    wait_for(lambda: asyncio.run(prometheus_total()) == 0, timeout=60, what="a first scrape")
    with Traffic(server, shift=1.3) as traffic:
        wait_for(lambda: traffic.sent >= 400, timeout=120, what="400 rows sent")

    async def measure() -> tuple[float, float, dict[str, float]]:
        import aiohttp

        client = PrometheusClient(prometheus_url)
        try:
            source = WindowQueries(client)

            # increase() extrapolates to the window's edges, so totals are not whole numbers;
            # the raw counters say when Prometheus has scraped every row sent.
            for _ in range(60):  # Prometheus scrapes every 5 s
                samples = await client.query(raw)
                if samples and round(samples[0].value) == traffic.sent:
                    break
                await asyncio.sleep(1)
            else:
                raise AssertionError(f"Prometheus never saw the {traffic.sent} rows sent")
            queried = await source.window_counts(scope, window)
            expression = await client.query(promql.feature_psi(scope, window))
        finally:
            await client.close()
        # The direct scrape also waits until the pod counts every row sent: each worker
        # counts a request's bins in batches (observe_delay_ms), so a scrape right after the
        # traffic may find one worker's last rows not yet counted. A scrape that fails is
        # tried again (the DriftPolicy skips that evaluation as SourceUnreachable); what it
        # said is kept for the message should none succeed.
        seen = "no scrape yet"
        async with aiohttp.ClientSession() as session:
            for _ in range(60):
                history = ScrapeHistory()
                now = datetime.now(UTC)
                span = timedelta(seconds=parse_duration(window))
                try:
                    for t, snapshot in await scrape_pods(
                        session, [target], timeout_seconds=5, now=now
                    ):
                        history.record(t, snapshot)
                    scraped, _ = history.window_counts(scope, now, span)
                except SourceError as error:
                    seen = str(error)
                else:
                    counted = round(scraped["1"].features[PETAL].total)
                    if counted == traffic.sent:
                        break
                    seen = f"{counted} rows counted"
                await asyncio.sleep(1)
            else:
                raise AssertionError(f"the pod never counted the {traffic.sent} rows sent: {seen}")
        by_prometheus = {s.labels["feature"]: s.value for s in expression}
        return (
            scraped["1"].features[PETAL].psi(),
            queried["1"].features[PETAL].psi(),
            by_prometheus,
        )

    from_scrape, from_counts, from_expression = asyncio.run(measure())
    assert from_scrape > 0.05
    assert from_counts == pytest.approx(from_scrape, rel=1e-6)
    assert from_expression[PETAL] == pytest.approx(from_scrape, rel=1e-6)


def test_schedule_fires_at_its_time_not_at_the_next_evaluation(
    kubeconfig: Path, restricted: str, model_deployment: str, operator_for: RunningOperator
) -> None:
    namespace = restricted
    # Daily, at the start of a minute 15 to 75 s from now: the first evaluation (at creation,
    # looking back to it) finds no occurrence, and the next one by the interval comes 5 minutes
    # after it, long past the time and this test's wait.
    at = (datetime.now(UTC) + timedelta(seconds=75)).replace(second=0, microsecond=0)
    daily = {"schedule": f"{at.minute} {at.hour} * * *"}
    apply(kubeconfig, policy(namespace, "daily", daily, interval="5m", window="5m"))
    job = wait_for(
        lambda: retraining_jobs(kubeconfig, namespace, "daily"),
        timeout=150,
        what="the scheduled retrain",
    )[0]
    created = datetime.fromisoformat(job["metadata"]["creationTimestamp"])
    assert at <= created < at + timedelta(seconds=15), (at.isoformat(), created.isoformat())
    assert job["metadata"]["annotations"]["mlops.dev/retrain-reason"].startswith(
        "triggered by schedule"
    )


def test_suspend_stops_evaluating(
    kubeconfig: Path, restricted: str, model_deployment: str, operator_for: RunningOperator
) -> None:
    namespace = restricted
    apply(kubeconfig, policy(namespace, "held", DRIFT, suspend=True))
    status = wait_for(
        lambda: (
            condition(status_of(kubeconfig, namespace, "held"), "Suspended").get("status") == "True"
            and status_of(kubeconfig, namespace, "held")
        ),
        timeout=60,
        what="Suspended=True",
    )
    assert condition(status, "Ready")["reason"] == "Suspended"
    assert "lastEvaluationTime" not in status
