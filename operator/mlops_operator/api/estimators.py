"""The estimator catalogue: every scikit-learn class a TrainingJob may name, in one place.

The CRD's enum of ``estimator.name`` (`EstimatorName`), the CEL rules that match an
estimator with its task and with ``preprocessing.scaleNumeric``, and the trainer's
allow-list (`mlops_operator.trainer.estimators`, which imports each class from its
``module``) are all derived from `CATALOGUE`, so the API server admits exactly the
estimators the trainer can fit. A TrainingJob names an estimator; it can never name
an import path, since importing whatever a custom resource says would be code
execution in the trainer pod.

Every entry converts to ONNX with skl2onnx and passes the parity check on the
bundled datasets (tested). Left out, on purpose:

* ``HistGradientBoostingClassifier``/``Regressor``: skl2onnx 1.20's converter emits
  boolean attributes that onnx 1.23 rejects ("Unable to create node
  'TreeEnsembleClassifier'"), so the export fails;
* classifiers without ``predict_proba`` (``LinearSVC``, hinge-loss ``SGDClassifier``):
  ROC AUC, log loss and the probability parity check need probabilities.

Pure data (no scikit-learn import): the operator reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

__all__ = [
    "CATALOGUE",
    "CLASSIFIERS",
    "ESTIMATOR_NAMES",
    "REGRESSORS",
    "SCALE_INVARIANT",
    "EstimatorEntry",
    "EstimatorName",
    "Task",
    "catalogue_entry",
]


class Task(StrEnum):
    """What the model predicts."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class EstimatorEntry:
    """One estimator a TrainingJob may name."""

    name: str
    """The scikit-learn class name, which is also the name in a TrainingJob."""
    module: str
    """The scikit-learn module the trainer imports the class from."""
    task: Task
    scale_sensitive: bool
    """Whether standardizing its inputs changes it (linear models, kernels, distances, networks).

    Trees and naive Bayes are invariant: scaling cannot help them, and computing it in
    float32 (ONNX) against float64 (scikit-learn) moves values across a tree's thresholds.
    """
    fixed: tuple[tuple[str, Any], ...] = ()
    """Parameters the trainer needs and a spec may not change (e.g. SVC's probabilities)."""


_C, _R = Task.CLASSIFICATION, Task.REGRESSION
_LINEAR, _ENSEMBLE, _TREE = "sklearn.linear_model", "sklearn.ensemble", "sklearn.tree"
_NEIGHBORS, _SVM, _NET = "sklearn.neighbors", "sklearn.svm", "sklearn.neural_network"

CATALOGUE: tuple[EstimatorEntry, ...] = (
    EstimatorEntry("LogisticRegression", _LINEAR, _C, scale_sensitive=True),
    EstimatorEntry("RandomForestClassifier", _ENSEMBLE, _C, scale_sensitive=False),
    EstimatorEntry("ExtraTreesClassifier", _ENSEMBLE, _C, scale_sensitive=False),
    EstimatorEntry("GradientBoostingClassifier", _ENSEMBLE, _C, scale_sensitive=False),
    EstimatorEntry("AdaBoostClassifier", _ENSEMBLE, _C, scale_sensitive=False),
    EstimatorEntry("DecisionTreeClassifier", _TREE, _C, scale_sensitive=False),
    EstimatorEntry("KNeighborsClassifier", _NEIGHBORS, _C, scale_sensitive=True),
    EstimatorEntry("GaussianNB", "sklearn.naive_bayes", _C, scale_sensitive=False),
    EstimatorEntry("SVC", _SVM, _C, scale_sensitive=True, fixed=(("probability", True),)),
    EstimatorEntry("MLPClassifier", _NET, _C, scale_sensitive=True),
    EstimatorEntry("LinearRegression", _LINEAR, _R, scale_sensitive=True),
    EstimatorEntry("Ridge", _LINEAR, _R, scale_sensitive=True),
    EstimatorEntry("Lasso", _LINEAR, _R, scale_sensitive=True),
    EstimatorEntry("ElasticNet", _LINEAR, _R, scale_sensitive=True),
    EstimatorEntry("SGDRegressor", _LINEAR, _R, scale_sensitive=True),
    EstimatorEntry("RandomForestRegressor", _ENSEMBLE, _R, scale_sensitive=False),
    EstimatorEntry("ExtraTreesRegressor", _ENSEMBLE, _R, scale_sensitive=False),
    EstimatorEntry("GradientBoostingRegressor", _ENSEMBLE, _R, scale_sensitive=False),
    EstimatorEntry("DecisionTreeRegressor", _TREE, _R, scale_sensitive=False),
    EstimatorEntry("KNeighborsRegressor", _NEIGHBORS, _R, scale_sensitive=True),
    EstimatorEntry("SVR", _SVM, _R, scale_sensitive=True),
    EstimatorEntry("LinearSVR", _SVM, _R, scale_sensitive=True),
    EstimatorEntry("MLPRegressor", _NET, _R, scale_sensitive=True),
)

ESTIMATOR_NAMES: tuple[str, ...] = tuple(entry.name for entry in CATALOGUE)
"""Every estimator name, in catalogue order (the CRD's enum)."""

CLASSIFIERS: tuple[str, ...] = tuple(e.name for e in CATALOGUE if e.task is Task.CLASSIFICATION)
"""Estimators for `task: classification`."""

REGRESSORS: tuple[str, ...] = tuple(e.name for e in CATALOGUE if e.task is Task.REGRESSION)
"""Estimators for `task: regression`."""

SCALE_INVARIANT: tuple[str, ...] = tuple(e.name for e in CATALOGUE if not e.scale_sensitive)
"""Estimators that scaling cannot change (``scaleNumeric: true`` is refused with them)."""

_BY_NAME = {entry.name: entry for entry in CATALOGUE}


def catalogue_entry(name: str) -> EstimatorEntry | None:
    """The catalogue's entry for `name`, or None when it is not in the catalogue."""
    return _BY_NAME.get(name)


def _check_name(name: str) -> str:
    if name not in _BY_NAME:
        raise ValueError(
            f"estimator {name!r} is not in the catalogue; choose one of {', '.join(ESTIMATOR_NAMES)}"
        )
    return name


EstimatorName = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "enum": list(ESTIMATOR_NAMES)}),
]
"""A scikit-learn class name from `CATALOGUE` (an enum in the CRD)."""
