"""The charts' data: aligned columns for uPlot, tables, which version was live when.

Aspects: lines with different times align on one x axis with gaps as None; thresholds
become flat series after the lines; the status fallback reads ``status.evaluations``;
the live-version chart steps through the history and reaches now.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlops_operator.console.series import Chart, Line, live_version_chart, status_charts
from mlops_operator.console.views import live_periods
from tests.unit.console.objects import HISTORY, POLICY


def test_lines_align_on_one_axis_and_thresholds_follow() -> None:
    chart = Chart(
        "c",
        "t",
        "y",
        [Line("a", [(1.0, 0.1), (3.0, 0.3)]), Line("b", [(2.0, 0.2)])],
        "test",
        thresholds=[("limit", 0.25)],
    )
    data = chart.data()
    assert data["columns"] == [
        [1.0, 2.0, 3.0],
        [0.1, None, 0.3],
        [None, 0.2, None],
        [0.25, 0.25, 0.25],
    ]
    assert data["series"] == ["a", "b", "limit"]
    assert chart.count == 3
    assert chart.table() == [[1.0, 0.1, None], [2.0, None, 0.2], [3.0, 0.3, None]]


def test_the_status_fallback_reads_the_kept_evaluations() -> None:
    psi, prediction, accuracy = status_charts(POLICY)
    assert [line.label for line in psi.lines] == ["petal_length", "sepal_width"]
    assert psi.count == 4
    assert prediction.count == 0
    assert [line.label for line in accuracy.lines] == ["accuracy"]
    assert accuracy.thresholds == [("accuracy floor", 0.8)]


def test_the_live_version_steps_through_the_history_to_now() -> None:
    now = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    periods = live_periods(HISTORY, now)
    assert [(p["version"], p["entry"]["action"]) for p in periods] == [
        (1, "Deploy"),
        (2, "Promote"),
        (1, "Rollback"),
    ]
    assert periods[1]["seconds"] == 600
    assert periods[-1]["current"]
    chart = live_version_chart(periods, now)
    assert [v for _, v in chart.lines[0].points] == [1.0, 2.0, 1.0, 1.0]
    assert chart.lines[0].points[-1][0] == now.timestamp()
