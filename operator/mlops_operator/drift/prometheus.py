"""Reading a window's counts from Prometheus, through the shared `PrometheusClient`.

Failures become `SourceError` with a message a human can act on (the URL, what
answered); the controller reports them as ``SourceReachable=False``. A
Prometheus that answers but holds no series of the model at all is treated the
same way: the server is not scraped (or not serving), so nothing can be judged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from mlops_operator.api.driftpolicy import CustomTrigger
from mlops_operator.decisions.drift import Reading
from mlops_operator.drift import promql
from mlops_operator.drift.measure import WindowCounts, assemble, custom_reading
from mlops_operator.prometheus import PrometheusClient, PrometheusError, Sample

__all__ = ["PrometheusSource", "SourceError"]


class SourceError(Exception):
    """The metrics source did not answer, or answered nothing usable."""


class PrometheusSource:
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
