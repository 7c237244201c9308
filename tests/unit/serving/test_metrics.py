"""Prometheus metrics: drift counters give the PSI a direct computation gives; predictions; info.

Aspects: per-feature bin counters plus reference gauges reproduce, through the
PromQL formula of docs/serving.md, the PSI computed directly from the values
sent; predictions are counted by class or regression bin; the model-info
gauge names version and sha256. Labels and realized accuracy: test_labels.py.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris

from mlops_operator.modelcard import NumericReference
from mlops_operator.statistics import PSI_EPSILON, bin_counts, psi
from tests.unit.serving.conftest import IRIS_FEATURES, ModelDir, Running, Serve


async def scrape(running: Running) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = await (await running.client.get("/metrics")).text()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def promql_psi(counts: dict[str, float], reference: dict[str, float]) -> float:
    """The docs' PromQL expression, evaluated by hand over one scrape's values."""
    total = sum(counts.values())
    score = 0.0
    for bin_label, expected in reference.items():
        actual = max(counts.get(bin_label, 0.0) / total, PSI_EPSILON)
        expected = max(expected, PSI_EPSILON)
        score += (actual - expected) * math.log(actual / expected)
    return score


async def test_bin_counters_and_reference_gauges_give_the_direct_psi(
    serve: Serve, iris_lr: ModelDir
) -> None:
    running = await serve(iris_lr)
    rng = np.random.default_rng(7)
    values = load_iris().data[rng.integers(0, 150, size=240)] * rng.normal(1.15, 0.1, (240, 4))
    # Concurrent requests of varied sizes, so several micro-batches mix rows of many requests.
    chunks = np.array_split(values, 40)
    responses = await asyncio.gather(
        *(running.client.post("/predict", json={"rows": c.tolist()}) for c in chunks)
    )
    assert all(r.status == 200 for r in responses)
    samples = await scrape(running)
    for position, feature in enumerate(IRIS_FEATURES):
        reference = iris_lr.card.reference[feature]
        assert isinstance(reference, NumericReference)
        counts = {
            labels["bin"]: value
            for labels, value in samples["mlops_feature_bin_total"]
            if labels["feature"] == feature
        }
        gauges = {
            labels["bin"]: value
            for labels, value in samples["mlops_feature_reference_proportion"]
            if labels["feature"] == feature
        }
        assert gauges == {str(i): p for i, p in enumerate(reference.proportions)}
        # float32 is what the model sees, so the direct computation bins the same values.
        direct_counts = bin_counts(values[:, position].astype(np.float32), reference.edges)
        assert sum(counts.values()) == len(values)
        direct = psi(reference.proportions, direct_counts.tolist())
        assert promql_psi(counts, gauges) == pytest.approx(direct, rel=1e-9)
        assert direct > 0.0


async def test_predictions_are_counted_by_class(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr)
    response = await running.client.post("/predict", json={"rows": load_iris().data.tolist()})
    labels = (await response.json())["labels"]
    samples = await scrape(running)
    counted = {l["bin"]: v for l, v in samples["mlops_prediction_bin_total"] if v}
    assert counted == {c: float(labels.count(c)) for c in set(labels)}
    reference = {l["bin"]: v for l, v in samples["mlops_prediction_reference_proportion"]}
    assert list(reference) == iris_lr.card.prediction_reference.classes


async def test_model_info_names_version_and_sha256(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr, model_version="v3")
    samples = await scrape(running)
    [(labels, value)] = samples["mlops_model_info"]
    assert value == 1.0
    assert labels["model_version"] == "v3"
    assert labels["sha256"] == iris_lr.card.artifact.sha256


async def _predict(running: Running, rows: list[Any]) -> dict[str, Any]:
    response = await running.client.post("/predict", json={"rows": rows})
    body: dict[str, Any] = await response.json()
    return body


async def test_regression_predictions_are_counted_by_reference_bin(
    serve: Serve, diabetes_regression: ModelDir
) -> None:
    running = await serve(diabetes_regression)
    await _predict(running, diabetes_regression.card.parity.sample_inputs[:2])
    samples = await scrape(running)
    bins = samples["mlops_prediction_bin_total"]
    assert sum(v for _, v in bins) == 2.0
