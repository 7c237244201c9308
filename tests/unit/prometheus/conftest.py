"""A real served iris model and its real server metrics, to scrape without HTTP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlops_operator.serving.loading import load_model
from mlops_operator.serving.metrics import ServingMetrics
from mlops_operator.serving.model import ServedModel
from tests.unit.serving.builders import export_model

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    iris = load_iris()
    path: Path = tmp_path_factory.mktemp("drift-models") / "iris"
    export_model(
        LogisticRegression(max_iter=500),
        iris.data,
        iris.target,
        path,
        name="iris",
        feature_names=IRIS_FEATURES,
    )
    return load_model(str(path), threads=1, version="1")


@pytest.fixture
def server_metrics(iris_model: ServedModel) -> ServingMetrics:
    """Fresh counters, as a server process starts with."""
    return ServingMetrics(iris_model)


def serve(metrics: ServingMetrics, rows: np.ndarray) -> np.ndarray:
    """Predict `rows` with the real model and count them as the server does; the labels."""
    feeds = {"X": rows.astype(np.float32)}
    labels = metrics.model.session.run(["label"], feeds)[0]
    metrics.observe_batch(feeds, labels, [len(rows)], [len(rows)])
    return np.asarray(labels)
