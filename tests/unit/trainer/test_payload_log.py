"""The payload log as a dataset: requests joined with their feedback by request id.

Aspects: list rows, object rows and V2 tensors all read back in the card's
feature order; only labelled rows are kept; the window is applied to request
times (old day folders never read); torn lines and foreign records are skipped;
too few rows is DatasetNotFound naming the count; integer class labels come
back as integers; the dataset URI round-trips; the trainer fits on it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlops_operator.trainer.datasets import load_dataset
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.payloadlog import join_records, load_payload_log
from mlops_operator.trainer.payloadlog_uri import (
    PayloadLogQuery,
    parse_payload_log_uri,
    payload_log_dataset_uri,
)
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings

FEATURES = ["a", "b"]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _request(
    rid: str, body: dict[str, Any], at: datetime = NOW, endpoint: str = "predict"
) -> dict[str, Any]:
    return {"time": at.isoformat(), "request_id": rid, "endpoint": endpoint, "model": "m",
            "model_version": "1", "features": FEATURES, "request": body,
            "response": {"labels": ["0"]}}  # fmt: skip


def _feedback(rid: str, labels: list[Any]) -> dict[str, Any]:
    return {"time": NOW.isoformat(), "request_id": rid, "endpoint": "feedback", "labels": labels}


def _write(
    root: Path, day: str, name: str, records: list[dict[str, Any]], tail: bytes = b""
) -> None:
    folder = root / "m" / "1" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + tail)


def test_every_request_format_joins_with_its_labels_in_feature_order() -> None:
    v2 = {"inputs": [{"name": "X", "shape": [2, 2], "datatype": "FP32", "data": [5, 6, 7, 8]}]}
    records = [
        _request("r1", {"rows": [[1.0, 2.0]]}),
        _request("r2", {"rows": [{"b": 4.0, "a": 3.0}]}),
        _request("r3", v2, endpoint="v2_infer"),
        _request("r4", {"rows": [[9.0, 9.0]]}),  # never labelled
        _feedback("r3", ["1", "2"]),
        _feedback("r1", ["0"]),
        _feedback("r2", ["1"]),
        _feedback("r9", ["1"]),  # its request was not logged
    ]
    joined = join_records(records, since=None)
    frame = joined.frame("y")
    assert list(frame.columns) == ["a", "b", "y"]
    assert frame.values.tolist() == [[1, 2, 0], [3, 4, 1], [5, 6, 1], [7, 8, 2]]
    assert frame["y"].dtype.kind == "i"
    assert joined.unlabelled == 1


def test_string_labels_stay_strings_and_mismatched_feedback_is_not_joined() -> None:
    records = [
        _request("r1", {"rows": [[1.0, 2.0]]}),
        _request("r2", {"rows": [[1.0, 2.0], [3.0, 4.0]]}),
        _feedback("r1", ["setosa"]),
        _feedback("r2", ["setosa"]),  # one label for two rows
    ]
    joined = join_records(records, since=None)
    assert joined.frame("y")["y"].tolist() == ["setosa"]
    assert joined.unlabelled == 2


def test_the_window_keeps_recent_requests_and_skips_old_day_folders(tmp_path: Path) -> None:
    old, recent = NOW - timedelta(days=3), NOW - timedelta(seconds=30)
    _write(tmp_path, old.strftime("%Y-%m-%d"), "w-1.jsonl",
           [_request("old", {"rows": [[0.0, 0.0]]}, at=old), _feedback("old", ["0"])])  # fmt: skip
    # A request before the window on today's folder, and one inside it; a torn last line.
    _write(tmp_path, NOW.strftime("%Y-%m-%d"), "w-2.jsonl",
           [_request("early", {"rows": [[1.0, 1.0]]}, at=NOW - timedelta(minutes=10)),
            _request("new", {"rows": [[2.0, 2.0]]}, at=recent),
            _feedback("early", ["1"]), _feedback("new", ["2"])],
           tail=b'{"request_id": "torn')  # fmt: skip
    uri = payload_log_dataset_uri(tmp_path.as_uri(), target="y", window_seconds=120)
    frame = load_payload_log(uri, now=NOW)
    assert frame.values.tolist() == [[2.0, 2.0, 2]]
    everything = load_payload_log(payload_log_dataset_uri(tmp_path.as_uri(), target="y"), now=NOW)
    assert sorted(everything["y"].tolist()) == [0, 1, 2]


def test_too_few_labelled_rows_is_dataset_not_found_with_the_count(tmp_path: Path) -> None:
    _write(tmp_path, NOW.strftime("%Y-%m-%d"), "w.jsonl",
           [_request("r1", {"rows": [[1.0, 2.0]]}), _feedback("r1", ["0"])])  # fmt: skip
    uri = payload_log_dataset_uri(tmp_path.as_uri(), target="y", min_rows=5)
    with pytest.raises(TrainingError) as caught:
        load_dataset(uri)
    assert caught.value.reason is Reason.DATASET_NOT_FOUND
    assert "has 1 labelled rows; at least 5 are needed" in caught.value.message


def test_an_empty_or_missing_log_has_no_rows(tmp_path: Path) -> None:
    uri = payload_log_dataset_uri((tmp_path / "nothing").as_uri(), target="y")
    with pytest.raises(TrainingError, match="has 0 labelled rows"):
        load_payload_log(uri)


def test_the_uri_round_trips_and_bad_ones_say_what_is_expected() -> None:
    uri = payload_log_dataset_uri("file:///store/payload-logs/ns/iris/", target="target",
                                  window_seconds=120, min_rows=50)  # fmt: skip
    assert (
        uri == "payloadlog+file:///store/payload-logs/ns/iris?target=target&minRows=50&window=120"
    )
    assert parse_payload_log_uri(uri) == PayloadLogQuery(
        "file:///store/payload-logs/ns/iris", "target", 120.0, 50
    )
    for bad, message in [
        ("payloadlog+file:///x?minRows=1", "target \\(required\\)"),
        ("payloadlog+file:///x?target=y&colour=red", "expected the query keys"),
        ("payloadlog+file:///x?target=y&window=soon", "window must be seconds"),
        ("payloadlog+file:///x?target=y&minRows=0", "minRows at least 1"),
        ("file:///x", "not a payload log URI"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_payload_log_uri(bad)


def test_the_trainer_fits_a_model_on_the_joined_log(tmp_path: Path) -> None:
    records: list[dict[str, Any]] = []
    for index in range(60):
        label = index % 2
        records.append(_request(f"r{index}", {"rows": [[float(label), float(index)]]}))
        records.append(_feedback(f"r{index}", [str(label)]))
    _write(tmp_path / "log", NOW.strftime("%Y-%m-%d"), "w.jsonl", records)
    outcome = train(
        TrainerSettings(
            dataset_uri=payload_log_dataset_uri((tmp_path / "log").as_uri(), target="y"),
            target="y", estimator="LogisticRegression", output_dir=tmp_path / "model",
            termination_message_path=None,
        )
    )  # fmt: skip
    assert outcome.card.signature.classes == ["0", "1"]
    assert outcome.card.lineage.dataset_rows == 60
    assert outcome.result.metrics["accuracy"] == 1.0
