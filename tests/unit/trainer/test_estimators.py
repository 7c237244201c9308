"""The allow-list: every estimator on it trains, exports and passes parity; parameters are checked.

Aspects: each allowed estimator on a bundled dataset of its task (small
settings keep this quick); the seed becomes ``random_state`` unless given;
parameters the trainer fixes cannot be changed; checks happen before any data
is read.
"""

from __future__ import annotations

import pytest

from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.estimators import ESTIMATORS, build_estimator, resolve_estimator
from mlops_operator.trainer.run import train
from tests.unit.trainer.conftest import MakeSettings

_QUICK = {"n_estimators": 10, "hidden_layer_sizes": [16]}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_allowed_estimator_exports_with_parity(
    make_settings: MakeSettings, name: str
) -> None:
    spec = ESTIMATORS[name]
    accepted = spec.factory().get_params(deep=False)
    params = {key: value for key, value in _QUICK.items() if key in accepted}
    dataset = "sklearn://breast_cancer" if spec.task == "classification" else "sklearn://diabetes"

    card = train(make_settings(dataset_uri=dataset, estimator=name, params=params)).card

    assert card.lineage.estimator == name
    assert card.parity.labels_identical
    assert card.parity.max_abs_diff <= card.parity.tolerance
    assert card.lineage.scaling == ("standard" if spec.scale_sensitive else "none")


def test_the_seed_is_the_default_random_state() -> None:
    spec = resolve_estimator("RandomForestClassifier")

    _, seeded = build_estimator(spec, {}, seed=42)
    _, given = build_estimator(spec, {"random_state": 3}, seed=42)

    assert seeded["random_state"] == 42
    assert given["random_state"] == 3


def test_a_parameter_the_trainer_needs_cannot_be_changed() -> None:
    with pytest.raises(
        TrainingError, match=r"SVC's parameter 'probability' must stay True"
    ) as caught:
        build_estimator(resolve_estimator("SVC"), {"probability": False}, seed=0)

    assert caught.value.reason == Reason.INVALID_PARAMETER


def test_parameters_are_checked_before_the_data_is_read(make_settings: MakeSettings) -> None:
    settings = make_settings(
        dataset_uri="/nonexistent/data.csv",
        params={"max_depth": -1},
        estimator="DecisionTreeClassifier",
    )

    with pytest.raises(TrainingError) as caught:
        train(settings)

    assert caught.value.reason == Reason.INVALID_PARAMETER
    assert "'max_depth' parameter of DecisionTreeClassifier must be" in caught.value.message
