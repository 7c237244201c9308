"""Prometheus metrics of the inference server: the same names for every model.

Every series carries ``model`` and ``model_version``. Drift needs no server-side
state beyond counters: each feature's values are counted into the training
reference's bins (``mlops_feature_bin_total``) and the reference proportions are
exported beside them (``mlops_feature_reference_proportion``), so PSI over any
window is one PromQL expression (``docs/serving.md``). Predictions get the same
pair.

The series that move with traffic (requests, latency, rows, feature and prediction
bins) are slots of :class:`~mlops_operator.serving.hotcounters.SlotCounters`: no lock, one
store per observation, feature and prediction bins counted once per onnxruntime batch
with vectorised arithmetic (a one-row batch by a few list bisections instead). The rest
(reference proportions, feedback, side channels, model info) stay prometheus_client
series. With several worker processes (``PROMETHEUS_MULTIPROC_DIR``, set by the
supervisor) both kinds are merged across workers at scrape time.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from mlops_operator.distributions import bin_indices
from mlops_operator.modelcard import CategoricalReference
from mlops_operator.serving.errors import outcomes
from mlops_operator.serving.hotcounters import SlotCounters
from mlops_operator.serving.model import ServedModel

__all__ = ["CONTENT_TYPE", "OTHER_CATEGORY", "ServingMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER_CATEGORY = "__other__"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
_MODEL_LABELS = ("model", "model_version")
# Every endpoint a request is counted under (the ``endpoint`` label).
ENDPOINTS = ("predict", "v2_infer", "v1_predict", "invocations", "grpc_infer", "feedback")
# Batches of at most this many rows are counted row by row in Python; larger ones with numpy.
_SMALL_BATCH = 4

# The `_created` twin of every series doubles the scrape for no use in PromQL.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _FeatureCounter:
    """One feature's slots: its reference bins (or categories and ``__other__``) and NaN."""

    def __init__(self, metrics: ServingMetrics, name: str, input_name: str, index: int) -> None:
        reference = metrics.model.card.reference[name]
        hot, labels = metrics.hot, [*metrics.base_labels, ("feature", name)]
        self.input_name, self.index = input_name, index
        self.edges: list[float] = []
        self.categories: dict[str, int] = {}
        if isinstance(reference, CategoricalReference):
            bins = [*reference.categories, OTHER_CATEGORY]
        else:
            # Values reach this counter as the input's dtype (float32, mostly) while the card's
            # edges are float64 training values: round the edges the same way, or a value equal
            # to an edge in training (frequent: decile edges are data values) would round up
            # past it here and land one bin higher, reading as drift on unchanged traffic.
            dtype = metrics.model.inputs[input_name].dtype
            width = np.float32 if dtype == "float32" else np.float64
            self.edges = np.asarray(reference.edges, dtype=width).astype(np.float64).tolist()
            bins = [str(i) for i in range(len(reference.edges) + 1)]
        self.first = hot.allocate(0)
        for bin_label in bins:
            hot.counter(metrics.feature_bins, [*labels, ("bin", bin_label)])
        if isinstance(reference, CategoricalReference):
            self.categories = {c: self.first + i for i, c in enumerate(reference.categories)}
        self.other = self.first + len(bins) - 1
        self.non_finite = hot.counter(metrics.feature_non_finite, labels)
        for bin_label, proportion in zip(bins, reference.proportions, strict=True):
            metrics.feature_reference.labels(*metrics.model_labels, name, bin_label).set(proportion)

    def count(self, feeds: Mapping[str, npt.NDArray[Any]], slots: memoryview[float]) -> None:
        column = feeds[self.input_name][:, self.index]
        if self.categories:
            for value in column.tolist():
                slots[self.categories.get(str(value), self.other)] += 1.0
            return
        if len(column) <= _SMALL_BATCH:
            for value in column.tolist():
                if math.isnan(value):  # counted apart, in no bin
                    slots[self.non_finite] += 1.0
                else:
                    slots[self.first + bisect_left(self.edges, value)] += 1.0
            return
        values = column.astype(np.float64, copy=False)
        missing = np.isnan(values)
        if missing.any():
            slots[self.non_finite] += float(missing.sum())
            values = values[~missing]
        counts = np.bincount(bin_indices(values, self.edges), minlength=len(self.edges) + 1)
        for index in np.flatnonzero(counts).tolist():
            slots[self.first + index] += float(counts[index])


class _NumericMatrix:
    """All features numeric in one input, counted together: one comparison per batch."""

    def __init__(self, counters: list[_FeatureCounter]) -> None:
        self.counters = counters
        self.input_name = counters[0].input_name
        self.order = [c.index for c in counters]
        width = max(len(c.edges) for c in counters)
        padded = [c.edges + [np.inf] * (width - len(c.edges)) for c in counters]
        self.edges = np.asarray(padded, dtype=np.float64)[None, :, :]
        self.first = np.asarray([c.first for c in counters], dtype=np.intp)
        self.non_finite = np.asarray([c.non_finite for c in counters], dtype=np.intp)

    def count_rows(self, feeds: Mapping[str, npt.NDArray[Any]], slots: memoryview[float]) -> None:
        """A few rows: one ``tolist`` and a bisection per value beat any numpy call."""
        counters = self.counters
        for row in feeds[self.input_name].tolist():
            for counter in counters:
                value = row[counter.index]
                if math.isnan(value):  # counted apart, in no bin
                    slots[counter.non_finite] += 1.0
                else:
                    slots[counter.first + bisect_left(counter.edges, value)] += 1.0

    def count(self, feeds: Mapping[str, npt.NDArray[Any]], hot: SlotCounters) -> None:
        values = feeds[self.input_name][:, self.order]
        # Bin i of a feature holds e[i-1] < x <= e[i]: its index is how many edges are below x.
        slots = (values[:, :, None] > self.edges).sum(axis=2) + self.first
        missing = np.isnan(values)
        if missing.any():
            slots = np.where(missing, self.non_finite, slots)
        hot.array[: hot.size] += np.bincount(slots.ravel(), minlength=hot.size)


class ServingMetrics:
    """All series of one served model, laid out once; observations are slot increments."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.model_labels = (model.name, model.version)
        self.base_labels = list(zip(_MODEL_LABELS, self.model_labels, strict=True))
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self._multiprocess = bool(multiprocess_dir)
        self.registry = CollectorRegistry(auto_describe=True)
        self._define_cold()
        self.hot = SlotCounters()
        self._define_hot()
        self._features = [
            _FeatureCounter(self, f.name, f.input, f.index)
            for f in model.card.signature.features
            if f.name in model.card.reference
        ]
        single = len({c.input_name for c in self._features}) == 1 and model.single_input
        numeric = all(not c.categories for c in self._features)
        self._matrix = (
            _NumericMatrix(self._features) if self._features and single and numeric else None
        )
        self._bind_predictions()
        self.hot.open(multiprocess_dir)
        self.model_info.labels(*self.model_labels, model.sha256, model.card.signature.task).set(1)

    def _define_hot(self) -> None:
        hot, base = self.hot, self.base_labels
        requests = hot.family(
            "mlops_requests",
            "Requests by endpoint and outcome (ok, or the reason they were refused).",
            lazy=True,
        )
        self._requests = {
            (endpoint, outcome): hot.counter(
                requests, [*base, ("endpoint", endpoint), ("outcome", outcome)]
            )
            for endpoint in ENDPOINTS
            for outcome in outcomes()
        }
        self._latency = {
            endpoint: hot.histogram(
                "mlops_request_duration_seconds",
                "Time from a request's arrival to its response, by endpoint.",
                [*base, ("endpoint", endpoint)],
                _LATENCY_BUCKETS,
                lazy=True,
            )
            for endpoint in ENDPOINTS
        }
        self._latency_slots = {
            endpoint: (histogram.first, histogram.bounds, histogram.sum_slot)
            for endpoint, histogram in self._latency.items()
        }
        self._rows = hot.histogram(
            "mlops_request_rows", "Rows per inference request.", base, _ROW_BUCKETS
        )
        self._batch_rows = hot.histogram(
            "mlops_batch_rows", "Rows per onnxruntime call (micro-batch size).", base, _ROW_BUCKETS
        )
        self.prediction_bins = hot.family(
            "mlops_prediction_bin",
            "Predictions by class (classification) or by reference bin index (regression).",
        )
        self.feature_bins = hot.family(
            "mlops_feature_bin",
            "Input values per feature and training-reference bin (index, or category).",
        )
        self.feature_non_finite = hot.family(
            "mlops_feature_non_finite",
            "Missing (NaN) input values per feature; not counted in any bin.",
        )

    def _define_cold(self) -> None:
        registry, labels = self.registry, _MODEL_LABELS
        self.prediction_reference = Gauge(
            "mlops_prediction_reference_proportion",
            "Share of each prediction bin on the training data.",
            [*labels, "bin"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.feature_reference = Gauge(
            "mlops_feature_reference_proportion",
            "Share of each feature bin on the training data.",
            [*labels, "feature", "bin"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.labels = Counter(
            "mlops_labels",
            "Ground-truth labels posted to /feedback, by outcome (accepted, duplicate); the"
            " evaluator joins them with the predictions (mlops_realized_*).",
            [*labels, "outcome"],
            registry=registry,
        )
        self.side_channel = Counter(
            "mlops_side_channel",
            "Side channel records (shadow, payload_log, predictions, labels) by outcome.",
            [*labels, "channel", "outcome"],
            registry=registry,
        )
        self.model_info = Gauge(
            "mlops_model_info",
            "The served model: always 1, with its version, artifact sha256 and task.",
            [*labels, "sha256", "task"],
            registry=registry,
            multiprocess_mode="max",
        )

    def _bind_predictions(self) -> None:
        reference = self.model.card.prediction_reference
        self._class_index: dict[str, int] = {}
        self._prediction_edges: list[float] = []
        if reference.classes is not None:
            bins = list(reference.classes)
        else:
            self._prediction_edges = reference.edges or []
            bins = [str(i) for i in range(len(self._prediction_edges) + 1)]
        for bin_label, proportion in zip(bins, reference.proportions, strict=True):
            self.prediction_reference.labels(*self.model_labels, bin_label).set(proportion)
        self._prediction_slots = [
            self.hot.counter(self.prediction_bins, [*self.base_labels, ("bin", b)]) for b in bins
        ]
        if reference.classes is not None:
            self._class_index = dict(zip(bins, self._prediction_slots, strict=True))

    def observe_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Count one finished request and its latency."""
        slots = self.hot.slots
        slots[self._requests[endpoint, outcome]] += 1.0
        # Histogram.observe's two stores, inline: this runs on every request.
        first, bounds, total = self._latency_slots[endpoint]
        slots[first + bisect_left(bounds, seconds)] += 1.0
        slots[total] += seconds

    def observe_batch(
        self,
        feeds: Mapping[str, npt.NDArray[Any]],
        predictions: npt.NDArray[Any],
        request_rows: list[int],
        call_rows: list[int],
    ) -> None:
        """Count onnxruntime calls (their feeds and predictions merged): rows per request and
        per call, feature bins and predictions."""
        slots = self.hot.slots
        self._rows.observe_all(slots, request_rows)
        self._batch_rows.observe_all(slots, call_rows)
        rows = len(predictions)
        if self._matrix is not None:
            if rows > _SMALL_BATCH:
                self._matrix.count(feeds, self.hot)
            else:
                self._matrix.count_rows(feeds, slots)
        else:
            for feature in self._features:
                feature.count(feeds, slots)
        if self._class_index:
            self._count_classes(predictions, slots)
        elif self._prediction_slots:
            self._count_values(predictions, slots)

    def _count_classes(self, predictions: npt.NDArray[Any], slots: memoryview[float]) -> None:
        if len(predictions) <= _SMALL_BATCH:
            pairs = [(value, 1) for value in predictions.ravel().tolist()]
        else:
            values, counts = np.unique(predictions, return_counts=True)
            pairs = list(zip(values.tolist(), counts.tolist(), strict=True))
        for value, count in pairs:
            slot = self._class_index.get(str(value))
            if slot is not None:
                slots[slot] += float(count)

    def _count_values(self, predictions: npt.NDArray[Any], slots: memoryview[float]) -> None:
        finite = predictions.astype(np.float64).ravel()
        finite = finite[~np.isnan(finite)]
        counts = np.bincount(
            bin_indices(finite, self._prediction_edges), minlength=len(self._prediction_slots)
        )
        for index in np.flatnonzero(counts).tolist():
            slots[self._prediction_slots[index]] += float(counts[index])

    def observe_labels(self, outcome: str, amount: int) -> None:
        """Count labels posted to /feedback (rows accepted, or requests repeating an id)."""
        self.labels.labels(*self.model_labels, outcome).inc(amount)

    def observe_side_channel(self, channel: str, outcome: str, amount: int = 1) -> None:
        """Count side channel records: shadow copies, payload log lines, prediction or label rows."""
        self.side_channel.labels(*self.model_labels, channel, outcome).inc(amount)

    def render(self) -> bytes:
        """The exposition text for ``/metrics`` (merged across workers in multiprocess mode)."""
        if self._multiprocess:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            cold = generate_latest(merged)
        else:
            cold = generate_latest(self.registry)
        return self.hot.render() + cold
