"""The label path of the server: signed ids, the prediction and label logs, /feedback refusals.

Aspects: a label posted to another server (another worker, replica, or the same
pod after a restart) that shares the deployment's key and store is accepted,
and both logs hold the rows as Parquet; every prediction is recorded whatever
the payload log samples; forged and expired ids and unknown classes
are refused with the reason; id tags are HMAC-SHA256 whatever the key's length (ids of
earlier servers verify, and theirs ours); duplicates are counted; a failing store keeps the
rows for the next flush; a server without a labels URI says how to enable them;
with a feedback token, labels without it are refused (401) and never recorded;
classifier records carry the calibrated confidence CBPE averages.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr

from mlops_operator.serving.errors import ExpiredRequestId, UnknownRequestId
from mlops_operator.serving.labels import RequestIds, issued_at
from tests.unit.serving.conftest import ModelDir, Running, Serve
from tests.unit.serving.test_metrics import scrape

pytestmark = pytest.mark.unit

KEY = SecretStr("0123456789abcdef" * 4)


def _table(root: Path, folder: str) -> list[dict[str, Any]]:
    files = sorted((root / folder).rglob("*.parquet"))
    rows: list[dict[str, Any]] = []
    for path in files:
        assert path.parent.name.startswith("date="), path  # Hive partitions by day
        rows.extend(pq.read_table(path).to_pylist())
    return rows


async def _predict(running: Running, rows: list[Any]) -> dict[str, Any]:
    response = await running.client.post("/predict", json={"rows": rows})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _flush(*servers: Running) -> None:
    for running in servers:
        assert running.server.labels is not None
        running.server.batcher.observe_now()  # the calls not yet observed, as stop() does
        await running.server.labels.stop()


async def test_a_label_reaches_any_server_sharing_the_key_and_store(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    first = await serve(iris_lr, labels_uri=str(tmp_path), labels_key=KEY, model_version="3")
    # Another worker, another replica, or the pod after a restart: no shared memory at all.
    other = await serve(iris_lr, labels_uri=str(tmp_path), labels_key=KEY, model_version="3")
    rows = iris_lr.card.parity.sample_inputs[:3]
    predicted = await _predict(first, rows)
    truth = ["2", *predicted["labels"][1:]]
    response = await other.client.post(
        "/feedback", json={"request_id": predicted["request_id"], "labels": truth}
    )
    assert response.status == 200, await response.text()
    assert await response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "model_version": "3",
        "request_id": response.headers["X-Request-ID"],
    }
    await _flush(first, other)
    predictions = _table(tmp_path, "predictions")
    labels = _table(tmp_path, "labels")
    assert [(p["request_id"], p["row"], p["predicted_label"]) for p in predictions] == [
        (predicted["request_id"], i, label) for i, label in enumerate(predicted["labels"])
    ]
    assert {p["model_version"] for p in predictions} == {"3"}
    assert [(r["request_id"], r["row"], r["label"]) for r in labels] == [
        (predicted["request_id"], i, label) for i, label in enumerate(truth)
    ]
    assert labels[0]["predicted_at"] == predictions[0]["predicted_at"]
    assert labels[0]["labelled_at"] >= labels[0]["predicted_at"]


async def test_every_prediction_is_recorded_whatever_the_payload_sampling(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(
        iris_lr,
        labels_uri=str(tmp_path / "labels"),
        payload_log_uri=str(tmp_path / "payloads"),
        payload_log_sample_rate=0.01,
    )
    ids = [(await _predict(running, [[5.1, 3.5, 1.4, 0.2]]))["request_id"] for _ in range(50)]
    v2 = await running.client.post(
        "/v2/models/iris/infer",
        json={"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32",
                          "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]},
    )  # fmt: skip
    assert v2.status == 200, await v2.text()
    ids.append((await v2.json())["parameters"]["request_id"])
    await _flush(running)
    recorded = _table(tmp_path / "labels", "predictions")
    assert [r["request_id"] for r in recorded] == [*ids, ids[-1]]
    assert [r["row"] for r in recorded[-2:]] == [0, 1]


async def test_feedback_refusals_name_the_reason(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(iris_lr, labels_uri=str(tmp_path), labels_key=KEY)
    predicted = await _predict(running, iris_lr.card.parity.sample_inputs[:2])
    rid = predicted["request_id"]
    body, _, tag = rid.rpartition(".")
    forged = f"{body}.{'0' * len(tag)}"
    earlier = f"{int(body.partition('-')[0], 16) - 1:x}-{body.partition('-')[2]}.{tag}"
    cases = [
        ({"request_id": "nope", "labels": ["0"]}, 404, "was not issued by this deployment"),
        ({"request_id": forged, "labels": ["0", "0"]}, 404, "was not issued by this deployment"),
        ({"request_id": earlier, "labels": ["0"]}, 404, "was not issued by this deployment"),
        ({"request_id": rid}, 400, 'exactly "request_id" and "labels"'),
        ({"request_id": rid, "labels": [0.5, 1]}, 400, "strings or integers"),
        ({"request_id": rid, "labels": ["0", "7"]}, 400, "'7' is not a class of this model"),
        ([], 400, "non-empty list"),
    ]
    for payload, status, message in cases:
        response = await running.client.post("/feedback", json=payload)
        assert response.status == status, (payload, await response.text())
        assert message in (await response.json())["error"]
    # One bad item refuses the whole body: nothing of it is logged.
    mixed = [{"request_id": rid, "labels": ["0", "1"]}, {"request_id": "nope", "labels": ["0"]}]
    assert (await running.client.post("/feedback", json=mixed)).status == 404
    await _flush(running)
    assert _table(tmp_path, "labels") == []
    samples = await scrape(running)
    outcomes = {labels["outcome"]: value for labels, value in samples["mlops_requests_total"]
                if labels["endpoint"] == "feedback"}  # fmt: skip
    assert outcomes == {"unknown_request_id": 4.0, "invalid_input": 4.0}


def test_ids_expire_after_the_retention_and_are_bound_to_the_key() -> None:
    ids = RequestIds(b"k" * 32, worker=1, retention_seconds=3600)
    rid = ids.issue()
    issued_ms = issued_at(rid)
    assert abs(issued_ms - time.time() * 1000) < 60_000
    assert ids.verify(rid) == issued_ms
    assert ids.verify(rid, now_ms=issued_ms + 3_600_000) == issued_ms
    with pytest.raises(ExpiredRequestId, match="more than the label retention"):
        ids.verify(rid, now_ms=issued_ms + 3_600_001)
    stranger = RequestIds(b"x" * 32, worker=1, retention_seconds=3600)
    with pytest.raises(UnknownRequestId):
        stranger.verify(rid)
    # Unique per process, worker and request.
    assert len({ids.issue() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("length", [1, 32, 63, 64, 65, 200])
def test_id_tags_are_hmac_sha256_of_the_body(length: int) -> None:
    """Tags are computed from precomputed pads, and must stay HMAC-SHA256's: ids issued by
    earlier servers verify here, and earlier servers verify these (a rolling upgrade)."""
    key = bytes((7 * i + 1) % 256 for i in range(length))  # longer than 64 bytes: hashed first
    ids = RequestIds(key, worker=3, retention_seconds=3600)
    fresh = ids.issue()
    body, _, tag = fresh.rpartition(".")
    assert tag == hmac.digest(key, body.encode(), "sha256").hex()[:20]
    body = f"{int(time.time() * 1000):x}-0a1b2c3d-1-7"
    earlier = f"{body}.{hmac.digest(key, body.encode(), 'sha256').hex()[:20]}"
    assert ids.verify(earlier) == issued_at(earlier)
    with pytest.raises(UnknownRequestId):
        ids.verify(f"{body}.{'0' * 20}")


async def test_an_expired_id_is_410(serve: Serve, iris_lr: ModelDir, tmp_path: Path) -> None:
    running = await serve(
        iris_lr, labels_uri=str(tmp_path), labels_key=KEY, label_retention_seconds=0.001
    )
    predicted = await _predict(running, iris_lr.card.parity.sample_inputs[:1])
    await asyncio.sleep(0.01)
    response = await running.client.post(
        "/feedback", json={"request_id": predicted["request_id"], "labels": ["0"]}
    )
    assert response.status == 410
    assert "more than the label retention" in (await response.json())["error"]


async def test_duplicates_are_accepted_logged_and_counted(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(iris_lr, labels_uri=str(tmp_path))
    predicted = await _predict(running, iris_lr.card.parity.sample_inputs[:2])
    body = {"request_id": predicted["request_id"], "labels": ["0", "1"]}
    first = await (await running.client.post("/feedback", json=body)).json()
    again = await (await running.client.post("/feedback", json=[body, body])).json()
    assert (first["duplicates"], again["duplicates"]) == (0, 2)
    samples = await scrape(running)
    counted = {labels["outcome"]: value for labels, value in samples["mlops_labels_total"]}
    assert counted == {"accepted": 6.0, "duplicate": 2.0}
    await _flush(running)
    assert len(_table(tmp_path, "labels")) == 6  # the evaluator keeps the latest per row


async def test_regression_labels_and_predictions_are_values(
    serve: Serve, diabetes_regression: ModelDir, tmp_path: Path
) -> None:
    running = await serve(diabetes_regression, labels_uri=str(tmp_path))
    predicted = await _predict(running, diabetes_regression.card.parity.sample_inputs[:2])
    truth = [p + 2.0 for p in predicted["predictions"]]
    body = {"request_id": predicted["request_id"], "labels": truth}
    assert (await running.client.post("/feedback", json=body)).status == 200
    await _flush(running)
    [first, second] = _table(tmp_path, "predictions")
    assert [first["predicted_value"], second["predicted_value"]] == pytest.approx(
        predicted["predictions"], rel=1e-6
    )
    assert first["predicted_label"] is None
    assert first["confidence"] is None
    assert [r["value"] for r in _table(tmp_path, "labels")] == pytest.approx(truth)


async def test_without_a_labels_uri_feedback_says_how_to_enable_it(
    serve: Serve, iris_lr: ModelDir
) -> None:
    running = await serve(iris_lr)
    predicted = await _predict(running, iris_lr.card.parity.sample_inputs[:1])
    response = await running.client.post(
        "/feedback", json={"request_id": predicted["request_id"], "labels": ["0"]}
    )
    assert response.status == 404
    assert "spec.feedback" in (await response.json())["error"]


async def test_a_failing_store_keeps_the_rows_for_the_next_flush(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store's folder should be")
    running = await serve(iris_lr, labels_uri=str(blocker / "labels"))
    predicted = await _predict(running, iris_lr.card.parity.sample_inputs[:2])
    recorder = running.server.labels
    assert recorder is not None
    running.server.batcher.observe_now()
    await recorder._predictions.flush()
    samples = await scrape(running)
    failed = {labels["outcome"]: value for labels, value in samples["mlops_side_channel_total"]
              if labels["channel"] == "predictions"}  # fmt: skip
    assert failed == {"failed": 2.0}
    blocker.unlink()
    await recorder._predictions.flush()
    recorded = _table(blocker / "labels", "predictions")
    assert [r["request_id"] for r in recorded] == [predicted["request_id"]] * 2


async def test_classifier_records_carry_the_calibrated_confidence(
    serve: Serve, trained_iris: ModelDir, tmp_path: Path
) -> None:
    calibration = trained_iris.card.calibration
    assert calibration is not None  # the real trainer fits one
    running = await serve(trained_iris, labels_uri=str(tmp_path))
    rows = trained_iris.card.parity.sample_inputs[:5]
    response = await running.client.post("/predict", json={"rows": rows})
    probabilities = np.asarray((await response.json())["probabilities"]).max(axis=1)
    await _flush(running)
    expected = np.interp(probabilities, calibration.probabilities, calibration.accuracy)
    recorded = [r["confidence"] for r in _table(tmp_path, "predictions")]
    assert recorded == pytest.approx(expected.tolist(), abs=1e-6)


async def test_feedback_with_a_token_needs_it_and_records_only_then(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(iris_lr, labels_uri=str(tmp_path), feedback_token="s3cret-labels")
    predicted = await _predict(running, iris_lr.card.parity.sample_inputs[:1])
    body = {"request_id": predicted["request_id"], "labels": predicted["labels"]}
    for headers, message in [
        ({}, "needs `Authorization: Bearer <token>`"),
        ({"Authorization": "Bearer guess"}, "is not this deployment's feedback token"),
        ({"Authorization": "Basic s3cret-labels"}, "needs `Authorization: Bearer <token>`"),
    ]:
        refused = await running.client.post("/feedback", json=body, headers=headers)
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert message in (await refused.json())["error"]
    assert "mlops_labels_total" not in await scrape(running)
    accepted = await running.client.post(
        "/feedback", json=body, headers={"Authorization": "Bearer s3cret-labels"}
    )
    assert accepted.status == 200, await accepted.text()
    samples = await scrape(running)
    counted = {labels["outcome"]: value for labels, value in samples["mlops_labels_total"]}
    assert counted == {"accepted": 1.0}
    # Predictions need no token: only the labels that steer accuracy are guarded.
    assert (await _predict(running, iris_lr.card.parity.sample_inputs[:1]))["labels"]
    await _flush(running)
    assert len(_table(tmp_path, "labels")) == 1
