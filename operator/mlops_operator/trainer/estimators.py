"""The allow-list of estimators and the checking of their parameters.

A TrainingJob names an estimator; it can never name an import path, since
importing whatever a custom resource says would be code execution in the
trainer pod. Every estimator here converts to ONNX with skl2onnx and passes the
parity check on the bundled datasets (tested). Left out, on purpose:

* ``HistGradientBoostingClassifier``/``Regressor``: skl2onnx 1.20's converter
  emits boolean attributes that onnx 1.23 rejects ("Expected an int, got a
  boolean"), so export fails;
* classifiers without ``predict_proba`` (``LinearSVC``, hinge-loss ``SGDClassifier``):
  ROC AUC, log loss and the probability parity check need probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sklearn import ensemble, linear_model, naive_bayes, neighbors, neural_network, svm, tree
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

from mlops_operator.trainer.errors import Reason, TrainingError

__all__ = ["ESTIMATORS", "EstimatorSpec", "Task", "build_estimator", "resolve_estimator"]

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class EstimatorSpec:
    """One allowed estimator."""

    factory: type[BaseEstimator]
    task: Task
    scale_sensitive: bool
    """Whether standardizing its inputs helps (linear models, kernels, distances, networks)."""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Parameters the trainer needs and a spec may not change."""

    @property
    def name(self) -> str:
        """The name a TrainingJob uses: the scikit-learn class name."""
        return self.factory.__name__


_SPECS = (
    EstimatorSpec(linear_model.LogisticRegression, "classification", scale_sensitive=True),
    EstimatorSpec(ensemble.RandomForestClassifier, "classification", scale_sensitive=False),
    EstimatorSpec(ensemble.ExtraTreesClassifier, "classification", scale_sensitive=False),
    EstimatorSpec(ensemble.GradientBoostingClassifier, "classification", scale_sensitive=False),
    EstimatorSpec(ensemble.AdaBoostClassifier, "classification", scale_sensitive=False),
    EstimatorSpec(tree.DecisionTreeClassifier, "classification", scale_sensitive=False),
    EstimatorSpec(neighbors.KNeighborsClassifier, "classification", scale_sensitive=True),
    EstimatorSpec(naive_bayes.GaussianNB, "classification", scale_sensitive=False),
    EstimatorSpec(svm.SVC, "classification", scale_sensitive=True, fixed={"probability": True}),
    EstimatorSpec(neural_network.MLPClassifier, "classification", scale_sensitive=True),
    EstimatorSpec(linear_model.LinearRegression, "regression", scale_sensitive=True),
    EstimatorSpec(linear_model.Ridge, "regression", scale_sensitive=True),
    EstimatorSpec(linear_model.Lasso, "regression", scale_sensitive=True),
    EstimatorSpec(linear_model.ElasticNet, "regression", scale_sensitive=True),
    EstimatorSpec(linear_model.SGDRegressor, "regression", scale_sensitive=True),
    EstimatorSpec(ensemble.RandomForestRegressor, "regression", scale_sensitive=False),
    EstimatorSpec(ensemble.ExtraTreesRegressor, "regression", scale_sensitive=False),
    EstimatorSpec(ensemble.GradientBoostingRegressor, "regression", scale_sensitive=False),
    EstimatorSpec(tree.DecisionTreeRegressor, "regression", scale_sensitive=False),
    EstimatorSpec(neighbors.KNeighborsRegressor, "regression", scale_sensitive=True),
    EstimatorSpec(svm.SVR, "regression", scale_sensitive=True),
    EstimatorSpec(svm.LinearSVR, "regression", scale_sensitive=True),
    EstimatorSpec(neural_network.MLPRegressor, "regression", scale_sensitive=True),
)

ESTIMATORS: Mapping[str, EstimatorSpec] = {spec.name: spec for spec in _SPECS}


def resolve_estimator(name: str) -> EstimatorSpec:
    """The allowed estimator called ``name``, or a TrainingError listing the allowed ones."""
    spec = ESTIMATORS.get(name)
    if spec is None:
        raise TrainingError(
            Reason.ESTIMATOR_NOT_ALLOWED,
            f"estimator {name!r} is not allowed; choose one of {', '.join(sorted(ESTIMATORS))}",
        )
    return spec


def build_estimator(
    spec: EstimatorSpec, params: Mapping[str, Any], seed: int
) -> tuple[BaseEstimator, dict[str, Any]]:
    """A configured, unfitted estimator and every parameter it was given.

    Unknown parameters, parameters the trainer fixes, and values the estimator
    rejects (wrong type, out of range) each raise a TrainingError naming the
    parameter. ``random_state`` defaults to the seed.
    """
    accepted = spec.factory().get_params(deep=False)
    for key in params:
        if key not in accepted:
            raise TrainingError(
                Reason.INVALID_PARAMETER,
                f"{spec.name} has no parameter {key!r}; it takes {', '.join(sorted(accepted))}",
            )
        if key in spec.fixed and params[key] != spec.fixed[key]:
            raise TrainingError(
                Reason.INVALID_PARAMETER,
                f"{spec.name}'s parameter {key!r} must stay {spec.fixed[key]!r}"
                " (the trainer needs it to export probabilities)",
            )
    given = dict(params) | dict(spec.fixed)
    if "random_state" in accepted and given.get("random_state") is None:
        given["random_state"] = seed
    estimator = spec.factory(**given)
    try:
        # scikit-learn checks types and ranges at fit time; check now, before loading any data.
        estimator._validate_params()
    except InvalidParameterError as error:
        raise TrainingError(Reason.INVALID_PARAMETER, str(error)) from error
    return estimator, dict(sorted(given.items()))
