"""The TrainingJob's preprocessing fields, as the trainer applies them inside the ONNX graph.

Aspects (each fails when its setting is ignored): without a list of categorical
features the text columns are encoded; a missing category is filled with the
training split's most frequent one, or with the constant category
``__missing__``; a missing number is filled with the training split's most
frequent value (not its median); scaling can be asked for or refused
explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from mlops_operator.api.trainingjob import MISSING_CATEGORY
from mlops_operator.modelcard import MODEL_FILE, CategoricalReference, ModelCard
from mlops_operator.trainer.run import train
from tests.unit.trainer.conftest import MakeSettings


def _session(folder: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(folder / MODEL_FILE), providers=["CPUExecutionProvider"])


def _row(**values: Any) -> dict[str, np.ndarray]:
    return {
        name: np.array([[value]], dtype=object if isinstance(value, str) else np.float32)
        for name, value in values.items()
    }


def _probabilities(session: ort.InferenceSession, **values: Any) -> np.ndarray:
    return np.asarray(session.run(None, _row(**values))[1])


def test_without_categorical_features_the_text_columns_are_one_hot_encoded(
    make_settings: MakeSettings, customers_csv: Path
) -> None:
    settings = make_settings(dataset_uri=str(customers_csv), target="churned")

    card = train(settings).card

    assert card.lineage.categorical == ["plan", "region"]
    assert [(f.name, f.kind) for f in card.signature.features] == [
        ("age", "numeric"),
        ("income k", "numeric"),
        ("plan", "categorical"),
        ("region", "categorical"),
    ]


def _most_frequent(card: ModelCard, feature: str) -> str:
    reference = card.reference[feature]
    assert isinstance(reference, CategoricalReference)
    counted = [
        (share, category)
        for category, share in zip(reference.categories, reference.proportions, strict=False)
        if category
    ]
    # On a tie the imputer takes the category that sorts first.
    return min(counted, key=lambda entry: (-entry[0], entry[1]))[1]


def test_a_missing_category_becomes_the_most_frequent_one(
    make_settings: MakeSettings, customers_csv: Path
) -> None:
    settings = make_settings(
        dataset_uri=str(customers_csv), target="churned", categorical_imputation="most_frequent"
    )
    card = train(settings).card
    session = _session(settings.output_dir)
    common = _most_frequent(card, "region")
    row = {"age": 40.0, "income_k": 50.0, "plan": "plus"}

    missing = _probabilities(session, **row, region="")

    assert card.lineage.categorical_imputation == "most_frequent"
    np.testing.assert_allclose(missing, _probabilities(session, **row, region=common), atol=1e-6)
    others = [c for c in ("north", "south", "east", "west") if c != common]
    assert all(
        not np.allclose(missing, _probabilities(session, **row, region=c), atol=1e-6)
        for c in others
    )


def test_a_missing_category_becomes_a_category_of_its_own_with_constant(
    make_settings: MakeSettings, customers_csv: Path
) -> None:
    settings = make_settings(
        dataset_uri=str(customers_csv), target="churned", categorical_imputation="constant"
    )
    card = train(settings).card
    session = _session(settings.output_dir)
    row = {"age": 40.0, "income_k": 50.0, "plan": "plus"}

    missing = _probabilities(session, **row, region="")

    assert card.lineage.categorical_imputation == "constant"
    np.testing.assert_allclose(
        missing, _probabilities(session, **row, region=MISSING_CATEGORY), atol=1e-6
    )
    common = _most_frequent(card, "region")
    assert not np.allclose(missing, _probabilities(session, **row, region=common), atol=1e-6)


def _imputed_values(folder: Path) -> list[float]:
    model = onnx.load(str(folder / MODEL_FILE))
    for node in model.graph.node:
        if node.op_type == "Imputer":
            for attribute in node.attribute:
                if attribute.name == "imputed_value_floats":
                    return list(attribute.floats)
    raise AssertionError("the ONNX graph has no Imputer")


@pytest.mark.parametrize(("strategy", "filled"), [("most_frequent", 0.0), ("median", 10.0)])
def test_a_missing_number_is_filled_with_the_chosen_statistic(
    make_settings: MakeSettings, tmp_path: Path, strategy: str, filled: float
) -> None:
    # Zeros are the most frequent value (40 %), 10 the median, about 34 the mean.
    rng = np.random.default_rng(0)
    values = rng.permutation(np.array([0.0] * 160 + [10.0] * 120 + [100.0] * 120))
    frame = pd.DataFrame({"x": values, "noise": rng.normal(0, 1, 400)})
    frame["y"] = np.where(frame["x"] + 5 * frame["noise"] > 20, "high", "low")
    frame.loc[::17, "x"] = np.nan
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    settings = make_settings(dataset_uri=str(path), target="y", imputation=strategy)

    card = train(settings).card

    assert card.lineage.imputation == strategy
    assert card.signature.allow_non_finite  # the served model takes a missing number
    assert _imputed_values(settings.output_dir)[0] == pytest.approx(filled)


@pytest.mark.parametrize(("scaling", "recorded"), [("standard", "standard"), ("none", "none")])
def test_scaling_asked_for_or_refused_explicitly(
    make_settings: MakeSettings, scaling: str, recorded: str
) -> None:
    settings = make_settings(estimator="KNeighborsClassifier", scaling=scaling)

    card = train(settings).card

    assert card.lineage.scaling == recorded
    ops = {node.op_type for node in onnx.load(str(settings.output_dir / MODEL_FILE)).graph.node}
    assert ("Scaler" in ops) is (recorded == "standard")
