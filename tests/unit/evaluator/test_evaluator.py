"""The evaluator: the DuckDB join, the windows by prediction time, and its metrics.

Aspects: realized accuracy and macro F1 equal scikit-learn's on the joined rows;
RMSE and MAE for regressors; a window is judged only once its coverage reaches
the share (missing labels never read as decay) and the judged window moves to a
newer one as its labels arrive; windows go by prediction time, not label time;
the latest of repeated labels wins and repeats are counted; labels without a
recorded prediction are counted as unmatched; windows past maxLabelDelay short
of labels are expired; CBPE is the mean calibrated confidence; predictions older
than the retention, or than the deployment (a namesake's), are not read; the metrics render every number per version;
the labels a real server wrote join with DuckDB.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import accuracy_score, f1_score

from mlops_operator.evaluator.metrics import render
from mlops_operator.evaluator.run import Evaluator
from mlops_operator.evaluator.settings import EvaluatorSettings
from mlops_operator.serving.labels import LABEL_SCHEMA, PREDICTION_SCHEMA

MINUTE = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE  # a whole minute, in ms
_files = itertools.count()


def _write(root: Path | str, folder: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> None:
    """One Parquet file of `rows` under `root`: a directory, or an fsspec store's URI."""
    name = f"{folder}/date=2027-01-15/part-{next(_files)}.parquet"
    table = pa.Table.from_pylist(rows, schema=schema)
    if isinstance(root, str):
        with fsspec.open(f"{root}/{name}", "wb") as file:
            pq.write_table(table, file)
        return
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / name)


def predictions(
    root: Path | str, at_ms: int, labels: list[str], *, version: str = "1", confidence: float = 0.9,
    prefix: str = "r",
) -> list[str]:  # fmt: skip
    """One request per row, predicted at `at_ms`; their ids."""
    ids = [f"{prefix}{at_ms}-{i}" for i in range(len(labels))]
    _write(root, "predictions", PREDICTION_SCHEMA, [
        {"request_id": rid, "row": 0, "predicted_at": at_ms, "model_version": version,
         "predicted_label": label, "predicted_value": None, "confidence": confidence}
        for rid, label in zip(ids, labels, strict=True)
    ])  # fmt: skip
    return ids


def labels(
    root: Path | str, ids: list[str], truth: list[str], *, predicted_at: int, at_ms: int
) -> None:
    _write(root, "labels", LABEL_SCHEMA, [
        {"request_id": rid, "row": 0, "predicted_at": predicted_at, "labelled_at": at_ms,
         "label": label, "value": None}
        for rid, label in zip(ids, truth, strict=True)
    ])  # fmt: skip


def evaluator(root: Path | str, **overrides: Any) -> Evaluator:
    settings = {"labels_uri": str(root), "model_name": "iris", "window_seconds": 60,
                "min_label_coverage": 0.8, "max_label_delay_seconds": 600} | overrides  # fmt: skip
    return Evaluator(EvaluatorSettings(**settings))


def test_realized_accuracy_and_f1_equal_scikit_learns(tmp_path: Path) -> None:
    predicted = ["a", "b", "c", "a", "b", "c", "a", "a", "b", "c"]
    truth = ["a", "b", "b", "a", "c", "c", "a", "b", "b", "c"]
    ids = predictions(tmp_path, T0 + 1000, predicted)
    labels(tmp_path, ids, truth, predicted_at=T0 + 1000, at_ms=T0 + 5000)
    judged = evaluator(tmp_path).evaluate(now=(T0 + 10_000) / 1000).versions["1"]
    window = judged.judged
    assert window is not None
    assert window.accuracy == pytest.approx(accuracy_score(truth, predicted))
    assert window.f1_macro == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert (window.predictions, window.labelled, window.coverage) == (10, 10, 1.0)
    assert window.start_ms == T0


def test_a_window_is_judged_only_once_its_labels_arrived(tmp_path: Path) -> None:
    first = predictions(tmp_path, T0 + 1000, ["a"] * 10)
    labels(tmp_path, first, ["a"] * 10, predicted_at=T0 + 1000, at_ms=T0 + 2000)
    # The next minute decays, but only 7 of its 10 labels came so far: 0.7 < 0.8.
    second = predictions(tmp_path, T0 + MINUTE + 1000, ["a"] * 10)
    labels(
        tmp_path, second[:7], ["b"] * 7, predicted_at=T0 + MINUTE + 1000, at_ms=T0 + MINUTE + 2000
    )
    run = evaluator(tmp_path)
    judged = run.evaluate(now=(T0 + 2 * MINUTE) / 1000).versions["1"]
    assert judged.judged is not None
    assert (judged.judged.start_ms, judged.judged.accuracy) == (T0, 1.0)
    assert judged.newest.coverage == pytest.approx(0.7)
    # The late labels arrive an hour later: windows go by prediction time, so they fill the
    # second window, which is now judged, and shows the decay.
    labels(tmp_path, second[7:], ["b"] * 3, predicted_at=T0 + MINUTE + 1000, at_ms=T0 + 60 * MINUTE)
    later = run.evaluate(now=(T0 + 61 * MINUTE) / 1000).versions["1"]
    assert later.judged is not None
    assert (later.judged.start_ms, later.judged.accuracy, later.judged.coverage) == (
        T0 + MINUTE, 0.0, 1.0
    )  # fmt: skip


def test_repeated_labels_keep_the_latest_and_are_counted(tmp_path: Path) -> None:
    ids = predictions(tmp_path, T0 + 1000, ["a", "b"])
    labels(tmp_path, ids, ["b", "b"], predicted_at=T0 + 1000, at_ms=T0 + 2000)
    labels(tmp_path, ids[:1], ["a"], predicted_at=T0 + 1000, at_ms=T0 + 3000)  # a correction
    labels(tmp_path, ids[:1], ["a"], predicted_at=T0 + 1000, at_ms=T0 + 4000)  # a plain repeat
    labels(tmp_path, ["never-predicted"], ["a"], predicted_at=T0 + 1000, at_ms=T0 + 4000)
    snapshot = evaluator(tmp_path).evaluate(now=(T0 + 5000) / 1000)
    window = snapshot.versions["1"].judged
    assert window is not None
    assert (window.labelled, window.correct, window.duplicates) == (2, 2, 2)
    assert (snapshot.totals.labels, snapshot.totals.unmatched_labels) == (3, 1)


def test_windows_short_of_labels_expire_after_the_delay(tmp_path: Path) -> None:
    predictions(tmp_path, T0 + 1000, ["a"] * 4)
    run = evaluator(tmp_path, max_label_delay_seconds=120)
    assert run.evaluate(now=(T0 + 2 * MINUTE) / 1000).versions["1"].expired == 0
    judged = run.evaluate(now=(T0 + 3 * MINUTE) / 1000).versions["1"]
    assert (judged.expired, judged.judged) == (1, None)


def test_cbpe_is_the_mean_calibrated_confidence(tmp_path: Path) -> None:
    predictions(tmp_path, T0 + 1000, ["a"] * 3, confidence=0.9)
    predictions(tmp_path, T0 + 2000, ["a"], confidence=0.5)
    judged = evaluator(tmp_path).evaluate(now=(T0 + 5000) / 1000).versions["1"]
    assert judged.newest.estimated_accuracy == pytest.approx((3 * 0.9 + 0.5) / 4)
    assert judged.judged is None  # no label at all: estimated, not realized


def test_versions_are_judged_apart_and_old_predictions_are_not_read(tmp_path: Path) -> None:
    old = predictions(tmp_path, T0 - 11 * MINUTE, ["a"], prefix="old")
    labels(tmp_path, old, ["a"], predicted_at=T0 - 11 * MINUTE, at_ms=T0 - 10 * MINUTE)
    one = predictions(tmp_path, T0 + 1000, ["a", "a"], version="1")
    two = predictions(tmp_path, T0 + 1000, ["b", "b"], version="2", prefix="v2")
    labels(tmp_path, one + two, ["a", "a", "a", "a"], predicted_at=T0 + 1000, at_ms=T0 + 2000)
    snapshot = evaluator(tmp_path, retention_seconds=600).evaluate(now=(T0 + 3000) / 1000)
    assert {v: j.lifetime.accuracy for v, j in snapshot.versions.items()} == {"1": 1.0, "2": 0.0}
    assert snapshot.versions["1"].lifetime.predictions == 2


def test_an_object_store_is_joined_again_at_every_evaluation() -> None:
    # An object store goes through DuckDB's fsspec bridge: the second join on one connection
    # once failed on re-registering the filesystem, so only the first join ever counted and a
    # challenger started later was never judged.
    root = f"memory://evaluator-{next(_files)}"
    first = predictions(root, T0 + 1000, ["a", "a"], version="1")
    labels(root, first, ["a", "a"], predicted_at=T0 + 1000, at_ms=T0 + 2000)
    joins = evaluator(root)
    assert set(joins.evaluate(now=(T0 + 3000) / 1000).versions) == {"1"}
    second = predictions(root, T0 + 4000, ["b", "b"], version="2", prefix="v2")
    labels(root, second, ["a", "b"], predicted_at=T0 + 4000, at_ms=T0 + 5000)
    snapshot = joins.evaluate(now=(T0 + 6000) / 1000)
    assert {v: j.lifetime.accuracy for v, j in snapshot.versions.items()} == {"1": 1.0, "2": 0.5}


def test_regression_windows_have_rmse_and_mae(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", PREDICTION_SCHEMA, [
        {"request_id": "q", "row": i, "predicted_at": T0 + 1000, "model_version": "1",
         "predicted_label": None, "predicted_value": v, "confidence": None}
        for i, v in enumerate([1.0, 2.0, 3.0])
    ])  # fmt: skip
    _write(tmp_path, "labels", LABEL_SCHEMA, [
        {"request_id": "q", "row": i, "predicted_at": T0 + 1000, "labelled_at": T0 + 2000,
         "label": None, "value": v}
        for i, v in enumerate([2.0, 2.0, 5.0])
    ])  # fmt: skip
    window = evaluator(tmp_path).evaluate(now=(T0 + 3000) / 1000).versions["1"].judged
    assert window is not None
    assert window.rmse == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert window.mae == pytest.approx(1.0)
    assert (window.accuracy, window.f1_macro, window.estimated_accuracy) == (None, None, None)


def test_no_logs_yet_is_an_empty_snapshot(tmp_path: Path) -> None:
    snapshot = evaluator(tmp_path / "nothing").evaluate()
    assert snapshot.versions == {}
    assert b"mlops_evaluation_timestamp_seconds" in render(snapshot)


def test_the_metrics_name_every_number_per_version(tmp_path: Path) -> None:
    ids = predictions(tmp_path, T0 + 1000, ["a", "a", "b", "b"], confidence=0.75)
    labels(tmp_path, ids, ["a", "a", "a", "b"], predicted_at=T0 + 1000, at_ms=T0 + 2000)
    text = render(evaluator(tmp_path).evaluate(now=(T0 + 3000) / 1000)).decode()
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("model_version") == "1"
    }
    assert values["mlops_realized_accuracy"] == 0.75
    assert values["mlops_realized_coverage"] == 1.0
    assert values["mlops_realized_window_start_seconds"] == T0 / 1000
    assert values["mlops_estimated_accuracy"] == 0.75
    assert values["mlops_cbpe_absolute_error"] == 0.0
    assert values["mlops_label_coverage"] == 1.0
    assert values["mlops_lifetime_labelled_rows"] == 4
    assert "mlops_realized_rmse" not in values  # a classifier has no RMSE


async def test_labels_a_real_server_wrote_join(tmp_path: Path, serve: Any, iris_lr: Any) -> None:
    running = await serve(iris_lr, labels_uri=str(tmp_path), model_version="7")
    rows = iris_lr.card.parity.sample_inputs[:8]
    response = await running.client.post("/predict", json={"rows": rows})
    body = await response.json()
    truth = ["0"] * 8
    sent = await running.client.post(
        "/feedback", json={"request_id": body["request_id"], "labels": truth}
    )
    assert sent.status == 200
    running.server.batcher.observe_now()
    await running.server.labels.stop()
    judged = evaluator(tmp_path, window_seconds=3600).evaluate().versions["7"]
    assert judged.judged is not None
    assert judged.judged.accuracy == pytest.approx(accuracy_score(truth, body["labels"]))


def test_a_namesakes_predictions_before_the_deployment_was_created_are_not_read(
    tmp_path: Path,
) -> None:
    # A deployment deleted and created again under its name writes to the same folder: the
    # earlier one's decayed window must not be judged for the new one.
    old = predictions(tmp_path, T0 + 1000, ["a"] * 10, prefix="old")
    labels(tmp_path, old, ["b"] * 10, predicted_at=T0 + 1000, at_ms=T0 + 2000)
    created = (T0 + MINUTE) / 1000
    new = predictions(tmp_path, T0 + MINUTE + 1000, ["a"] * 10, prefix="new")
    labels(tmp_path, new, ["a"] * 10, predicted_at=T0 + MINUTE + 1000, at_ms=T0 + MINUTE + 2000)
    now = (T0 + 2 * MINUTE) / 1000
    # Without the bound the lifetime mixes both: half the rows wrong.
    inherited = evaluator(tmp_path).evaluate(now=now).versions["1"]
    assert (inherited.lifetime.predictions, inherited.lifetime.accuracy) == (20, 0.5)
    fresh = evaluator(tmp_path, not_before=created).evaluate(now=now).versions["1"]
    assert (fresh.lifetime.predictions, fresh.lifetime.accuracy) == (10, 1.0)
    assert fresh.judged is not None
    assert (fresh.judged.start_ms, fresh.judged.accuracy) == (T0 + MINUTE, 1.0)
