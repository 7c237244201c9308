"""Session-wide real models (fitted, exported, carded) and an in-process server factory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from mlops_operator.modelcard import ModelCard
from mlops_operator.serving.app import InferenceServer
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.settings import ServingSettings
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings
from tests.unit.serving.builders import export_model

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@dataclass(frozen=True)
class ModelDir:
    """An exported model: where it is and its card."""

    path: Path
    card: ModelCard


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained_iris(models_root: Path) -> ModelDir:
    """What the real trainer (`mlops train`) writes, to keep the contract honest."""
    path = models_root / "trained-iris"
    subprocess.run(
        [sys.executable, "-m", "mlops_operator.cli", "train", "--dataset", "sklearn://iris",
         "--target", "target", "--estimator", "LogisticRegression", "--output", str(path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return ModelDir(path, ModelCard.model_validate_json((path / "model-card.json").read_text()))


@pytest.fixture(scope="session")
def trained_categorical(models_root: Path) -> ModelDir:
    """The trainer's categorical export: one input per column, string (BYTES) ones included."""
    rng = np.random.default_rng(0)
    rows = 300
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(float),
            "income": rng.normal(50, 15, rows).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    score = (frame["income"] - 50) / 15 + (frame["plan"] == "pro") * 1.5 - frame["age"] / 60
    frame["churned"] = np.where(score + rng.normal(0, 0.5, rows) > 0, "yes", "no")
    csv = models_root / "customers.csv"
    frame.to_csv(csv, index=False)
    path = models_root / "trained-categorical"
    train(
        TrainerSettings(
            dataset_uri=str(csv),
            target="churned",
            categorical=["plan", "region"],
            estimator="LogisticRegression",
            model_name="churn",
            output_dir=path,
        )
    )
    return ModelDir(path, ModelCard.model_validate_json((path / "model-card.json").read_text()))


@pytest.fixture(scope="session")
def iris_lr(models_root: Path) -> ModelDir:
    iris = load_iris()
    path = models_root / "iris-lr"
    card = export_model(
        LogisticRegression(max_iter=500),
        iris.data,
        iris.target,
        path,
        name="iris",
        feature_names=IRIS_FEATURES,
    )
    return ModelDir(path, card)


@pytest.fixture(scope="session")
def iris_forest(models_root: Path) -> ModelDir:
    iris = load_iris()
    path = models_root / "iris-forest"
    card = export_model(
        RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
        iris.data,
        iris.target,
        path,
        name="iris-forest",
        feature_names=IRIS_FEATURES,
    )
    return ModelDir(path, card)


@pytest.fixture(scope="session")
def diabetes_regression(models_root: Path) -> ModelDir:
    data = load_diabetes()
    path = models_root / "diabetes"
    card = export_model(
        LinearRegression(),
        data.data,
        data.target,
        path,
        name="diabetes",
        feature_names=list(data.feature_names),
    )
    return ModelDir(path, card)


@pytest.fixture(scope="session")
def iris_imputing(models_root: Path) -> ModelDir:
    iris = load_iris()
    x = iris.data.copy()
    x[::7, 1] = np.nan
    path = models_root / "iris-imputing"
    card = export_model(
        make_pipeline(SimpleImputer(strategy="median"), LogisticRegression(max_iter=500)),
        x,
        iris.target,
        path,
        name="iris-imputing",
        feature_names=IRIS_FEATURES,
        allow_non_finite=True,
    )
    return ModelDir(path, card)


@dataclass
class Running:
    """A server started in-process and a client for it."""

    client: TestClient[Any, Any]
    server: InferenceServer


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an in-process server (real aiohttp on loopback) for a model dir."""
    clients: list[TestClient[Any, Any]] = []

    async def start(model: ModelDir, **overrides: Any) -> Running:
        settings = ServingSettings(model_dir=str(model.path), **overrides)
        served = load_model(str(model.path), threads=1, version=settings.model_version)
        server = InferenceServer(served, settings)
        client: TestClient[Any, Any] = TestClient(
            TestServer(server.application(), host="127.0.0.1")
        )
        await client.start_server()
        clients.append(client)
        return Running(client, server)

    yield start
    for client in clients:
        await client.close()
