"""The trainer's allow-list of estimators, and the checking of their parameters.

The list is the estimator catalogue (`mlops_operator.api.estimators.CATALOGUE`),
the same one the CRD's enum is generated from: each entry's class is imported
from its scikit-learn module here, and nowhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

from mlops_operator.api.estimators import CATALOGUE, EstimatorEntry
from mlops_operator.modelcard import Task
from mlops_operator.trainer.errors import Reason, TrainingError

__all__ = ["ESTIMATORS", "EstimatorSpec", "build_estimator", "resolve_estimator"]


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


def _spec(entry: EstimatorEntry) -> EstimatorSpec:
    factory = getattr(importlib.import_module(entry.module), entry.name)
    task: Task = "classification" if entry.task == "classification" else "regression"
    return EstimatorSpec(factory, task, entry.scale_sensitive, dict(entry.fixed))


ESTIMATORS: Mapping[str, EstimatorSpec] = {entry.name: _spec(entry) for entry in CATALOGUE}


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
