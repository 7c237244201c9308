"""The container interface and the laptop command.

Aspects: settings survive the round trip through the pod's environment; the pod
entry point reports invalid settings in its termination message; ``mlops
train`` maps its flags (``--param`` values included) onto the same settings
and reports flag errors by flag name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_operator.cli import main as mlops
from mlops_operator.modelcard import MODEL_CARD_FILE, ModelCard
from mlops_operator.trainer.commands import parse_param
from mlops_operator.trainer.result import TrainingFailed, parse_termination_message
from mlops_operator.trainer.settings import TrainerSettings
from tests.unit.trainer.conftest import MakeSettings


def test_settings_round_trip_through_the_environment(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        features=["sepal length (cm)", "petal width (cm)"],
        params={"C": 0.5, "class_weight": "balanced", "l1_ratio": None},
        cv_folds=3,
        training_job="team-a/iris-1",
    )
    env = settings.to_env()
    assert env["MLOPS_PARAMS"] == '{"C": 0.5, "class_weight": "balanced", "l1_ratio": null}'
    assert env["MLOPS_TARGET"] == "target"
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert TrainerSettings() == settings  # type: ignore[call-arg]


def test_the_pod_entry_point_reports_invalid_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env |= {
        "MLOPS_DATASET_URI": "sklearn://iris",
        "MLOPS_ESTIMATOR": "LogisticRegression",
        "MLOPS_TEST_SIZE": "1.5",
        "MLOPS_TERMINATION_MESSAGE_PATH": str(tmp_path / "termination-log"),
    }

    done = subprocess.run(
        [sys.executable, "-m", "mlops_operator.trainer"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    result = parse_termination_message((tmp_path / "termination-log").read_text())
    assert isinstance(result, TrainingFailed)
    assert result.reason == "InvalidSettings"
    assert result.message == (
        "invalid settings: MLOPS_TARGET: Field required; MLOPS_TEST_SIZE: Input should be less than 1"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_depth=3", ("max_depth", 3)),
        ("C=0.5", ("C", 0.5)),
        ("class_weight=balanced", ("class_weight", "balanced")),
        ("hidden_layer_sizes=[64, 32]", ("hidden_layer_sizes", [64, 32])),
        ("max_depth=None", ("max_depth", None)),
        ("fit_intercept=false", ("fit_intercept", False)),
        ("fit_intercept=True", ("fit_intercept", True)),
        ("solver=", ("solver", "")),
    ],
)
def test_param_values_are_json_or_text(text: str, expected: tuple[str, object]) -> None:
    assert parse_param(text) == expected


def test_mlops_train_on_a_laptop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("MLOPS_")]:
        monkeypatch.delenv(name)

    code = mlops(
        [
            "train",
            "--dataset",
            "sklearn://wine",
            "--target",
            "target",
            "--estimator",
            "RandomForestClassifier",
            "--param",
            "n_estimators=10",
            "--param",
            "max_depth=4",
            "--features",
            "alcohol,malic_acid,ash,color_intensity",
            "--seed",
            "7",
            "--output",
            str(tmp_path / "wine"),
            "--store",
            str(tmp_path / "store"),
            "--termination-log",
            str(tmp_path / "termination-log"),
        ]
    )

    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "termination-log").read_text())
    card = ModelCard.model_validate_json((tmp_path / "wine" / MODEL_CARD_FILE).read_bytes())
    assert card.lineage.params["max_depth"] == 4
    assert card.lineage.params["random_state"] == 7
    assert [f.name for f in card.signature.features] == [
        "alcohol",
        "malic_acid",
        "ash",
        "color_intensity",
    ]
    assert printed["model_key"] == f"models/model/{card.artifact.sha256}"


def test_mlops_train_names_the_bad_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = mlops(
        [
            "train",
            "--dataset",
            "sklearn://iris",
            "--target",
            "target",
            "--estimator",
            "LogisticRegression",
            "--cv-folds",
            "1",
            "--model-name",
            "Bad_Name",
            "--output",
            str(tmp_path),
        ]
    )

    assert code == 2
    err = capsys.readouterr().err
    assert "--model-name: String should match pattern" in err
    assert not list(tmp_path.iterdir())
