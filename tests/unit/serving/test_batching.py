"""Micro-batching: concurrent requests share onnxruntime calls and each gets its own rows back.

Also: a lone request is answered at once and still counted (drift bins, rows, the label
record), kept calls are merged as np.concatenate would merge them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris

from mlops_operator.serving.batching import (
    OBSERVE_ROWS,
    OFFLOAD_ABOVE_SECONDS,
    MicroBatcher,
    Observer,
    _stacked,
    one_row_seconds,
)
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.serving.model import ServedModel
from mlops_operator.serving.validation import Batch
from tests.unit.serving.conftest import ModelDir, Serve
from tests.unit.serving.test_labels import _table


def counting(metrics: ServingMetrics) -> Observer:
    """The batcher's observer as the server's, without the label log: drift counters."""
    return lambda feeds, outputs, _, rows, calls: metrics.observe_batch(
        feeds, outputs[0], rows, calls
    )


@pytest.mark.parametrize("offload", [True, False])
async def test_queued_requests_merge_up_to_the_row_cap(iris_lr: ModelDir, offload: bool) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    metrics = ServingMetrics(model)
    batcher = MicroBatcher(model, counting(metrics), max_rows=5, delay_seconds=0, offload=offload)
    batcher.start()
    rows = load_iris().data[::10].astype(np.float32)  # 15 distinct rows
    sizes = [1, 2, 1, 3, 1, 2, 3, 2]
    starts = np.cumsum([0, *sizes[:-1]])
    batches = [Batch({"X": rows[s : s + n]}, n) for s, n in zip(starts, sizes, strict=True)]
    results = await asyncio.gather(*(batcher.predict(b, f"r{i}") for i, b in enumerate(batches)))
    await batcher.stop()
    expected = model.run({"X": rows})
    for start, size, outputs in zip(starts, sizes, results, strict=True):
        np.testing.assert_array_equal(outputs[0], expected[0][start : start + size])
        np.testing.assert_allclose(outputs[1], expected[1][start : start + size], rtol=1e-6)
    scrape = text_string_to_metric_families(metrics.render().decode())
    batch_rows = next(
        s.value
        for family in scrape
        for s in family.samples
        if s.name == "mlops_batch_rows_count" and s.labels["model_version"] == model.version
    )
    # 15 rows in requests of 1–3 under a cap of 5: at least 3 and far fewer than 8 calls.
    assert batch_rows is not None
    assert 3 <= batch_rows <= 5


async def test_a_lone_request_is_answered_without_waiting_for_company(iris_lr: ModelDir) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    batcher = MicroBatcher(
        model, counting(ServingMetrics(model)), max_rows=64, delay_seconds=0, offload=True
    )
    batcher.start()
    row = load_iris().data[:1].astype(np.float32)
    outputs = await asyncio.wait_for(batcher.predict(Batch({"X": row}, 1), "r0"), timeout=30)
    await batcher.stop()
    assert outputs[0].tolist() == [0]


def test_a_model_that_takes_long_a_call_is_timed_once(
    iris_lr: ModelDir,
) -> None:
    # Timing 18 calls of a model that takes seconds each kept a server from listening past its
    # liveness probe's patience: a slow first call settles the question.
    calls = []

    def slow_run(feeds: object) -> None:
        calls.append(feeds)
        time.sleep(0.15)

    model = load_model(str(iris_lr.path), threads=1)
    slow = cast(ServedModel, SimpleNamespace(inputs=model.inputs, run=slow_run))

    assert one_row_seconds(slow) >= 0.15
    assert len(calls) == 1


async def test_offload_is_decided_by_what_one_row_costs(
    iris_lr: ModelDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    assert one_row_seconds(model) < OFFLOAD_ABOVE_SECONDS  # logistic regression: microseconds
    cheap = MicroBatcher(
        model, counting(ServingMetrics(model)), max_rows=8, delay_seconds=0, offload=None
    )
    cheap.start()
    assert not cheap.offloaded
    await cheap.stop()
    monkeypatch.setattr(
        "mlops_operator.serving.batching.one_row_seconds", lambda _: OFFLOAD_ABOVE_SECONDS * 2
    )
    costly = MicroBatcher(
        model, counting(ServingMetrics(model)), max_rows=8, delay_seconds=0, offload=None
    )
    costly.start()
    assert costly.offloaded
    row = load_iris().data[:1].astype(np.float32)
    outputs = await asyncio.wait_for(costly.predict(Batch({"X": row}, 1), "r0"), timeout=30)
    await costly.stop()
    assert outputs[0].tolist() == [0]


@pytest.mark.parametrize("offload", [True, False])
async def test_a_request_that_breaks_its_batch_fails_alone(
    iris_lr: ModelDir, offload: bool
) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    batcher = MicroBatcher(
        model, counting(ServingMetrics(model)), max_rows=64, delay_seconds=0, offload=offload
    )
    batcher.start()
    rows = load_iris().data[:3].astype(np.float32)
    # float64 where the model takes float32: the merged batch upcasts and onnxruntime refuses it.
    broken = Batch({"X": rows[:1].astype(np.float64)}, 1)
    good = [Batch({"X": rows[i : i + 1]}, 1) for i in range(3)]
    results = await asyncio.gather(
        *(batcher.predict(b, f"r{i}") for i, b in enumerate([good[0], broken, *good[1:]])),
        return_exceptions=True,
    )
    await batcher.stop()
    assert isinstance(results[1], Exception)
    expected = model.run({"X": rows})[0].tolist()
    assert [r[0].tolist()[0] for r in (results[0], results[2], results[3])] == expected  # type: ignore[index]


async def test_a_lone_request_is_answered_at_once_and_company_shares_calls(
    iris_lr: ModelDir,
) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    observed: list[tuple[list[str], list[int], list[int], int]] = []
    all_observed = asyncio.Event()

    def observe(feeds: Any, _: Any, ids: list[str], rows: list[int], calls: list[int]) -> None:
        observed.append((ids, rows, calls, len(feeds["X"])))
        if sum(len(o[0]) for o in observed) == 6:
            all_observed.set()

    batcher = MicroBatcher(
        model,
        observe,
        max_rows=64,
        delay_seconds=0,
        offload=False,
    )
    batcher.start()
    rows = load_iris().data[:5].astype(np.float32)
    lone = batcher.predict(Batch({"X": rows[:1]}, 1), "lone")
    with pytest.raises(StopIteration) as answered:
        lone.send(None)  # done at its first step: no flush and no wake-up waited for
    assert answered.value.value[0].tolist() == [0]
    # Handled in one turn of the loop: the first alone, the others in one call after it.
    results = await asyncio.gather(
        *(batcher.predict(Batch({"X": rows[i : i + 1]}, 1), f"r{i}") for i in range(5))
    )
    assert [r[0].tolist()[0] for r in results] == model.run({"X": rows})[0].tolist()
    # Observed by the timer, without a scrape or a stop (together, unless the machine is so
    # slow that the timer fired between the calls).
    await asyncio.wait_for(all_observed.wait(), timeout=30)
    merged = tuple([x for o in observed for x in o[i]] for i in range(3))
    assert merged == (["lone", "r0", "r1", "r2", "r3", "r4"], [1] * 6, [1, 1, 4])
    assert sum(o[3] for o in observed) == 6  # the calls' feeds, merged
    await batcher.stop()


async def test_kept_calls_are_observed_at_the_row_threshold_and_at_stop(
    iris_lr: ModelDir,
) -> None:
    model = load_model(str(iris_lr.path), threads=1)
    observed: list[list[int]] = []
    batcher = MicroBatcher(
        model,
        lambda _, outputs, __, rows, calls: observed.append(calls),
        max_rows=OBSERVE_ROWS,
        delay_seconds=0,
        offload=False,
        observe_delay_seconds=3600,  # the timer never fires here
    )
    batcher.start()
    rows = np.repeat(load_iris().data[:1].astype(np.float32), OBSERVE_ROWS - 1, axis=0)
    await batcher.predict(Batch({"X": rows}, len(rows)), "big")
    await asyncio.sleep(0)
    assert observed == []  # one row short: kept
    await batcher.predict(Batch({"X": rows[:1]}, 1), "last")
    await asyncio.sleep(0)  # the threshold's observation runs in the next turn, not later
    assert observed == [[OBSERVE_ROWS - 1, 1]]
    await batcher.predict(Batch({"X": rows[:2]}, 2), "at stop")
    await batcher.stop()
    assert observed == [[OBSERVE_ROWS - 1, 1], [2]]


async def test_a_scrape_counts_the_calls_still_kept(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr, observe_delay_ms=3_600_000)
    rows = iris_lr.card.parity.sample_inputs[:3]
    response = await running.client.post("/predict", json={"rows": rows})
    assert response.status == 200, await response.text()
    timer = running.server.batcher._observe_timer
    assert timer is not None  # kept, not counted yet: the setting reached the batcher's timer
    assert timer.when() - asyncio.get_running_loop().time() > 3000
    scrape = text_string_to_metric_families(await (await running.client.get("/metrics")).text())
    values = {s.name: s.value for family in scrape for s in family.samples}
    assert values["mlops_request_rows_count"] == 1
    assert values["mlops_batch_rows_sum"] == 3
    assert running.server.batcher._observe_timer is None


_HOT_PREFIXES = (
    "mlops_feature_bin",
    "mlops_prediction_bin",
    "mlops_request_rows",
    "mlops_batch_rows",
)


def _hot_series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The drift and row series of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(_HOT_PREFIXES)
    }


async def test_lone_requests_are_counted_and_recorded_like_one_merged_call(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sequential requests each run alone (no flush), kept, and observed together: at the
    row threshold, then at the scrape. Drift bins, rows and the label record come out as
    counting the same rows in one call would count them."""
    running = await serve(
        iris_lr, labels_uri=str(tmp_path), observe_delay_ms=3_600_000, offload_inference=False
    )
    batcher = running.server.batcher
    flushes: list[object] = []
    monkeypatch.setattr(batcher, "_flush", lambda: flushes.append(None))
    rows = np.repeat(load_iris().data.astype(np.float32), 2, axis=0)[: OBSERVE_ROWS + 44]
    ids = []
    for row in rows:
        tensor = {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": row.tolist()}
        body = {"inputs": [tensor]}
        response = await running.client.post("/v2/models/iris/infer", json=body)
        assert response.status == 200, await response.text()
        ids.append((await response.json())["request_id"])
    assert flushes == []  # every one answered alone
    scraped = _hot_series(await (await running.client.get("/metrics")).text())

    model = running.server.model
    outputs = model.run({"X": rows})
    expected = ServingMetrics(model)
    expected.observe_batch({"X": rows}, outputs[0], [1] * len(rows), [1] * len(rows))
    assert scraped == _hot_series(expected.render().decode())
    assert sum(v for (name, _), v in scraped.items() if name == "mlops_feature_bin_total") == (
        4 * len(rows)
    )
    assert running.server.labels is not None
    await running.server.labels.stop()
    recorded = _table(tmp_path, "predictions")
    assert [r["request_id"] for r in recorded] == ids
    assert [r["predicted_label"] for r in recorded] == [str(v) for v in outputs[0].tolist()]
    np.testing.assert_allclose(
        [r["confidence"] for r in recorded],
        running.server.labels.confidence(outputs[1].max(axis=1).astype(np.float64)),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "arrays",
    [
        [np.arange(4, dtype=np.float32).reshape(1, 4), np.ones((3, 4), dtype=np.float32)],
        [np.array([1], dtype=np.int64), np.array([2, 3], dtype=np.int64)],
        [np.array([["a", "b"]], dtype=object), np.array([["c", "d"]], dtype=object)],
        # A column slice is not one C-ordered block: np.concatenate merges it.
        [np.arange(8.0).reshape(2, 4)[:, ::2], np.arange(4.0).reshape(2, 2)],
    ],
    ids=["float32", "int64", "strings", "strided"],
)
def test_kept_arrays_merge_as_concatenate_would(arrays: list[Any]) -> None:
    merged = _stacked(arrays)
    expected = np.concatenate(arrays)
    assert merged.dtype == expected.dtype
    assert merged.shape == expected.shape
    assert merged.tolist() == expected.tolist()
