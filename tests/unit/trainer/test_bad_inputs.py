"""Every unusable input ends the training with exit code 1 and one clear sentence.

Aspects: the reason and the sentence in the termination message (and on stderr)
for a missing file, an unknown bundled dataset, an unsupported format, a wrong
target column, text where numbers are needed, an estimator not allowed, a
parameter the estimator does not take or rejects, too few rows for the split
or the folds, a classification target that is continuous, and an ONNX model
that disagrees with scikit-learn. Nothing is written when the training fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops_operator.trainer.errors import Reason
from mlops_operator.trainer.result import TrainingFailed, parse_termination_message
from mlops_operator.trainer.run import report
from tests.unit.trainer.conftest import MakeSettings, customers


def _fail(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], **overrides: Any
) -> TrainingFailed:
    settings = make_settings(**overrides)
    assert report(settings) == 1
    assert settings.termination_message_path is not None
    result = parse_termination_message(settings.termination_message_path.read_text())
    assert isinstance(result, TrainingFailed)
    assert capsys.readouterr().err.strip().endswith(f"error: {result.message}")
    assert "\n" not in result.message
    assert not settings.output_dir.exists()
    return result


def _csv(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_a_missing_file(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = _fail(make_settings, capsys, dataset_uri=f"file://{tmp_path}/nope.csv")

    assert result.reason == Reason.DATASET_NOT_FOUND
    assert result.message == f"dataset file://{tmp_path}/nope.csv does not exist"


def test_an_unknown_bundled_dataset(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, dataset_uri="sklearn://titanic")

    assert result.reason == Reason.DATASET_NOT_FOUND
    assert result.message == (
        "there is no bundled dataset 'titanic'; choose one of iris, wine, breast_cancer, digits, diabetes"
    )


def test_an_unsupported_file_format(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "data.xlsx").write_bytes(b"x")

    result = _fail(make_settings, capsys, dataset_uri=str(tmp_path / "data.xlsx"))

    assert result.reason == Reason.INVALID_DATASET
    assert "unsupported extension '.xlsx'; expected .csv" in result.message


def test_a_wrong_target_column(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, target="species")

    assert result.reason == Reason.INVALID_DATASET
    assert result.message == (
        "target column 'species' not in the dataset; its columns are sepal length (cm),"
        " sepal width (cm), petal length (cm), petal width (cm), target"
    )


def test_a_wrong_feature_column(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, features=["sepal length (cm)", "colour"])

    assert result.reason == Reason.INVALID_DATASET
    assert result.message.startswith("feature column 'colour' not in the dataset;")


def test_text_where_numbers_are_needed(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frame = customers()
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "unknown"

    result = _fail(
        make_settings,
        capsys,
        dataset_uri=_csv(tmp_path, frame),
        target="churned",
        categorical=["plan", "region"],
    )

    assert result.reason == Reason.INVALID_DATASET
    assert result.message == (
        "column 'age' holds text (for example 'unknown') where numbers are needed;"
        " list it as a categorical column or fix the data"
    )


def test_an_undeclared_text_column(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = _fail(
        make_settings,
        capsys,
        dataset_uri=_csv(tmp_path, customers()),
        target="churned",
        categorical=["plan"],
    )

    assert result.reason == Reason.INVALID_DATASET
    assert result.message.startswith(
        "column 'region' holds text (for example 'east') where numbers are needed"
    )


def test_missing_values_with_imputation_off(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = _fail(
        make_settings,
        capsys,
        dataset_uri=_csv(tmp_path, customers()),
        target="churned",
        categorical=["plan", "region"],
        imputation="none",
    )

    assert result.message == (
        "column 'income k' has 22 missing values and imputation is off; turn imputation on or fill them"
    )


def test_an_estimator_not_allowed(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, estimator="os.system")

    assert result.reason == Reason.ESTIMATOR_NOT_ALLOWED
    assert result.message.startswith(
        "estimator 'os.system' is not allowed; choose one of AdaBoostClassifier,"
    )


def test_a_parameter_the_estimator_does_not_take(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, params={"depth": 3})

    assert result.reason == Reason.INVALID_PARAMETER
    assert result.message.startswith(
        "LogisticRegression has no parameter 'depth'; it takes C, class_weight,"
    )


def test_a_parameter_of_the_wrong_type(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, params={"C": "strong"})

    assert result.reason == Reason.INVALID_PARAMETER
    assert result.message == (
        "The 'C' parameter of LogisticRegression must be a float in the range (0.0, inf]. Got 'strong' instead."
    )


def test_too_few_rows_for_the_split(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": [0, 1, 2, 0, 1, 2]})

    result = _fail(make_settings, capsys, dataset_uri=_csv(tmp_path, frame), target="y")

    assert result.reason == Reason.TOO_FEW_ROWS
    assert result.message == (
        "too few rows for the split: 6 rows with test_size 0.2 leave 4 training and 2 held-out rows;"
        " each part needs at least 3"
    )


def test_a_class_with_a_single_row(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frame = pd.DataFrame({"x": range(20), "y": ["a"] * 10 + ["b"] * 9 + ["c"]})

    result = _fail(make_settings, capsys, dataset_uri=_csv(tmp_path, frame), target="y")

    assert result.reason == Reason.TOO_FEW_ROWS
    assert (
        result.message
        == "class 'c' has a single row; a stratified split needs at least 2 rows of every class"
    )


def test_too_few_rows_for_the_folds(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, cv_folds=50)

    assert result.reason == Reason.TOO_FEW_ROWS
    assert (
        result.message
        == "too few rows for 50-fold cross-validation: class '0' has 40 training rows, fewer than 50"
    )


def test_a_continuous_target_for_a_classifier(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _fail(make_settings, capsys, dataset_uri="sklearn://iris", target="petal width (cm)")

    assert result.reason == Reason.INVALID_DATASET
    assert result.message.startswith("target column 'petal width (cm)' holds fractional numbers;")


def test_a_text_target_for_a_regressor(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = _fail(
        make_settings,
        capsys,
        dataset_uri=_csv(tmp_path, customers()),
        target="churned",
        estimator="Ridge",
        categorical=["plan", "region"],
    )

    assert (
        result.message
        == "target column 'churned' holds text (for example 'no'); a regression target must be numeric"
    )


def test_an_onnx_model_that_disagrees_with_scikit_learn(
    make_settings: MakeSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Scaling in float32 (ONNX) and float64 (scikit-learn) moves some digits across a tree's
    # thresholds: the reason scaling="auto" never scales trees. Forcing it must fail parity.
    result = _fail(
        make_settings,
        capsys,
        dataset_uri="sklearn://digits",
        estimator="DecisionTreeClassifier",
        scaling="standard",
    )

    assert result.reason == Reason.PARITY_FAILED
    # How many digits cross a threshold depends on which rows are held out.
    assert re.fullmatch(
        r"the ONNX model disagrees with scikit-learn on the held-out rows: [1-9]\d* of 360 labels"
        r" differ and probabilities differ by up to 1 \(allowed 0\.0001\)",
        result.message,
    ), result.message
