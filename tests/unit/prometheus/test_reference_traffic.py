"""Traffic drawn like the training data reads as no drift on the real server's counters.

The trainer's reference is computed on float64 training values; the server counts the
float32 values onnxruntime receives. Decile edges are data values, so without the same
rounding on both sides every value equal to an edge would land one bin higher.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.datasets import load_iris

from mlops_operator.modelcard import NumericReference
from mlops_operator.prometheus import promql
from mlops_operator.prometheus.history import PodTarget, ScrapeHistory, Snapshot, parse_metrics
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.trainer.reference import numeric_reference
from tests.unit.prometheus.conftest import IRIS_FEATURES, serve


def test_the_training_data_itself_has_zero_psi(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    iris = load_iris().data
    model = load_model(_iris_dir(tmp_path_factory), threads=1, version="1")
    # The card of the trainer: references from float64 values, edges equal to data values.
    card = model.card.model_copy(
        update={
            "reference": {
                name: numeric_reference(iris[:, i].astype(np.float64))
                for i, name in enumerate(IRIS_FEATURES)
            }
        }
    )
    object.__setattr__(model, "card", card)
    metrics = ServingMetrics(model)
    serve(metrics, iris)
    history = ScrapeHistory()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    history.record(
        PodTarget("p", "u", now), Snapshot(now, parse_metrics(metrics.render().decode()))
    )
    counted, _ = history.window_counts(promql.Scope(model="iris"), now, timedelta(minutes=5))
    for name in IRIS_FEATURES:
        reference = card.reference[name]
        assert isinstance(reference, NumericReference)
        assert counted["1"].features[name].psi() == pytest.approx(0.0, abs=1e-12), name


def _iris_dir(factory: pytest.TempPathFactory) -> str:
    from sklearn.linear_model import LogisticRegression

    from tests.unit.serving.builders import export_model

    path = factory.mktemp("reference-traffic") / "iris"
    data = load_iris()
    export_model(
        LogisticRegression(max_iter=500), data.data, data.target, path, name="iris",
        feature_names=IRIS_FEATURES,
    )  # fmt: skip
    return str(path)
