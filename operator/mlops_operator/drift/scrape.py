"""The fallback without Prometheus: scrape the serving pods' ``/metrics`` and difference them.

The server's counters only grow (from zero when its process starts), so the
counts of a window are the difference between the latest scrape of each pod and
its scrape from one window ago, as Prometheus' ``increase`` computes them, minus
the extrapolation. `ScrapeHistory` keeps those scrapes in memory per policy:

- a pod scraped for less than a window and started within it counts from zero;
- a pod scraped for less than a window but older than it (the operator restarted)
  counts from its oldest scrape: a shorter window, said so in the message;
- a counter that went down was reset (the process restarted): its new value is the
  increase, as in Prometheus.

The result is a `WindowCounts`, so every statistic is computed by the same code
as for Prometheus.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp

from mlops_operator.drift import promql
from mlops_operator.drift.measure import WindowCounts, assemble
from mlops_operator.drift.prometheus import SourceError
from mlops_operator.prometheus import Sample, ScrapeError, parse_exposition
from mlops_operator.prometheus import scrape as read_metrics
from mlops_operator.prometheus.scrape import MAX_BYTES
from mlops_operator.realized import VERSION_GAUGES

__all__ = ["PodTarget", "ScrapeHistory", "Snapshot", "parse_metrics", "scrape"]

_COUNTERS = {
    "mlops_feature_bin_total": "feature_bins",
    "mlops_prediction_bin_total": "prediction_bins",
}
_GAUGES = {
    "mlops_feature_reference_proportion": "feature_reference",
    "mlops_prediction_reference_proportion": "prediction_reference",
    # The evaluator's pod is scraped beside the servers; its gauges are read as they stand.
    **dict.fromkeys(VERSION_GAUGES.values(), "realized"),
}

SeriesKey = tuple[str, frozenset[tuple[str, str]]]
"""A series: its sample name and its labels."""


def parse_metrics(text: str) -> dict[SeriesKey, float]:
    """The drift-related series of one ``/metrics`` exposition, by name and labels."""
    return _keep(parse_exposition(text))


def _keep(samples: Iterable[Sample]) -> dict[SeriesKey, float]:
    series: dict[SeriesKey, float] = {}
    for sample in samples:
        if sample.name in _COUNTERS or sample.name in _GAUGES:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "__name__")
            series[(sample.name, labels)] = sample.value
    return series


@dataclass(frozen=True)
class Snapshot:
    """One scrape of one pod."""

    time: datetime
    series: Mapping[SeriesKey, float]


@dataclass(frozen=True)
class PodTarget:
    """A serving pod to scrape: its uid, metrics URL and start time."""

    uid: str
    url: str
    started: datetime | None


@dataclass
class _PodHistory:
    started: datetime | None
    snapshots: list[Snapshot] = field(default_factory=list)


def _increase(before: float, after: float) -> float:
    return after if after < before else after - before


def _in_scope(labels: Mapping[str, str], scope: promql.Scope) -> bool:
    if labels.get("model") != scope.model:
        return False
    return scope.model_version is None or labels.get("model_version") == scope.model_version


class ScrapeHistory:
    """The scrapes of one policy's serving pods, kept for one window (and one scrape more)."""

    def __init__(self, max_snapshots: int = 512) -> None:
        self._pods: dict[str, _PodHistory] = {}
        self._max = max_snapshots

    def record(self, target: PodTarget, snapshot: Snapshot) -> None:
        """Keep `snapshot` of `target`'s pod."""
        history = self._pods.setdefault(target.uid, _PodHistory(target.started))
        history.snapshots.append(snapshot)
        del history.snapshots[: max(0, len(history.snapshots) - self._max)]

    def forget(self, live: Iterable[str], now: datetime, window: timedelta) -> None:
        """Drop pods that are gone and not needed for the window, and scrapes older than it."""
        alive = set(live)
        for uid in list(self._pods):
            snapshots = self._pods[uid].snapshots
            times = [s.time for s in snapshots]
            # Keep the newest scrape at or before the window's start: it is the baseline.
            first = max(0, bisect.bisect_right(times, now - window) - 1)
            del snapshots[:first]
            if uid not in alive and (not snapshots or snapshots[-1].time < now - window):
                del self._pods[uid]

    def window_counts(
        self, scope: promql.Scope, now: datetime, window: timedelta
    ) -> tuple[dict[str, WindowCounts], str]:
        """The counts per served version of the window ending `now`, and a note when the
        window is shorter than asked."""
        collected: dict[str, list[Sample]] = {name: [] for name in {*_COUNTERS.values()}}
        collected |= {name: [] for name in _GAUGES.values()}
        references = ("feature_reference", "prediction_reference")
        short: list[str] = []
        start = now - window
        for uid, history in self._pods.items():
            if not history.snapshots:
                continue
            latest = history.snapshots[-1]
            baseline = self._baseline(history, start)
            if baseline is None and history.started is not None and history.started < start:
                baseline = history.snapshots[0]
                short.append(f"pod {uid} since {baseline.time.isoformat()}")
            for (name, labels), value in latest.series.items():
                label_map = dict(labels)
                if not _in_scope(label_map, scope):
                    continue
                if name in _GAUGES:
                    collected[_GAUGES[name]].append(Sample(label_map | {"__name__": name}, value))
                    continue
                before = baseline.series.get((name, labels), 0.0) if baseline else 0.0
                collected[_COUNTERS[name]].append(Sample(label_map, _increase(before, value)))
        if not any(collected[name] for name in references):
            raise SourceError(f"no serving pod exports metrics of {scope.matchers()}")
        counts = assemble(
            feature_bins=collected["feature_bins"],
            feature_reference=collected["feature_reference"],
            prediction_bins=collected["prediction_bins"],
            prediction_reference=collected["prediction_reference"],
            realized=collected["realized"],
        )
        note = f"window shorter than asked (scraped only {'; '.join(short)})" if short else ""
        return counts, note

    @staticmethod
    def _baseline(history: _PodHistory, start: datetime) -> Snapshot | None:
        times = [s.time for s in history.snapshots]
        index = bisect.bisect_right(times, start) - 1
        return history.snapshots[index] if index >= 0 else None


async def scrape(
    session: aiohttp.ClientSession,
    targets: Sequence[PodTarget],
    *,
    timeout_seconds: float,
    max_bytes: int = MAX_BYTES,
    now: datetime,
) -> list[tuple[PodTarget, Snapshot]]:
    """Scrape every target at once; fails only when none answers (one down pod is tolerated)."""
    if not targets:
        raise SourceError("no running serving pod to scrape")

    async def one(target: PodTarget) -> tuple[PodTarget, Snapshot] | str:
        try:
            async with asyncio.timeout(timeout_seconds):
                samples = await read_metrics(target.url, session=session, max_bytes=max_bytes)
        except (ScrapeError, TimeoutError) as error:
            return f"{target.url}: {error or 'timed out'}"
        return target, Snapshot(now, _keep(samples))

    results = await asyncio.gather(*(one(t) for t in targets))
    answered = [r for r in results if not isinstance(r, str)]
    if not answered:
        raise SourceError("no serving pod answered: " + "; ".join(str(r) for r in results))
    return answered
