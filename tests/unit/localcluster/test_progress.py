"""Build steps that report while they run: a heartbeat with the elapsed time and an estimate.

Aspects: the heartbeat comes at most every 30 s in the real builds (20 s); a step that runs
several intervals prints a line each interval, each saying how long it has run; the first
run has no estimate, a later run of the same step names the last run's duration and the time
left; a failing step raises with its output and records no timing; the cluster binaries'
and the images' build steps go through it (`binaries._run`).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from mlops_operator.localcluster import binaries, progress

INTERVAL = 0.3
_BEAT = re.compile(r"\[build\] (?P<step>.+): still running, (?P<elapsed>\d+)s so far; (?P<rest>.*)")


@pytest.fixture(autouse=True)
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path))
    return tmp_path


def _sleeper(seconds: float) -> list[str]:
    return [sys.executable, "-c", f"import time; time.sleep({seconds})"]


def test_the_real_heartbeat_is_within_30_seconds() -> None:
    assert progress.HEARTBEAT_SECONDS <= 30


def test_a_long_step_reports_each_interval_and_then_its_time(
    capsys: pytest.CaptureFixture[str], cache: Path
) -> None:
    started = time.monotonic()
    progress.run_step("compile", _sleeper(5 * INTERVAL), interval=INTERVAL)
    took = time.monotonic() - started
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[build] compile ..."
    beats = [line for line in lines if "still running" in line]
    # One line per interval the step ran (the process start adds a little).
    assert len(beats) >= int(took / INTERVAL) - 2 >= 3, lines
    assert all("no earlier run to compare" in line for line in beats)
    assert lines[-1].startswith("[build] compile: done in ")
    recorded = json.loads((cache / "timings.json").read_text())
    assert recorded["compile"] == pytest.approx(took, abs=1.0)


def test_a_second_run_estimates_from_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    progress.run_step("link", _sleeper(4 * INTERVAL), interval=INTERVAL)
    first = json.loads(progress.timings_file().read_text())["link"]
    capsys.readouterr()
    progress.run_step("link", _sleeper(4 * INTERVAL), interval=INTERVAL)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith(f"(last run: {int(first)}s)")
    beats = [m for line in lines if (m := _BEAT.match(line))]
    assert beats, lines
    assert all(m["rest"].startswith(f"last run took {int(first)}s, ") for m in beats)
    assert all(m["rest"].endswith(("left", "longer than last time")) for m in beats)


def test_a_failing_step_raises_with_its_output_and_records_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; print('the reason', file=sys.stderr); sys.exit(3)",
    ]
    with pytest.raises(progress.StepFailed, match="exit code 3:\nthe reason"):
        progress.run_step("broken", command, interval=INTERVAL)
    assert not progress.timings_file().exists()
    assert "broken: done" not in capsys.readouterr().err


def test_the_binaries_build_steps_report_through_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = binaries._run("go build demo", [sys.executable, "-c", "print('built')"], tmp_path)
    assert out == "built\n"
    err = capsys.readouterr().err
    assert "[build] go build demo ..." in err
    assert "[build] go build demo: done in 0s" in err
    with pytest.raises(RuntimeError, match="exit code 1"):
        binaries._run("go build broken", [sys.executable, "-c", "raise SystemExit(1)"], tmp_path)
