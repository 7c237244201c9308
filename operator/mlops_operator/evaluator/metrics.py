"""The evaluator's ``/metrics``: the latest join's numbers as gauges (names in `realized`).

A custom collector renders the snapshot the last join produced, so a version that
stopped serving disappears with the data instead of lingering as a stale series.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mlops_operator.evaluator.join import JoinTotals
from mlops_operator.evaluator.windows import Judged
from mlops_operator.realized import GAUGES, VERSION_GAUGES

__all__ = ["Snapshot", "render", "version_values"]

_HELP = {
    "realized_accuracy": "Accuracy over the judged window (the newest with enough labels).",
    "realized_f1_macro": "Macro F1 over the judged window.",
    "realized_rmse": "RMSE over the judged window (regression).",
    "realized_mae": "MAE over the judged window (regression).",
    "realized_labelled_rows": "Labelled rows in the judged window.",
    "realized_predictions": "Predicted rows in the judged window.",
    "realized_coverage": "Label coverage of the judged window.",
    "realized_window_start": "Start of the judged window (prediction time, Unix seconds).",
    "estimated_accuracy": "CBPE: accuracy estimated from calibrated confidence, newest window.",
    "estimated_predictions": "Predicted rows the estimate is over.",
    "estimated_window_start": "Start of the newest window (Unix seconds).",
    "cbpe_absolute_error": "|CBPE - realized accuracy| on the judged window's labelled rows.",
    "label_coverage": "Share of the newest window's rows labelled so far.",
    "expired_windows": "Windows past maxLabelDelay whose coverage never reached the share.",
    "lifetime_predictions": "Predicted rows within the retention.",
    "lifetime_labelled_rows": "Labelled rows within the retention.",
    "lifetime_accuracy": "Accuracy of every labelled row within the retention.",
    "lifetime_rmse": "RMSE of every labelled row within the retention.",
    "duplicate_label_rows": "Label rows that repeated an already labelled row (last one kept).",
    "unmatched_labels": "Labels whose prediction is not in the log.",
    "last_join": "When the last join finished (Unix seconds).",
    "join_seconds": "How long the last join took.",
}


def version_values(judged: Judged) -> dict[str, float | None]:
    """The per-version gauges' values (None: not exported) for one version's windows."""
    window, newest, lifetime = judged.judged, judged.newest, judged.lifetime
    values: dict[str, float | None] = {
        "estimated_accuracy": newest.estimated_accuracy,
        "estimated_predictions": float(newest.predictions),
        "estimated_window_start": newest.start_ms / 1000,
        "label_coverage": newest.coverage,
        "expired_windows": float(judged.expired),
        "lifetime_predictions": float(lifetime.predictions),
        "lifetime_labelled_rows": float(lifetime.labelled),
        "lifetime_accuracy": lifetime.accuracy,
        "lifetime_rmse": lifetime.rmse,
        "duplicate_label_rows": float(lifetime.duplicates),
    }
    if window is not None:
        estimated = window.estimated_accuracy_of_labelled
        realized = window.accuracy
        values |= {
            "realized_accuracy": realized,
            "realized_f1_macro": window.f1_macro,
            "realized_rmse": window.rmse,
            "realized_mae": window.mae,
            "realized_labelled_rows": float(window.labelled),
            "realized_predictions": float(window.predictions),
            "realized_coverage": window.coverage,
            "realized_window_start": window.start_ms / 1000,
            "cbpe_absolute_error": (
                abs(estimated - realized)
                if estimated is not None and realized is not None
                else None
            ),
        }
    return values


@dataclass
class Snapshot:
    """What the last join found, ready to render."""

    model: str
    versions: Mapping[str, Judged] = field(default_factory=dict)
    totals: JoinTotals = field(default_factory=lambda: JoinTotals(0, 0))
    finished: float = 0.0
    seconds: float = 0.0


class _Collector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot
        values = {version: version_values(j) for version, j in snapshot.versions.items()}
        for key, name in VERSION_GAUGES.items():
            family = GaugeMetricFamily(name, _HELP[key], labels=["model", "model_version"])
            for version in sorted(values):
                value = values[version].get(key)
                if value is not None:
                    family.add_metric([snapshot.model, version], value)
            yield family
        per_model = {
            "unmatched_labels": float(snapshot.totals.unmatched_labels),
            "last_join": snapshot.finished,
            "join_seconds": snapshot.seconds,
        }
        for key, name in GAUGES.items():
            family = GaugeMetricFamily(name, _HELP[key], labels=["model"])
            family.add_metric([snapshot.model], per_model[key])
            yield family


def render(snapshot: Snapshot) -> bytes:
    """The exposition text of `snapshot`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshot))
    return generate_latest(registry)
