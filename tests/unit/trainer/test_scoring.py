"""The numpy-only held-out metrics equal scikit-learn's, with our two choices.

Aspects: on random label arrays (2–5 string or integer classes, some absent from the
held-out rows or only ever predicted, tied, clipped and float32 probabilities, rows that do
not sum to 1, classes out of sorted order) each classification metric equals scikit-learn's
given the probabilities clipped at float32's epsilon and their columns in sorted order, and
ROC AUC is there exactly when scikit-learn's call gives a number; on random regression
arrays (constant targets, perfect predictions) RMSE, MAE and R² do; the edge cases by
example: a tie in ROC AUC, a class without held-out rows, a constant target, the columns in
the model's order, a clipped zero probability, a true label the model does not know.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from mlops_operator.trainer.scoring import PROBABILITY_EPSILON, scores

Case = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]


def _sklearn_classification(
    y_true: npt.NDArray[Any],
    predicted: npt.NDArray[Any],
    probabilities: npt.NDArray[Any],
    classes: npt.NDArray[Any],
) -> dict[str, float]:
    """scikit-learn's metrics, called as the trainer called them before `scoring` existed,
    with the classes sorted first where it matters: scikit-learn reads the probability columns
    in the classes' sorted order, `scores` in the order given (the model's)."""
    order = np.argsort(classes, kind="stable")
    ordered = classes[order]
    # `scores` clips at float32's epsilon whatever the dtype (scikit-learn at the dtype's);
    # ROC AUC ranks the probabilities as they are.
    clipped = np.clip(
        probabilities.astype(np.float64), PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON
    )
    with warnings.catch_warnings():
        # Undefined metrics, unsorted labels and unnormalised rows only warn.
        warnings.simplefilter("ignore")
        expected = {
            "accuracy": metrics.accuracy_score(y_true, predicted),
            "balanced_accuracy": metrics.balanced_accuracy_score(y_true, predicted),
            "f1_macro": metrics.f1_score(y_true, predicted, average="macro"),
            "log_loss": metrics.log_loss(y_true, clipped[:, order], labels=ordered),
        }
        try:
            if len(classes) == 2:
                auc = metrics.roc_auc_score(y_true == classes[1], probabilities[:, 1])
            else:
                auc = metrics.roc_auc_score(
                    y_true,
                    probabilities[:, order],
                    multi_class="ovr",
                    average="macro",
                    labels=ordered,
                )
        except ValueError:
            auc = math.nan
    # scikit-learn 1.9 answers NaN, not a ValueError, when a class has no rows (or is the
    # only one): `scores` leaves ROC AUC out in both cases.
    if not math.isnan(auc):
        expected["roc_auc"] = auc
    return {key: float(value) for key, value in expected.items()}


def _sklearn_regression(y_true: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R² of a single row is NaN, with a warning
        return {
            "rmse": float(metrics.root_mean_squared_error(y_true, predicted)),
            "mae": float(metrics.mean_absolute_error(y_true, predicted)),
            "r2": float(metrics.r2_score(y_true, predicted)),
        }


def _assert_equal(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert list(actual) == list(expected)
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(actual[key]), key
        else:
            assert math.isclose(actual[key], value, rel_tol=1e-9, abs_tol=1e-12), (
                key,
                actual[key],
                value,
            )


_NAMES = st.text(alphabet="abé", min_size=1, max_size=3)


@st.composite
def _classification_cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(2, 5))
    labels: list[Any]
    if draw(st.booleans()):
        labels = sorted(draw(st.lists(_NAMES, min_size=count, max_size=count, unique=True)))
        only_predicted: Any = "z"  # outside the alphabet: never a class
    else:
        labels = sorted(
            draw(st.lists(st.integers(-3, 20), min_size=count, max_size=count, unique=True))
        )
        only_predicted = 99
    # The trainer's classes come sorted; the validator's are the card's, which need not be.
    if draw(st.integers(0, 4)) == 0:
        labels = draw(st.permutations(labels))
    classes = np.array(labels)
    # Every class in the held-out rows half of the time (else ROC AUC is seldom defined), else
    # some of them.
    if draw(st.booleans()):
        held_out = labels
    else:
        held_out = draw(st.lists(st.sampled_from(labels), min_size=1, max_size=count, unique=True))
    more = draw(st.lists(st.sampled_from(held_out), max_size=30 - len(held_out)))
    y_true = np.array(draw(st.permutations([*held_out, *more])))
    rows = len(y_true)
    predictable = st.sampled_from([*labels, only_predicted])
    predicted = np.array(draw(st.lists(predictable, min_size=rows, max_size=rows)))
    if y_true.dtype.kind == "U" and draw(st.booleans()):
        y_true = y_true.astype(object)
    # Small integer weights tie often and give exact 0s and 1s (which the log loss clips).
    weight = st.integers(0, 3) if draw(st.booleans()) else st.floats(0.0, 1.0)
    row = st.lists(weight, min_size=count, max_size=count)
    weights = np.array(draw(st.lists(row, min_size=rows, max_size=rows)), dtype=np.float64)
    weights[weights.sum(axis=1) == 0] = 1.0
    probabilities = weights / weights.sum(axis=1, keepdims=True)
    if draw(st.integers(0, 5)) == 0:
        probabilities *= 0.9  # rows short of 1: multiclass ROC AUC is refused
    if draw(st.booleans()):
        probabilities = probabilities.astype(np.float32)  # as onnxruntime gives them
    return y_true, predicted, probabilities, classes


@settings(max_examples=100, deadline=None)
@given(_classification_cases())
def test_classification_metrics_equal_scikit_learns(case: Case) -> None:
    y_true, predicted, probabilities, classes = case

    result = scores("classification", y_true, predicted, probabilities, classes)

    _assert_equal(result, _sklearn_classification(y_true, predicted, probabilities, classes))


_VALUES = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def _regression_cases(draw: st.DrawFn) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    rows = draw(st.integers(2, 30))  # a held-out part has two rows at least
    if draw(st.booleans()):
        y_true = np.full(rows, draw(_VALUES))
    else:
        y_true = np.array(draw(st.lists(_VALUES, min_size=rows, max_size=rows)))
    if draw(st.integers(0, 3)) == 0:
        predicted = y_true.copy()
    else:
        predicted = np.array(draw(st.lists(_VALUES, min_size=rows, max_size=rows)))
    return y_true, predicted


@settings(max_examples=100, deadline=None)
@given(_regression_cases())
def test_regression_metrics_equal_scikit_learns(
    case: tuple[npt.NDArray[Any], npt.NDArray[Any]],
) -> None:
    y_true, predicted = case

    _assert_equal(scores("regression", y_true, predicted), _sklearn_regression(y_true, predicted))


def test_binary_roc_auc_counts_a_tie_as_half() -> None:
    y_true = np.array(["no", "yes", "no", "yes", "yes"])
    predicted = np.array(["no", "yes", "no", "no", "yes"])
    positive = np.array([0.2, 0.8, 0.4, 0.4, 0.6])
    probabilities = np.column_stack([1 - positive, positive])
    classes = np.array(["no", "yes"])

    result = scores("classification", y_true, predicted, probabilities, classes)

    # Of the 6 (yes, no) pairs the yes scores higher in 5, and ties in 1 (0.4 and 0.4).
    assert result["roc_auc"] == pytest.approx(5.5 / 6, rel=1e-12)
    assert result["accuracy"] == pytest.approx(0.8)
    _assert_equal(result, _sklearn_classification(y_true, predicted, probabilities, classes))


@pytest.mark.parametrize(
    ("y_true", "classes", "reason"),
    [
        (["a", "b", "a", "b"], ["a", "b", "c"], "class 'c' has no held-out rows"),
        (["a", "a", "a", "a"], ["a", "b", "c"], "class 'b' has no held-out rows"),
        (["a", "a", "a", "a"], ["a", "b"], "only one class is present"),
    ],
)
def test_roc_auc_is_left_out_when_a_class_has_no_held_out_rows(
    y_true: list[str], classes: list[str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    truth, names = np.array(y_true), np.array(classes)
    probabilities = np.full((len(truth), len(names)), 1 / len(names))

    with caplog.at_level(logging.WARNING, logger="mlops_operator.trainer.scoring"):
        result = scores("classification", truth, truth, probabilities, names)

    assert sorted(result) == ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"]
    assert f"ROC AUC left out: {reason}" in caplog.text
    _assert_equal(result, _sklearn_classification(truth, truth, probabilities, names))


def test_a_constant_regression_target_scores_r2_1_when_hit_and_0_when_missed() -> None:
    constant = np.array([2.0, 2.0, 2.0])

    assert scores("regression", constant, constant) == {"rmse": 0.0, "mae": 0.0, "r2": 1.0}
    missed = scores("regression", constant, np.array([2.0, 2.0, 5.0]))
    assert missed == {"rmse": pytest.approx(math.sqrt(3)), "mae": 1.0, "r2": 0.0}
    _assert_equal(missed, _sklearn_regression(constant, np.array([2.0, 2.0, 5.0])))


def test_classification_needs_the_probabilities_and_the_classes() -> None:
    labels = np.array(["a", "b"])

    with pytest.raises(ValueError, match="need the probabilities and the classes"):
        scores("classification", labels, labels, None, labels)
    with pytest.raises(ValueError, match="need the probabilities and the classes"):
        scores("classification", labels, labels, np.eye(2), None)


def test_probability_columns_follow_the_classes_in_the_models_order() -> None:
    # A card's classes "2", "10" (integer labels as text) are in output order, not sorted.
    classes = np.array(["2", "10", "7"])
    y_true = np.array(["2", "10", "7", "2"])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])

    result = scores("classification", y_true, y_true, probabilities, classes)

    assert result["log_loss"] == pytest.approx(-np.log([0.8, 0.7, 0.6, 0.5]).mean())
    assert result["roc_auc"] == 1.0  # each class's own column ranks its rows first


def test_a_zero_probability_costs_the_same_in_float32_and_float64() -> None:
    # The trainer scores scikit-learn's float64 probabilities, the validator onnxruntime's
    # float32 ones: a class given 0 must cost the log loss the same on both sides.
    y_true = np.array(["a", "b", "b"])
    probabilities = np.array([[0.0, 1.0], [0.5, 0.5], [0.25, 0.75]])
    classes = np.array(["a", "b"])

    wide = scores("classification", y_true, y_true, probabilities, classes)
    narrow = scores("classification", y_true, y_true, probabilities.astype(np.float32), classes)

    assert wide["log_loss"] == narrow["log_loss"]
    expected = -(np.log(PROBABILITY_EPSILON) + np.log(0.5) + np.log(0.75)) / 3
    assert wide["log_loss"] == pytest.approx(expected)


def test_a_true_label_the_model_does_not_know_is_refused() -> None:
    # A champion trained before a class appeared cannot be scored on rows of that class.
    with pytest.raises(ValueError, match="y_true holds 'c', which is not one of the classes"):
        scores(
            "classification",
            np.array(["a", "c"]),
            np.array(["a", "b"]),
            np.array([[0.3, 0.7], [0.6, 0.4]]),
            np.array(["a", "b"]),
        )
