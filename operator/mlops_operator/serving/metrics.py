"""Prometheus metrics of the inference server: the same names for every model.

Every series carries ``model`` and ``model_version``. Drift needs no server-side
state beyond counters: each feature's values are counted into the training
reference's bins (``mlops_feature_bin_total``) and the reference proportions are
exported beside them (``mlops_feature_reference_proportion``), so PSI over any
window is one PromQL expression (``docs/serving.md``). Predictions get the same
pair. Feature and prediction counters are updated once per onnxruntime batch
with vectorised counts, so metrics cost a few calls per batch, not per value.

With several worker processes, prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor) merges their values.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from mlops_operator.modelcard import CategoricalReference
from mlops_operator.serving.model import ServedModel
from mlops_operator.statistics import bin_indices

__all__ = ["CONTENT_TYPE", "OTHER_CATEGORY", "ServingMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER_CATEGORY = "__other__"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
_MODEL_LABELS = ("model", "model_version")

# The `_created` twin of every series doubles the scrape for no use in PromQL.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _FeatureCounter:
    """Counts one feature's values into its reference bins."""

    def __init__(self, metrics: ServingMetrics, name: str, input_name: str, index: int) -> None:
        reference = metrics.model.card.reference[name]
        labels = (*metrics.model_labels, name)
        self.input_name, self.index = input_name, index
        self.edges: list[float] = []
        self.categories: dict[str, int] = {}
        if isinstance(reference, CategoricalReference):
            bins = [*reference.categories, OTHER_CATEGORY]
            self.categories = {c: i for i, c in enumerate(reference.categories)}
        else:
            # Values reach this counter as the input's dtype (float32, mostly) while the card's
            # edges are float64 training values: round the edges the same way, or a value equal
            # to an edge in training (frequent: decile edges are data values) would round up
            # past it here and land one bin higher, reading as drift on unchanged traffic.
            dtype = metrics.model.inputs[input_name].dtype
            width = np.float32 if dtype == "float32" else np.float64
            self.edges = np.asarray(reference.edges, dtype=width).astype(np.float64).tolist()
            bins = [str(i) for i in range(len(reference.edges) + 1)]
        self.children = [metrics.feature_bins.labels(*labels, b) for b in bins]
        self.non_finite = metrics.feature_non_finite.labels(*labels)
        for bin_label, proportion in zip(bins, reference.proportions, strict=True):
            metrics.feature_reference.labels(*labels, bin_label).set(proportion)

    def count(self, feeds: Mapping[str, npt.NDArray[Any]]) -> None:
        column = feeds[self.input_name][:, self.index]
        if self.categories:
            tally = Tally(self.categories.get(str(v), len(self.categories)) for v in column)
            for position, amount in tally.items():
                self.children[position].inc(amount)
            return
        values = column.astype(np.float64, copy=False)
        missing = np.isnan(values)
        if missing.any():
            self.non_finite.inc(int(missing.sum()))
            values = values[~missing]
        counts = np.bincount(bin_indices(values, self.edges), minlength=len(self.children))
        for index in np.flatnonzero(counts).tolist():
            self.children[index].inc(int(counts[index]))


class ServingMetrics:
    """All series of one served model, with label children bound once."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.model_labels = (model.name, model.version)
        self.registry = CollectorRegistry(auto_describe=True)
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._define()
        self._requests: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self._rows = self.request_rows.labels(*self.model_labels)
        self._batch_rows = self.batch_rows.labels(*self.model_labels)
        self.model_info.labels(*self.model_labels, model.sha256, model.card.signature.task).set(1)
        self._features = [
            _FeatureCounter(self, f.name, f.input, f.index)
            for f in model.card.signature.features
            if f.name in model.card.reference
        ]
        self._bind_predictions()

    def _define(self) -> None:
        registry, labels = self.registry, _MODEL_LABELS
        self.requests = Counter(
            "mlops_requests",
            "Requests by endpoint and outcome (ok, or the reason they were refused).",
            [*labels, "endpoint", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "mlops_request_duration_seconds",
            "Time from a request's arrival to its response, by endpoint.",
            [*labels, "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_rows = Histogram(
            "mlops_request_rows",
            "Rows per inference request.",
            labels,
            buckets=_ROW_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "mlops_batch_rows",
            "Rows per onnxruntime call (micro-batch size).",
            labels,
            buckets=_ROW_BUCKETS,
            registry=registry,
        )
        self.prediction_bins = Counter(
            "mlops_prediction_bin",
            "Predictions by class (classification) or by reference bin index (regression).",
            [*labels, "bin"],
            registry=registry,
        )
        self.prediction_reference = Gauge(
            "mlops_prediction_reference_proportion",
            "Share of each prediction bin on the training data.",
            [*labels, "bin"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.feature_bins = Counter(
            "mlops_feature_bin",
            "Input values per feature and training-reference bin (index, or category).",
            [*labels, "feature", "bin"],
            registry=registry,
        )
        self.feature_reference = Gauge(
            "mlops_feature_reference_proportion",
            "Share of each feature bin on the training data.",
            [*labels, "feature", "bin"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.feature_non_finite = Counter(
            "mlops_feature_non_finite",
            "Missing (NaN) input values per feature; not counted in any bin.",
            [*labels, "feature"],
            registry=registry,
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
            self._class_index = {c: i for i, c in enumerate(bins)}
        else:
            self._prediction_edges = reference.edges or []
            bins = [str(i) for i in range(len(self._prediction_edges) + 1)]
        for bin_label, proportion in zip(bins, reference.proportions, strict=True):
            self.prediction_reference.labels(*self.model_labels, bin_label).set(proportion)
        self._prediction_children = [
            self.prediction_bins.labels(*self.model_labels, b) for b in bins
        ]

    def observe_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (endpoint, outcome)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(*self.model_labels, *key)
        child.inc()
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.latency.labels(*self.model_labels, endpoint)
        latency.observe(seconds)

    def observe_batch(
        self,
        feeds: Mapping[str, npt.NDArray[Any]],
        predictions: npt.NDArray[Any],
        request_rows: list[int],
    ) -> None:
        """Count one onnxruntime batch: rows per request, feature bins and predictions."""
        for rows in request_rows:
            self._rows.observe(rows)
        self._batch_rows.observe(len(predictions))
        for feature in self._features:
            feature.count(feeds)
        if self._class_index:
            values, counts = np.unique(predictions, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                position = self._class_index.get(str(value))
                if position is not None:
                    self._prediction_children[position].inc(count)
        elif self._prediction_children:
            finite = predictions.astype(np.float64).ravel()
            counts = np.bincount(
                bin_indices(finite[~np.isnan(finite)], self._prediction_edges),
                minlength=len(self._prediction_children),
            )
            for index in np.flatnonzero(counts).tolist():
                self._prediction_children[index].inc(int(counts[index]))

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
            return generate_latest(merged)
        return generate_latest(self.registry)
