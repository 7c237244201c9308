"""The demo's summary and its report: PSI and accuracy over time, and the lineage graph.

`summarize` reduces a run to the figures a person wants at the end (versions,
times from the drift onset, PSI and accuracy before and after); `write_report`
draws the plots (matplotlib, PNG) and writes them with the summary into one
HTML file beside them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_operator.demo.traffic import Observation

__all__ = ["Summary", "accuracy_between", "summarize", "write_report"]

PsiSeries = dict[tuple[str, str], list[tuple[float, float]]]


@dataclass
class Summary:
    """The run in numbers."""

    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """Durations: drift onset to retrain trigger, to v2 serving, to v2 promoted; whole run."""
    psi: dict[str, float | None] = field(default_factory=dict)
    """Largest feature PSI of the champion: reference phase (v1), drift (v1), after (v2)."""
    accuracy: dict[str, float | None] = field(default_factory=dict)
    """Client-side accuracy: reference phase (v1), drift (v1), after the promotion (v2)."""
    retrains: int = 0

    def lines(self) -> list[str]:
        """The summary as lines for the terminal."""
        out = ["versions:"]
        for name, facts in self.versions.items():
            out.append(f"  {name}: {facts}")
        out.append("times (from the drift onset):")
        for name, value in self.seconds.items():
            out.append(f"  {name:<28} {value:7.1f} s")
        out.append("champion's largest feature PSI / client-side accuracy:")
        for phase in ("reference", "drift", "after"):
            out.append(
                f"  {phase:<10} PSI {_fmt(self.psi.get(phase))}   accuracy {_fmt(self.accuracy.get(phase))}"
            )
        out.append(f"retrains: {self.retrains}")
        return out


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def accuracy_between(
    observations: Sequence[Observation], start: float, end: float, version: str | None = None
) -> float | None:
    """Share of rows answered correctly in [start, end) (by `version` when given)."""
    rows = correct = 0
    for seen in observations:
        if start <= seen.time < end and (version is None or seen.version == version):
            rows += seen.rows
            correct += seen.correct
    return correct / rows if rows else None


def _max_psi(series: PsiSeries, version: str, at: float) -> float | None:
    """The largest feature PSI of `version` at the sample closest before `at`."""
    values = []
    for (served, _), points in series.items():
        before = [v for t, v in points if served == version and t <= at]
        if before:
            values.append(before[-1])
    return max(values) if values else None


def summarize(
    marks: dict[str, float],
    observations: Sequence[Observation],
    series: PsiSeries,
    versions: dict[str, dict[str, Any]],
    retrains: int,
    started: float,
) -> Summary:
    """The run's figures from its marks (epoch seconds), the client's view and Prometheus."""
    onset = marks["drift_onset"]
    summary = Summary(versions=versions, retrains=retrains)
    for label, mark in (
        ("drift onset -> retrain", "retrain_triggered"),
        ("drift onset -> v2 validated", "v2_validated"),
        ("drift onset -> v2 serving", "serving_v2"),
        ("drift onset -> v2 promoted", "promoted"),
    ):
        if mark in marks:
            summary.seconds[label] = marks[mark] - onset
    summary.seconds["whole run"] = marks.get("recovered", onset) - started
    end = marks.get("recovered", onset)
    summary.psi = {
        "reference": _max_psi(series, "1", onset),
        # v1's last reading before it stopped serving: its window then holds only shifted traffic.
        "drift": _max_psi(series, "1", marks.get("promoted", end)),
        "after": _max_psi(series, "2", end),
    }
    summary.accuracy = {
        "reference": accuracy_between(observations, marks.get("serving_v1", started), onset, "1"),
        "drift": accuracy_between(observations, onset, marks.get("serving_v2", end), "1"),
        "after": accuracy_between(observations, marks.get("promoted", end), end, "2"),
    }
    return summary


def _psi_plot(series: PsiSeries, marks: dict[str, float], origin: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4))
    for (version, feature), points in sorted(series.items()):
        if points:
            axis.plot([t - origin for t, _ in points], [v for _, v in points],
                      label=f"v{version} {feature}", linestyle="-" if version == "1" else "--")  # fmt: skip
    _marks(axis, marks, origin)
    axis.axhline(0.25, color="grey", linewidth=0.8, linestyle=":")
    axis.set_yscale("symlog", linthresh=0.1)
    axis.set_ylim(bottom=0)
    axis.set(xlabel="seconds since the cluster was ready", ylabel="PSI (30 s window)",
             title="Feature PSI of each served version against its own training reference")  # fmt: skip
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _accuracy_plot(
    observations: Sequence[Observation], marks: dict[str, float], origin: float, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3.5))
    for version in sorted({o.version for o in observations if o.version}):
        buckets: dict[int, list[int]] = {}
        for seen in observations:
            if seen.version == version:
                bucket = buckets.setdefault(int((seen.time - origin) // 5), [0, 0])
                bucket[0] += seen.correct
                bucket[1] += seen.rows
        xs = sorted(buckets)
        axis.plot([x * 5 + 2.5 for x in xs], [buckets[x][0] / buckets[x][1] for x in xs],
                  marker=".", label=f"answered by v{version}")  # fmt: skip
    _marks(axis, marks, origin)
    axis.set(xlabel="seconds since the cluster was ready", ylabel="accuracy (5 s buckets)",
             ylim=(0, 1.05), title="Accuracy of the answers the client received")  # fmt: skip
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _marks(axis: Any, marks: dict[str, float], origin: float) -> None:
    for name, color in (("drift_onset", "red"), ("retrain_triggered", "orange"),
                        ("serving_v2", "purple"), ("promoted", "green")):  # fmt: skip
        if name in marks:
            axis.axvline(marks[name] - origin, color=color, linewidth=1)
            axis.annotate(name.replace("_", " "), (marks[name] - origin, 1), xycoords=("data", "axes fraction"),
                          rotation=90, fontsize=7, va="top", ha="right", color=color)  # fmt: skip


def _lineage_plot(
    chains: Sequence[Sequence[str]], path: Path, parents: Mapping[str, str] | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ["dataset", "TrainingJob", "ModelVersion", "ModelDeployment"]
    figure, axis = plt.subplots(figsize=(10, 1.4 + 1.1 * len(chains)))
    axis.set_axis_off()
    axis.set_xlim(-0.5, len(kinds) - 0.5)
    axis.set_ylim(-0.7, len(chains) - 0.3)
    for column, kind in enumerate(kinds):
        axis.text(column, len(chains) - 0.45, kind, ha="center", fontsize=9, weight="bold")
    for row, chain in enumerate(chains):
        y = len(chains) - 1 - row
        for column, label in enumerate(chain):
            axis.text(column, y, label, ha="center", va="center", fontsize=7.5, wrap=True,
                      bbox={"boxstyle": "round", "facecolor": "#eef", "edgecolor": "#446"})  # fmt: skip
            if column:
                axis.annotate("", xy=(column - 0.42, y), xytext=(column - 0.58, y),
                              arrowprops={"arrowstyle": "->"})  # fmt: skip
    # A retrained version's lineage names its parent: the rows are one loop, not two stories.
    rows = {chain[2]: len(chains) - 1 - row for row, chain in enumerate(chains) if len(chain) > 2}
    for child, parent in (parents or {}).items():
        if child in rows and parent in rows:
            axis.annotate("retrained into", xy=(2, rows[child] + 0.25), xytext=(2, rows[parent] - 0.25),
                          ha="center", va="center", fontsize=7, color="#b3261e",
                          arrowprops={"arrowstyle": "->", "color": "#b3261e", "linestyle": "--"})  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(
    path: Path,
    summary: Summary,
    series: PsiSeries,
    observations: Sequence[Observation],
    marks: dict[str, float],
    lineage: Sequence[Sequence[str]],
    origin: float,
    stages: Sequence[Any] = (),
    parents: Mapping[str, str] | None = None,
) -> Path:
    """Write the HTML report and its PNG plots beside it; return the report's path.

    `parents` maps a retrained version to the version it was retrained from (its
    ``lineage.parentVersion``), drawn between the lineage rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    psi_png, accuracy_png, lineage_png = (
        path.with_name(f"{stem}-{n}.png") for n in ("psi", "accuracy", "lineage")
    )
    _psi_plot(series, marks, origin, psi_png)
    _accuracy_plot(observations, marks, origin, accuracy_png)
    _lineage_plot(lineage, lineage_png, parents)
    stage_rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{s.started - origin:.1f}</td><td>{s.finished - s.started:.1f}</td></tr>"
        for s in stages
    )
    details = "".join(
        f"<h3>{html.escape(s.name)}</h3><pre>{html.escape(json.dumps(s.facts, indent=2, default=str)[:6000])}</pre>"
        for s in stages
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mlops-operator: the iris loop</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}} pre{{background:#f6f6f6;padding:.5em;overflow:auto}}
td,th{{padding:.2em .8em;text-align:left}}</style></head><body>
<h1>The iris loop: drift, retrain, canary, recovery</h1>
<h2>Summary</h2><pre>{html.escape(chr(10).join(summary.lines()))}</pre>
<h2>PSI per feature</h2><img src="{psi_png.name}" alt="PSI per feature over time">
<h2>Accuracy over time</h2><img src="{accuracy_png.name}" alt="accuracy over time">
<h2>Lineage</h2><img src="{lineage_png.name}" alt="dataset to TrainingJob to ModelVersion to ModelDeployment">
<h2>Stages</h2><table><tr><th>stage</th><th>start (s)</th><th>took (s)</th></tr>{stage_rows}</table>
<h2>What each stage saw</h2>{details}
</body></html>
"""
    path.write_text(page)
    return path
