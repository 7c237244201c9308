"""One version's live traffic as `LiveCounts`, from Prometheus or from its pods' ``/metrics``.

Prometheus: counter increases over the window (``increase(...[window])``), summed
over the version's pods. Direct scrape (no Prometheus configured): the counters as
they stand, summed over the version's pods, that is the window since those pods
started; a challenger's pods start with its rollout, so for it the two agree.
Inference endpoints only: ``/feedback`` calls are neither requests nor errors.
Accuracy is the evaluator's realized accuracy of the version's judged window (its
gauges, `mlops_operator.realized`): one number for floors, analysis and DriftPolicy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import aiohttp

from mlops_operator.decisions.analysis import LiveCounts
from mlops_operator.prometheus.client import PrometheusClient, Sample
from mlops_operator.prometheus.exposition import scrape
from mlops_operator.realized import VERSION_GAUGES

__all__ = [
    "MIN_WINDOW_SECONDS",
    "counts_from_samples",
    "evaluation_window",
    "prometheus_counts",
    "scraped_counts",
]

MIN_WINDOW_SECONDS = 15.0
"""Shortest window queried: ``increase`` needs two scrapes in it (a 5 s interval leaves room)."""


def evaluation_window(window_seconds: float, deployment_age_seconds: float) -> float:
    """Seconds an evaluation of a deployment's traffic looks back: `window_seconds`, but not
    past the deployment's creation (never under `MIN_WINDOW_SECONDS`).

    Series of the same model, namespace and version name outlive an earlier deployment of that
    name (deleted and created again, as GitOps and a second `make demo` do): nothing older
    than the watched deployment is its traffic.
    """
    return min(window_seconds, max(deployment_age_seconds, MIN_WINDOW_SECONDS))


_FEEDBACK = "feedback"
_ERRORS = frozenset({"error", "timeout"})
"""Outcomes that are the server's failure: an exception (500), the deadline passed (504)."""


def _le(sample: Sample) -> float:
    return (
        math.inf
        if sample.labels.get("le") in ("+Inf", "Inf", "inf")
        else float(sample.labels.get("le", "nan"))
    )


_ACCURACY = VERSION_GAUGES["realized_accuracy"]
_LABELLED = VERSION_GAUGES["realized_labelled_rows"]


def _realized(samples: Iterable[Sample]) -> tuple[float, float | None]:
    values = {s.labels.get("__name__", s.name): s.value for s in samples}
    labelled = values.get(_LABELLED, 0.0)
    accuracy = values.get(_ACCURACY)
    return (labelled if math.isfinite(labelled) else 0.0), (
        accuracy if accuracy is not None and math.isfinite(accuracy) else None
    )


def _assemble(
    outcomes: Iterable[Sample], buckets: Iterable[Sample], realized: Iterable[Sample],
    bins: Iterable[Sample],
) -> LiveCounts:  # fmt: skip
    requests = errors = 0.0
    for sample in outcomes:
        requests += sample.value
        if sample.labels.get("outcome") in _ERRORS:
            errors += sample.value
    latency: dict[float, float] = defaultdict(float)
    for sample in buckets:
        latency[_le(sample)] += sample.value
    predictions: dict[str, float] = defaultdict(float)
    for sample in bins:
        predictions[sample.labels.get("bin", "")] += sample.value
    labelled, accuracy = _realized(realized)
    return LiveCounts(requests, errors, dict(latency), labelled, accuracy, dict(predictions))


def counts_from_samples(samples: Sequence[Sample], *, model: str, version: str) -> LiveCounts:
    """The counts in scraped exposition samples of one model version (summed over pods)."""

    def of(name: str) -> list[Sample]:
        return [
            s
            for s in samples
            if s.name == name
            and s.labels.get("model") == model
            and s.labels.get("model_version") == version
            and s.labels.get("endpoint") != _FEEDBACK
        ]

    return _assemble(
        of("mlops_requests_total"),
        of("mlops_request_duration_seconds_bucket"),
        [*of(_ACCURACY), *of(_LABELLED)],
        of("mlops_prediction_bin_total"),
    )


async def prometheus_counts(
    client: PrometheusClient, *, namespace: str, model: str, version: str, window: float
) -> LiveCounts:
    """The version's counts over the last `window` seconds, from Prometheus."""
    seconds = f"{math.ceil(max(window, MIN_WINDOW_SECONDS))}s"
    match = f'namespace="{namespace}",model="{model}",model_version="{version}"'
    served = f'{match},endpoint!="{_FEEDBACK}"'

    outcomes = await client.query(
        f"sum by (outcome) (increase(mlops_requests_total{{{served}}}[{seconds}]))"
    )
    buckets = await client.query(
        f"sum by (le) (increase(mlops_request_duration_seconds_bucket{{{served}}}[{seconds}]))"
    )
    realized = await client.query(
        f'max by (__name__) ({{{match},__name__=~"{_ACCURACY}|{_LABELLED}"}})'
    )
    bins = await client.query(
        f"sum by (bin) (increase(mlops_prediction_bin_total{{{match}}}[{seconds}]))"
    )
    return _assemble(outcomes, buckets, realized, bins)


async def scraped_counts(
    urls: Sequence[str], *, model: str, version: str, session: aiohttp.ClientSession | None = None
) -> LiveCounts:
    """The version's counts since its pods started, read from each pod's ``/metrics``.

    `urls` include the evaluator's, for the realized accuracy.
    """
    samples: list[Sample] = []
    for url in urls:
        samples.extend(await scrape(url, session=session))
    return counts_from_samples(samples, model=model, version=version)
