"""The direct-scrape fallback on the real server's metrics: parsing, differencing, resets.

Aspects: the counts of a window are the difference of two scrapes and give the same PSI as
`distributions.psi` on the values sent in that window; a pod started within the window counts
from zero; a restarted process (counters reset) counts from its new values; a pod older than
the history gives a shorter window and says so; other models' series are ignored; no pod is
a `SourceError`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.datasets import load_iris

from mlops_operator.distributions import bin_counts, psi
from mlops_operator.prometheus import promql
from mlops_operator.prometheus.history import PodTarget, ScrapeHistory, Snapshot, parse_metrics
from mlops_operator.prometheus.windows import SourceError
from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.serving.model import ServedModel
from tests.unit.prometheus.conftest import serve

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
SCOPE = promql.Scope(model="iris", model_version="1")


def snapshot(metrics: ServingMetrics, at: datetime) -> Snapshot:
    return Snapshot(at, parse_metrics(metrics.render().decode()))


def test_parse_keeps_only_the_drift_series(server_metrics: ServingMetrics) -> None:
    server_metrics.observe_request("predict", "ok", 0.001)
    server_metrics.observe_labels("accepted", 10)
    evaluator = (
        "# TYPE mlops_realized_accuracy gauge\n"
        'mlops_realized_accuracy{model="iris",model_version="1"} 0.7\n'
        "# TYPE mlops_evaluation_duration_seconds gauge\n"
        'mlops_evaluation_duration_seconds{model="iris"} 0.2\n'
    )
    series = parse_metrics(server_metrics.render().decode() + evaluator)
    assert {name for name, _ in series} == {
        "mlops_feature_bin_total",
        "mlops_feature_reference_proportion",
        "mlops_prediction_bin_total",
        "mlops_prediction_reference_proportion",
        "mlops_realized_accuracy",
    }
    labels = frozenset({("model", "iris"), ("model_version", "1")})
    assert series[("mlops_realized_accuracy", labels)] == 0.7


def test_window_psi_equals_direct_psi_of_the_values_sent_in_it(
    server_metrics: ServingMetrics, iris_model: ServedModel
) -> None:
    iris = load_iris().data
    rng = np.random.default_rng(0)
    history = ScrapeHistory()
    pod = PodTarget("uid-1", "http://pod/metrics", started=T0 - timedelta(hours=1))
    serve(server_metrics, iris[rng.integers(0, 150, 300)])  # before the window
    history.record(pod, snapshot(server_metrics, T0))
    shifted = iris[rng.integers(0, 150, 400)] * [1.0, 1.0, 1.6, 1.6]
    serve(server_metrics, shifted)  # the window
    history.record(pod, snapshot(server_metrics, T0 + WINDOW))

    counted, note = history.window_counts(SCOPE, T0 + WINDOW, WINDOW)
    window = counted["1"]

    assert note == ""
    reference = iris_model.card.reference["petal_length"]
    direct = psi(reference.proportions, bin_counts(shifted[:, 2], reference.edges).tolist())
    assert window.features["petal_length"].psi() == pytest.approx(direct, rel=1e-12)
    assert window.features["petal_length"].total == 400
    assert window.predictions is not None
    assert window.predictions.total == 400


def test_pod_started_within_the_window_counts_from_zero(server_metrics: ServingMetrics) -> None:
    history = ScrapeHistory()
    pod = PodTarget("uid-new", "http://pod/metrics", started=T0)
    serve(server_metrics, load_iris().data[:30])
    history.record(pod, snapshot(server_metrics, T0 + timedelta(minutes=1)))
    counted, note = history.window_counts(SCOPE, T0 + timedelta(minutes=1), WINDOW)
    window = counted["1"]
    assert window.features["sepal_length"].total == 30
    assert note == ""


def test_old_pod_without_a_baseline_gives_a_shorter_window(server_metrics: ServingMetrics) -> None:
    history = ScrapeHistory()
    pod = PodTarget("uid-old", "http://pod/metrics", started=T0 - timedelta(days=1))
    serve(server_metrics, load_iris().data[:10])
    history.record(pod, snapshot(server_metrics, T0))
    serve(server_metrics, load_iris().data[:20])
    history.record(pod, snapshot(server_metrics, T0 + timedelta(minutes=2)))
    counted, note = history.window_counts(SCOPE, T0 + timedelta(minutes=2), WINDOW)
    window = counted["1"]
    assert window.features["sepal_length"].total == 20
    assert note.startswith("window shorter than asked (scraped only pod uid-old since")


def test_a_counter_reset_counts_the_new_values(
    server_metrics: ServingMetrics, iris_model: ServedModel
) -> None:
    history = ScrapeHistory()
    pod = PodTarget("uid-1", "http://pod/metrics", started=T0 - timedelta(hours=1))
    serve(server_metrics, load_iris().data)
    history.record(pod, snapshot(server_metrics, T0))
    restarted = ServingMetrics(iris_model)
    serve(restarted, load_iris().data[:7])
    history.record(pod, snapshot(restarted, T0 + WINDOW))
    counted, _ = history.window_counts(SCOPE, T0 + WINDOW, WINDOW)
    window = counted["1"]
    assert window.features["sepal_width"].total == 7


def test_other_models_are_ignored_and_nothing_is_a_source_error(
    server_metrics: ServingMetrics,
) -> None:
    history = ScrapeHistory()
    pod = PodTarget("uid-1", "http://pod/metrics", started=T0)
    history.record(pod, snapshot(server_metrics, T0))
    with pytest.raises(SourceError, match='no serving pod exports metrics of \\{model="wine"'):
        history.window_counts(promql.Scope(model="wine"), T0, WINDOW)


def test_forget_keeps_one_baseline_and_drops_gone_pods(server_metrics: ServingMetrics) -> None:
    history = ScrapeHistory()
    live = PodTarget("live", "u", started=T0 - timedelta(hours=1))
    gone = PodTarget("gone", "u", started=T0 - timedelta(hours=1))
    for minute in range(20):
        history.record(live, snapshot(server_metrics, T0 + timedelta(minutes=minute)))
    history.record(gone, snapshot(server_metrics, T0))
    now = T0 + timedelta(minutes=19)
    history.forget(["live"], now, WINDOW)
    counted, note = history.window_counts(SCOPE, now, WINDOW)
    window = counted["1"]
    assert note == ""
    assert window.features["sepal_length"].total == 0
    assert len(history._pods) == 1
    assert history._pods["live"].snapshots[0].time == now - WINDOW
