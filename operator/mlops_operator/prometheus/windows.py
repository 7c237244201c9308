"""A served model's counts over a DriftPolicy's window, as `WindowCounts` per served version.

Two sources give the same counts: Prometheus, queried with PromQL (`promql`) through
the shared `PrometheusClient` (`WindowQueries`, here), and, when no Prometheus is
configured, the serving pods' ``/metrics`` scraped directly and differenced over the
window (`history`). Both hand their samples to `assemble`; what the counts mean for
each trigger is `mlops_operator.decisions.triggers`.

Failures become `SourceError` with a message a human can act on (the URL, what
answered); the controller reports them as ``SourceReachable=False``. A
Prometheus that answers but holds no series of the model at all is treated the
same way: the server is not scraped (or not serving), so nothing can be judged.
"""

from __future__ import annotations

import asyncio
import math
import operator
from collections.abc import Callable, Sequence

from mlops_operator.api.driftpolicy import CustomTrigger
from mlops_operator.decisions.triggers import Histogram, Reading, WindowCounts, custom_reading
from mlops_operator.prometheus import promql
from mlops_operator.prometheus.client import PrometheusClient, PrometheusError, Sample
from mlops_operator.realized import VERSION_GAUGES

__all__ = ["SourceError", "WindowQueries", "assemble"]


class SourceError(Exception):
    """The metrics source did not answer, or answered nothing usable."""


def _group(
    samples: list[Sample], key: str | None, combine: Callable[[float, float], float]
) -> dict[str, dict[str, float]]:
    grouped: dict[str, dict[str, float]] = {}
    for sample in samples:
        labels, value = sample.labels, sample.value
        if math.isnan(value) or "bin" not in labels:
            continue
        bins = grouped.setdefault(labels.get(key, "") if key else "", {})
        name = labels["bin"]
        bins[name] = combine(bins[name], value) if name in bins else value
    return grouped


def _histograms(
    counts: list[Sample], shares: list[Sample], key: str | None
) -> dict[str, Histogram]:
    # Several pods: their counts add up; their (identical) reference shares do not.
    counted = _group(counts, key, operator.add)
    return {
        group: Histogram(counted.get(group, {}), reference)
        for group, reference in _group(shares, key, max).items()
    }


def assemble(
    *,
    feature_bins: list[Sample],
    feature_reference: list[Sample],
    prediction_bins: list[Sample],
    prediction_reference: list[Sample],
    realized: list[Sample],
) -> dict[str, WindowCounts]:
    """`WindowCounts` per served version (label ``model_version``) from a source's samples.

    `realized` holds the evaluator's gauges (label ``__name__`` names each). Bins without a
    reference share are ignored; a version without any reference is not served.
    """

    def of(samples: list[Sample], version: str) -> list[Sample]:
        return [s for s in samples if s.labels.get("model_version", "") == version]

    versions = {
        s.labels.get("model_version", "") for s in [*feature_reference, *prediction_reference]
    }
    keys = {name: key for key, name in VERSION_GAUGES.items()}
    counted: dict[str, WindowCounts] = {}
    for version in sorted(versions):
        gauges = {
            keys[s.labels["__name__"]]: s.value
            for s in of(realized, version)
            if s.labels.get("__name__") in keys and not math.isnan(s.value)
        }
        counted[version] = WindowCounts(
            features=_histograms(
                of(feature_bins, version), of(feature_reference, version), "feature"
            ),
            predictions=_histograms(
                of(prediction_bins, version), of(prediction_reference, version), None
            ).get(""),
            realized=gauges,
        )
    return counted


class WindowQueries:
    """The drift queries of one policy against one Prometheus."""

    def __init__(self, client: PrometheusClient) -> None:
        self._client = client

    async def _query(self, expression: str) -> list[Sample]:
        try:
            return await self._client.query(expression)
        except PrometheusError as error:
            raise SourceError(str(error)) from error

    async def window_counts(
        self, scope: promql.Scope, window: str, features: Sequence[str] | None = None
    ) -> dict[str, WindowCounts]:
        """The counts of the model in `scope` over `window`, per served version."""
        watched = list(features) if features else None
        queries = [
            promql.feature_bins(scope, window, watched),
            promql.feature_reference(scope, window, watched),
            promql.prediction_bins(scope, window),
            promql.prediction_reference(scope, window),
            promql.realized(scope),
        ]
        results = await asyncio.gather(*(self._query(q) for q in queries))
        bins, reference, predictions, prediction_reference, realized = results
        if not reference and not prediction_reference:
            raise SourceError(
                f"Prometheus at {self._client.base_url} holds no series of {scope.matchers()}"
                f" in the last {window}: is the inference server running and scraped?"
            )
        return assemble(
            feature_bins=bins,
            feature_reference=reference,
            prediction_bins=predictions,
            prediction_reference=prediction_reference,
            realized=realized,
        )

    async def custom(self, trigger: CustomTrigger, window: str) -> Reading:
        """The reading of a custom trigger: its query must return exactly one number."""
        samples = await self._query(promql.custom(trigger.query, window))
        if len(samples) > 1:
            return custom_reading(
                trigger,
                None,
                f"the query returned {len(samples)} series; expected one number (aggregate it,"
                " e.g. with sum())",
            )
        values = [s.value for s in samples if not math.isnan(s.value)]
        return custom_reading(trigger, values[0] if values else None)
