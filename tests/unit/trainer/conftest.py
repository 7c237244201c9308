"""Settings for trainer runs in a test's own folders, and a mixed-type CSV dataset."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator.trainer.settings import TrainerSettings

MakeSettings = Callable[..., TrainerSettings]


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeSettings:
    """Trainer settings writing under ``tmp_path``; keyword arguments override fields."""
    for name in list(os.environ):
        if name.startswith("MLOPS_"):
            monkeypatch.delenv(name)

    def make(**overrides: Any) -> TrainerSettings:
        values: dict[str, Any] = {
            "dataset_uri": "sklearn://iris",
            "target": "target",
            "estimator": "LogisticRegression",
            "output_dir": tmp_path / "model",
            "store_uri": str(tmp_path / "store"),
            "termination_message_path": tmp_path / "termination-log",
        }
        return TrainerSettings(**(values | overrides))

    return make


def customers(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """A small table with numeric, categorical and missing values, and a text label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(float),
            "income k": rng.normal(50, 15, rows).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    score = (frame["income k"] - 50) / 15 + (frame["plan"] == "pro") * 1.5 - frame["age"] / 60
    frame["churned"] = np.where(score + rng.normal(0, 0.5, rows) > 0, "yes", "no")
    frame.loc[::11, "income k"] = np.nan
    frame.loc[::13, "region"] = None
    return frame


@pytest.fixture
def customers_csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    customers().to_csv(path, index=False)
    return path
