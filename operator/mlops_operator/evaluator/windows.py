"""Windows of predictions, judged once enough of their labels arrived: pure, so tests state the rules.

Windows are tumbling and go by **prediction time**: window ``k`` holds the
predictions made in ``[k·W, (k+1)·W)`` (epoch milliseconds), whenever their labels
come. Label coverage is the share of a window's predicted rows that have a label.
For each served version:

- the **judged** window is the newest window whose coverage reached
  ``minLabelCoverage``: realized accuracy, F1, RMSE and MAE are read from it, so a
  window whose labels have not arrived yet never reads as decay;
- the **newest** window is the one with the latest predictions: its coverage is
  what is still pending, and its estimated accuracy (CBPE, the mean calibrated
  confidence) needs no label at all;
- windows older than ``maxLabelDelay`` whose coverage never reached the share are
  **expired**: counted, never judged;
- **lifetime** merges every window within the retention (what a one-off audit or
  the scale test compares against the client's own accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Judged", "WindowStats", "judge", "merge"]


@dataclass(frozen=True)
class WindowStats:
    """What one window of one version holds: its predictions joined with their labels."""

    version: str
    start_ms: int
    end_ms: int
    predictions: int = 0
    labelled: int = 0
    correct: int = 0
    confidence_sum: float = 0.0
    confident_rows: int = 0
    labelled_confidence_sum: float = 0.0
    squared_error: float = 0.0
    absolute_error: float = 0.0
    duplicates: int = 0
    confusion: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Labelled rows by (predicted class, true class)."""

    @property
    def coverage(self) -> float:
        """Share of the predicted rows that have a label."""
        return self.labelled / self.predictions if self.predictions else 0.0

    @property
    def accuracy(self) -> float | None:
        """Share of labelled rows predicted right (classifiers)."""
        return self.correct / self.labelled if self.labelled and self.confusion else None

    @property
    def rmse(self) -> float | None:
        """Root mean squared error over the labelled rows (regressors)."""
        if not self.labelled or self.confusion:
            return None
        return math.sqrt(self.squared_error / self.labelled)

    @property
    def mae(self) -> float | None:
        """Mean absolute error over the labelled rows (regressors)."""
        return None if not self.labelled or self.confusion else self.absolute_error / self.labelled

    @property
    def f1_macro(self) -> float | None:
        """Macro-averaged F1 over the classes seen as truth or prediction (as scikit-learn's)."""
        if not self.labelled or not self.confusion:
            return None
        classes = {c for pair in self.confusion for c in pair}
        scores = []
        for name in sorted(classes):
            true_positive = self.confusion.get((name, name), 0)
            predicted = sum(n for (p, _), n in self.confusion.items() if p == name)
            actual = sum(n for (_, a), n in self.confusion.items() if a == name)
            scores.append(2 * true_positive / (predicted + actual) if predicted + actual else 0.0)
        return sum(scores) / len(scores)

    @property
    def estimated_accuracy(self) -> float | None:
        """CBPE: the mean calibrated confidence of the predicted rows (no label needed)."""
        return self.confidence_sum / self.confident_rows if self.confident_rows else None

    @property
    def estimated_accuracy_of_labelled(self) -> float | None:
        """CBPE over the labelled rows only: what the realized accuracy is checked against."""
        if not self.labelled or not self.confident_rows:
            return None
        return self.labelled_confidence_sum / self.labelled


def merge(windows: Iterable[WindowStats]) -> WindowStats | None:
    """One window spanning `windows` (of one version); None when there are none."""
    items = sorted(windows, key=lambda w: w.start_ms)
    if not items:
        return None
    confusion: dict[tuple[str, str], int] = {}
    for window in items:
        for pair, count in window.confusion.items():
            confusion[pair] = confusion.get(pair, 0) + count
    return WindowStats(
        version=items[0].version,
        start_ms=items[0].start_ms,
        end_ms=items[-1].end_ms,
        predictions=sum(w.predictions for w in items),
        labelled=sum(w.labelled for w in items),
        correct=sum(w.correct for w in items),
        confidence_sum=sum(w.confidence_sum for w in items),
        confident_rows=sum(w.confident_rows for w in items),
        labelled_confidence_sum=sum(w.labelled_confidence_sum for w in items),
        squared_error=sum(w.squared_error for w in items),
        absolute_error=sum(w.absolute_error for w in items),
        duplicates=sum(w.duplicates for w in items),
        confusion=confusion,
    )


@dataclass(frozen=True)
class Judged:
    """The windows of one version that the metrics report."""

    judged: WindowStats | None
    newest: WindowStats
    lifetime: WindowStats
    expired: int


def judge(
    windows: Iterable[WindowStats],
    *,
    now_ms: int,
    min_coverage: float,
    max_delay_ms: int,
) -> dict[str, Judged]:
    """The judged, newest and lifetime windows per version (module docstring)."""
    by_version: dict[str, list[WindowStats]] = {}
    for window in windows:
        if window.predictions > 0:
            by_version.setdefault(window.version, []).append(window)
    result = {}
    for version, items in by_version.items():
        items.sort(key=lambda w: w.start_ms)
        covered = [w for w in items if w.coverage >= min_coverage]
        expired = sum(
            1 for w in items if w.coverage < min_coverage and w.end_ms + max_delay_ms <= now_ms
        )
        lifetime = merge(items)
        assert lifetime is not None  # items is never empty here
        result[version] = Judged(covered[-1] if covered else None, items[-1], lifetime, expired)
    return result
