"""The demo's loop as a test: the same stages `mlops demo` runs, each one asserted.

Real everything: the local cluster, the operator as a process, the trainer,
validator and server pods, Prometheus scraping the servers, the seeded traffic.
Asserted: v1 is trained and validated; reference-like traffic never retrains;
the sensor shift retrains exactly once, on a fifth of the original data combined with
the payload log (both sources in v2's lineage, `mlops reproduce` rebuilds v2 from
them); v2 beats the champion
on the new rows, goes through the canary and is promoted; afterwards v2's PSI is
low, its accuracy recovered and there is still exactly one retrain (cooldown and
the one-retrain-per-episode rule hold); v2's lineage names v1 as its parent. The
timings are printed, not asserted (benchmarks/drift/bench_loop.py records them). The
loop runs once per session (`conftest.closed_loop`); the console's tests share it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_operator.demo.report import accuracy_between, summarize, write_report
from tests.e2e.conftest import ClosedLoop

# One worker runs the session's closed loop once for every test that looks at it.
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("closed-loop")]


def test_the_loop_closes(closed_loop: ClosedLoop, tmp_path: Path) -> None:
    demo = closed_loop.demo
    origin = closed_loop.origin

    v1 = closed_loop.stages["train_v1"]
    assert v1.facts["model_version"] == "iris-v1"
    assert v1.facts["phase"] == "Validated"
    assert v1.facts["metrics"]["accuracy"] >= 0.9

    reference = closed_loop.stages["reference"]
    assert reference.facts["retrains"] == 0
    triggers = {t["name"]: t for t in reference.facts["triggers"]}
    assert triggers["featureDrift"]["fired"] is False
    assert triggers["featureDrift"]["samples"] >= 100

    shift = closed_loop.stages["shift"]
    original, logged = shift.facts["dataset"]["sources"]
    assert (original["uri"], original["sample"]) == ("sklearn://iris", 0.2)
    source = logged["fromPayloadLog"]
    assert (source["deployment"], source["window"]) == ("iris", "1m")
    assert "accuracy" in shift.facts["reason"] or "featureDrift" in shift.facts["reason"]

    v2 = closed_loop.stages["retrain"]
    assert v2.facts["model_version"] == "iris-v2"
    logged_uri = f"payloadlog://{demo.namespace}/iris?window=1m"
    assert v2.facts["dataset"]["uri"] == f"sklearn://iris + {logged_uri}"
    first, second = v2.facts["dataset"]["sources"]
    assert (first["uri"], first["rows"], first["usedRows"]) == ("sklearn://iris", 150, 30)
    assert second["uri"] == logged_uri
    assert second["usedRows"] >= 100
    assert v2.facts["dataset"]["rows"] == 30 + second["usedRows"]
    assert first["sha256"] != second["sha256"] != v2.facts["dataset"]["sha256"]
    # Anyone can rebuild v2: the original data again, the window from its stored snapshot.
    reproduced = demo.reproduce("iris-v2")
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert re.search(r"source 1 sha256\s+match", reproduced.stdout), reproduced.stdout
    assert re.search(r"source 2 sha256\s+match", reproduced.stdout), reproduced.stdout
    # Retrained from the champion that served when the drift fired.
    assert v2.facts["parent_version"] == "iris-v1"
    gates = {g["gate"]: g for g in v2.facts["gate_results"]}
    comparison = gates["compareToChampion"]
    assert comparison["passed"]
    assert comparison["champion"] == "iris-v1"
    # On the new rows the champion is worse than the candidate: the data changed, not the model.
    assert comparison["championValue"] < comparison["value"]

    rollout = closed_loop.stages["rollout"]
    actions = [(h["version"], h["action"]) for h in rollout.facts["history"]]
    assert (2, "Promote") in actions
    assert rollout.facts["promote"]["evidence"]["accuracy"] >= 0.8

    recovered = closed_loop.stages["recover"]
    assert recovered.facts["retrains"] == 1
    after = {t["name"]: t for t in recovered.facts["triggers"]}
    assert after["featureDrift"]["fired"] is False
    assert after["accuracy"]["value"] >= 0.9

    assert demo.traffic is not None
    observations = demo.traffic.observations
    marks = demo.marks
    assert accuracy_between(observations, marks["serving_v1"], marks["drift_onset"], "1") >= 0.9  # type: ignore[operator]
    assert accuracy_between(observations, marks["drift_onset"], marks["serving_v2"], "1") < 0.8  # type: ignore[operator]
    assert accuracy_between(observations, marks["promoted"], marks["recovered"], "2") >= 0.9  # type: ignore[operator]

    series = closed_loop.psi
    summary = summarize(marks, observations, series, {}, recovered.facts["retrains"], origin)
    assert summary.psi["drift"] is not None
    assert summary.psi["drift"] >= 0.25
    assert summary.psi["after"] is not None
    assert summary.psi["after"] < 0.25
    report = write_report(tmp_path / "report.html", summary, series, observations, marks,
                          [["sklearn://iris", "iris-initial", "iris-v1", "iris"]], origin,
                          demo.stages, {"iris-v2": "iris-v1"})  # fmt: skip
    assert report.exists()
    assert (tmp_path / "report-psi.png").stat().st_size > 0
    print("\n".join(summary.lines()))
