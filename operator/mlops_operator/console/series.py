"""The console's charts: which version was live over time, and a DriftPolicy's values over time.

A DriftPolicy's charts come from Prometheus when it answers: the same PromQL the
operator decides with (`drift.promql`), evaluated over time with a range query, so
the picture is exactly what the policy judges. Without Prometheus (none configured,
or it fails) they come from the last evaluations the policy keeps in its status
(``status.evaluations``), and say so.

A `Chart` is plain data: the x axis (Unix seconds) and one line per series, aligned
on it as uPlot wants, plus thresholds drawn as flat lines. The page embeds it as
JSON for the chart library, and as a table for people who do not see the chart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops_operator.prometheus import PrometheusClient, PrometheusError, Series, promql

__all__ = [
    "Chart",
    "Line",
    "live_version_chart",
    "policy_charts",
    "prometheus_charts",
    "status_charts",
]

_MAX_POINTS = 300
_MIN_STEP = 5.0
_LOOKBACK = 6 * 3600.0


@dataclass(frozen=True)
class Line:
    """One series: a label and its (time, value) points."""

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Chart:
    """A chart's data and what it means."""

    id: str
    title: str
    y_label: str
    lines: Sequence[Line]
    source: str
    thresholds: Sequence[tuple[str, float]] = ()
    stepped: bool = False
    note: str = ""

    @property
    def x(self) -> list[float]:
        """Every time any line has a point, in order."""
        return sorted({t for line in self.lines for t, _ in line.points})

    @property
    def count(self) -> int:
        """Points drawn (thresholds aside)."""
        return sum(len(line.points) for line in self.lines)

    def table(self) -> list[list[float | None]]:
        """Rows of (time, value of each line or None): the chart as a table."""
        by_line = [dict(line.points) for line in self.lines]
        return [[t, *(values.get(t) for values in by_line)] for t in self.x]

    def data(self) -> dict[str, Any]:
        """What the page hands to the chart library: aligned columns and series names."""
        x = self.x
        by_line = [dict(line.points) for line in self.lines]
        columns: list[list[float | None]] = [list(x)]
        columns += [[values.get(t) for t in x] for values in by_line]
        for _, level in self.thresholds:
            columns.append([level for _ in x])
        return {
            "id": self.id,
            "title": self.title,
            "yLabel": self.y_label,
            "series": [line.label for line in self.lines] + [label for label, _ in self.thresholds],
            "thresholds": len(self.thresholds),
            "stepped": self.stepped,
            "integer": self.stepped,
            "columns": columns,
        }


def _epoch(stamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return None


def live_version_chart(periods: Sequence[Mapping[str, Any]], now: datetime) -> Chart:
    """The version serving over time, as steps (from `views.live_periods`)."""
    points = [
        (p["start"].timestamp(), float(p["version"]))
        for p in periods
        if p.get("start") is not None and isinstance(p.get("version"), int)
    ]
    if points:
        points.append((now.timestamp(), points[-1][1]))
    return Chart(
        id="live-version",
        title="Version serving over time",
        y_label="version",
        lines=[Line("live version", points)],
        source="status.history",
        stepped=True,
    )


@dataclass
class _Lines:
    """Points gathered per label, in arrival order."""

    by_label: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, label: str, at: float, value: float) -> None:
        if math.isfinite(value):
            self.by_label.setdefault(label, []).append((at, value))

    def lines(self) -> list[Line]:
        return [Line(label, sorted(points)) for label, points in sorted(self.by_label.items())]


def _thresholds(spec: Mapping[str, Any]) -> dict[str, list[tuple[str, float]]]:
    triggers = spec.get("triggers") or {}
    found: dict[str, list[tuple[str, float]]] = {"psi": [], "prediction": [], "accuracy": []}
    feature = triggers.get("featureDrift") or {}
    if "psiThreshold" in feature:
        found["psi"].append(("PSI threshold", float(feature["psiThreshold"])))
    prediction = triggers.get("predictionDrift") or {}
    if "psiThreshold" in prediction:
        found["prediction"].append(("PSI threshold", float(prediction["psiThreshold"])))
    accuracy = triggers.get("accuracy") or {}
    if "floor" in accuracy:
        found["accuracy"].append(("accuracy floor", float(accuracy["floor"])))
    return found


def _charts(
    spec: Mapping[str, Any], psi: _Lines, prediction: _Lines, accuracy: _Lines, source: str
) -> list[Chart]:
    limits = _thresholds(spec)
    return [
        Chart("feature-psi", "PSI per feature", "PSI", psi.lines(), source, limits["psi"]),
        Chart(
            "prediction-psi",
            "Prediction drift (PSI of the predictions)",
            "PSI",
            prediction.lines(),
            source,
            limits["prediction"],
        ),
        Chart(
            "accuracy",
            "Accuracy (realized from labelled feedback; estimated where the policy measures it)",
            "accuracy",
            accuracy.lines(),
            source,
            limits["accuracy"],
        ),
    ]


def status_charts(policy: Mapping[str, Any]) -> list[Chart]:
    """The charts from ``status.evaluations`` (the last evaluations the policy kept)."""
    spec, status = policy.get("spec") or {}, policy.get("status") or {}
    psi, prediction, accuracy = _Lines(), _Lines(), _Lines()
    for record in status.get("evaluations") or []:
        at = _epoch(record.get("time"))
        if at is None:
            continue
        for feature, value in (record.get("featurePsi") or {}).items():
            psi.add(feature, at, float(value))
        for name, value in (record.get("values") or {}).items():
            if name == "predictionDrift":
                prediction.add("predictions", at, float(value))
            elif "accuracy" in name.lower():
                accuracy.add(name, at, float(value))
    return _charts(spec, psi, prediction, accuracy, "status.evaluations")


def _label(series: Series, name: str) -> str:
    """`name` (a feature, or what the series is) and the version it belongs to."""
    version = series.labels.get("model_version")
    return f"{name} (v{version})" if version else name


async def prometheus_charts(
    client: PrometheusClient,
    policy: Mapping[str, Any],
    model: str,
    now: datetime,
    lookback: float = _LOOKBACK,
) -> list[Chart]:
    """The charts from Prometheus: the policy's own expressions over the last `lookback` s."""
    spec = policy.get("spec") or {}
    metadata = policy.get("metadata") or {}
    end = now.timestamp()
    created = _epoch(metadata.get("creationTimestamp")) or end - lookback
    start = max(created, end - lookback)
    step = max(_MIN_STEP, math.ceil((end - start) / _MAX_POINTS))
    scope = promql.Scope(model=model, namespace=metadata.get("namespace"))
    window = str(spec.get("window") or "1h")
    features = (spec.get("triggers") or {}).get("featureDrift") or {}
    queries = {
        "psi": promql.feature_psi(scope, window, features.get("features")),
        "prediction": promql.prediction_psi(scope, window),
        "accuracy": promql.realized_accuracy(scope),
        "estimated": promql.estimated_accuracy(scope),
    }
    found = {}
    for key, query in queries.items():
        found[key] = await client.query_range(query, start=start, end=end, step=step)
    psi, prediction, accuracy = _Lines(), _Lines(), _Lines()
    for series in found["psi"]:
        for at, value in series.points:
            psi.add(_label(series, series.labels.get("feature", "feature")), at, value)
    for series in found["prediction"]:
        for at, value in series.points:
            prediction.add(_label(series, "predictions"), at, value)
    for key, name in (("accuracy", "realized"), ("estimated", "estimated (CBPE)")):
        for series in found[key]:
            for at, value in series.points:
                accuracy.add(_label(series, name), at, value)
    return _charts(spec, psi, prediction, accuracy, "Prometheus")


async def policy_charts(
    client: PrometheusClient | None, policy: Mapping[str, Any], model: str | None, now: datetime
) -> tuple[list[Chart], str]:
    """The charts from Prometheus when it answers, else from the status; and a note on which."""
    if client is None or model is None:
        reason = "no Prometheus configured" if client is None else "the deployment is not found"
        return status_charts(policy), f"From the policy's last evaluations ({reason})."
    try:
        charts = await prometheus_charts(client, policy, model, now)
    except PrometheusError as error:
        return status_charts(policy), f"From the policy's last evaluations: {error}"
    return charts, f"From Prometheus at {client.base_url}."
