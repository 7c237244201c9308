"""A training from start to finish, on real data with real scikit-learn and onnxruntime.

Aspects: each bundled dataset trains and its card describes the model truly
(sha256, signature, metrics, references, parity samples that the ONNX file
reproduces); the output folder and the store hold the artifacts at their
content addresses; categorical columns and missing values travel through ONNX;
the termination message says where the model is; cross-validation adds its metrics.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from mlops_operator.modelcard import (
    MODEL_CARD_FILE,
    MODEL_FILE,
    CategoricalReference,
    ModelCard,
    NumericReference,
)
from mlops_operator.trainer.result import (
    MAX_TERMINATION_MESSAGE_BYTES,
    TrainingSucceeded,
    parse_termination_message,
)
from mlops_operator.trainer.run import report, train
from mlops_operator.trainer.snapshot import DATASET_MANIFEST_FILE, DatasetManifest
from tests.unit.trainer.conftest import MakeSettings

CLASSIFICATION_METRICS = {"accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc"}


def _session(model_dir: Path) -> ort.InferenceSession:
    return ort.InferenceSession(
        (model_dir / MODEL_FILE).read_bytes(), providers=["CPUExecutionProvider"]
    )


def _sample_feeds(card: ModelCard) -> dict[str, Any]:
    """The card's parity sample rows as ONNX feeds, built only from the card's signature."""
    rows = card.parity.sample_inputs
    feeds: dict[str, Any] = {}
    for spec in card.signature.inputs:
        features = [f for f in card.signature.features if f.input == spec.name]
        columns = [
            [
                np.nan
                if row[card.signature.features.index(f)] is None
                else row[card.signature.features.index(f)]
                for row in rows
            ]
            for f in sorted(features, key=lambda f: f.index)
        ]
        dtype = object if spec.dtype == "string" else np.float32
        feeds[spec.name] = np.array(columns, dtype=dtype).T
    return feeds


@pytest.mark.parametrize(
    ("dataset", "estimator", "task"),
    [
        ("iris", "LogisticRegression", "classification"),
        ("wine", "RandomForestClassifier", "classification"),
        ("breast_cancer", "GradientBoostingClassifier", "classification"),
        ("digits", "LogisticRegression", "classification"),
        ("diabetes", "Ridge", "regression"),
    ],
)
def test_each_bundled_dataset_trains_into_a_true_model_card(
    make_settings: MakeSettings, dataset: str, estimator: str, task: str
) -> None:
    settings = make_settings(
        dataset_uri=f"sklearn://{dataset}",
        estimator=estimator,
        params={"n_estimators": 20} if "Forest" in estimator or "Boosting" in estimator else {},
    )

    outcome = train(settings)

    card = ModelCard.model_validate_json((settings.output_dir / MODEL_CARD_FILE).read_bytes())
    onnx_bytes = (settings.output_dir / MODEL_FILE).read_bytes()
    assert card == outcome.card
    assert card.artifact.sha256 == hashlib.sha256(onnx_bytes).hexdigest() == outcome.result.sha256
    assert card.artifact.size_bytes == len(onnx_bytes)
    assert card.signature.task == task
    assert card.lineage.estimator == estimator
    assert card.lineage.dataset_sha256 == outcome.result.dataset_sha256
    assert card.lineage.dataset_rows > card.parity.rows_checked > 0
    # Complete data: imputation "auto" adds no imputer, so the model does not take NaN.
    assert (card.lineage.imputation, card.signature.allow_non_finite) == ("none", False)
    if task == "classification":
        assert set(card.metrics) == CLASSIFICATION_METRICS
        assert card.metrics["accuracy"] > 0.8
        assert [o.name for o in card.signature.outputs] == ["label", "probabilities"]
        assert card.parity.labels_identical
        assert card.parity.max_abs_diff <= card.parity.tolerance == 1e-4
    else:
        assert set(card.metrics) == {"rmse", "mae", "r2"}
        assert card.metrics["r2"] > 0.2
        assert [o.name for o in card.signature.outputs] == ["variable"]
    # Numeric-only data travels as one float tensor, features in column order.
    (single,) = card.signature.inputs
    assert (single.name, single.dtype, single.shape) == (
        "input",
        "float32",
        [None, len(card.signature.features)],
    )
    assert card.signature.features[0].input == "input"
    assert set(card.reference) == {f.name for f in card.signature.features}
    for reference in card.reference.values():
        assert isinstance(reference, NumericReference)
        assert len(reference.proportions) == len(reference.edges) + 1
        assert sum(reference.proportions) == pytest.approx(1.0)
    assert sum(card.prediction_reference.proportions) == pytest.approx(1.0)
    # The ONNX file reproduces the card's own parity samples.
    outputs = _session(settings.output_dir).run(None, _sample_feeds(card))
    if task == "classification":
        assert [str(v) for v in outputs[0]] == card.parity.sample_outputs
        np.testing.assert_allclose(outputs[1], card.parity.sample_probabilities, atol=1e-6)
    else:
        np.testing.assert_allclose(outputs[0].ravel(), card.parity.sample_outputs, rtol=1e-6)


def test_the_store_holds_model_and_data_at_their_content_addresses(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(model_name="iris-lr")

    result = train(settings).result

    model_dir = tmp_path / "store" / "models" / "iris-lr" / result.sha256
    assert result.model_key == f"models/iris-lr/{result.sha256}"
    assert result.model_uri == f"file://{model_dir}"
    assert (model_dir / MODEL_FILE).read_bytes() == (settings.output_dir / MODEL_FILE).read_bytes()
    card = ModelCard.model_validate_json((model_dir / MODEL_CARD_FILE).read_bytes())
    assert card.lineage.dataset_key == f"datasets/{result.dataset_sha256}"
    manifest = DatasetManifest.model_validate_json(
        (tmp_path / "store" / card.lineage.dataset_key / DATASET_MANIFEST_FILE).read_bytes()
    )
    assert (manifest.sha256, manifest.rows, manifest.columns) == (result.dataset_sha256, 150, 5)
    assert [c.dtype for c in manifest.column_schema] == ["float64"] * 4 + ["int64"]


def test_without_a_store_only_the_output_folder_is_written(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings(store_uri=None)

    result = train(settings).result

    assert result.model_key is None
    assert result.model_uri == f"file://{settings.output_dir}"
    assert sorted(p.name for p in settings.output_dir.iterdir()) == [MODEL_CARD_FILE, MODEL_FILE]
    assert not (tmp_path / "store").exists()


def test_categorical_columns_and_missing_values_travel_through_onnx(
    make_settings: MakeSettings, customers_csv: Path
) -> None:
    settings = make_settings(
        dataset_uri=str(customers_csv),
        target="churned",
        categorical=["plan", "region"],
        estimator="RandomForestClassifier",
        params={"n_estimators": 15},
    )

    card = train(settings).card

    signature = card.signature
    assert [(f.name, f.kind) for f in signature.features] == [
        ("age", "numeric"),
        ("income k", "numeric"),
        ("plan", "categorical"),
        ("region", "categorical"),
    ]
    # One [None, 1] input per column; skl2onnx turns "income k" into a valid name.
    assert [(i.name, i.dtype, i.shape) for i in signature.inputs] == [
        ("age", "float32", [None, 1]),
        ("income_k", "float32", [None, 1]),
        ("plan", "string", [None, 1]),
        ("region", "string", [None, 1]),
    ]
    assert [f.input for f in signature.features] == ["age", "income_k", "plan", "region"]
    assert signature.classes == ["no", "yes"]
    assert signature.allow_non_finite
    assert card.lineage.categorical == ["plan", "region"]
    plan = card.reference["plan"]
    assert isinstance(plan, CategoricalReference)
    assert sorted(plan.categories) == ["basic", "plus", "pro"]
    assert plan.proportions[-1] == 0.0
    region = card.reference["region"]
    assert isinstance(region, CategoricalReference)
    assert "" in region.categories  # a missing category is the empty string
    session = _session(settings.output_dir)
    unseen = {
        "age": np.array([[40.0]], dtype=np.float32),
        "income_k": np.array([[np.nan]], dtype=np.float32),
        "plan": np.array([["platinum"]], dtype=object),
        "region": np.array([["moon"]], dtype=object),
    }
    labels, probabilities = session.run(None, unseen)
    assert labels[0] in ("no", "yes")
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    outputs = session.run(None, _sample_feeds(card))
    assert [str(v) for v in outputs[0]] == card.parity.sample_outputs


def test_cross_validation_adds_mean_and_spread_of_each_metric(make_settings: MakeSettings) -> None:
    metrics = train(
        make_settings(dataset_uri="sklearn://diabetes", estimator="Ridge", cv_folds=3)
    ).card.metrics

    assert {"cv_rmse_mean", "cv_rmse_std", "cv_mae_mean", "cv_r2_mean", "cv_r2_std"} <= set(metrics)
    assert metrics["cv_rmse_mean"] > 0
    assert 0 < metrics["cv_r2_mean"] < 1


def test_report_writes_a_small_termination_message_and_exits_zero(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(cv_folds=3)

    assert report(settings) == 0

    assert settings.termination_message_path is not None
    text = settings.termination_message_path.read_text()
    assert len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES
    result = parse_termination_message(text)
    assert isinstance(result, TrainingSucceeded)
    assert result.metrics["cv_accuracy_mean"] > 0.8
    assert json.loads(capsys.readouterr().out) == json.loads(text)


def test_imputation_asked_for_on_complete_data_makes_the_model_take_nan(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(imputation="mean")

    card = train(settings).card

    assert (card.lineage.imputation, card.signature.allow_non_finite) == ("mean", True)
    labels, probabilities = _session(settings.output_dir).run(
        None, {"input": np.array([[5.0, np.nan, 1.4, 0.2]], dtype=np.float32)}
    )
    assert labels[0] == 0
    assert np.isfinite(probabilities).all()
