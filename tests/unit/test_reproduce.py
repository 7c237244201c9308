"""`mlops reproduce`: the recipe read back from a ModelVersion, and the comparison.

Aspects: the lineage gives back the trainer settings the TrainingJob produced
(every field that shapes the model); a replacement dataset URI is used; a
version without lineage is refused; the comparison flags a different ONNX
file, data version or metric, tolerates last-bit differences, and lists
metrics present on one side only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.modelversion import ModelVersion
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.cli.reproduce import compare, recipe_of
from mlops_operator.resources.common import ArtifactStorage
from mlops_operator.resources.trainingjob import build_model_version, trainer_settings
from mlops_operator.trainer.result import SignatureDigest, TrainingSucceeded

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "manifests" / "examples" / "iris" / "trainingjob.yaml"
)
STORAGE = ArtifactStorage(claim="mlops-artifacts")
RESULT = TrainingSucceeded(
    model_name="iris",
    model_uri="file:///x",
    model_key="models/iris/" + "a" * 64,
    sha256="a" * 64,
    size_bytes=10,
    opset=17,
    dataset_sha256="b" * 64,
    dataset_rows=150,
    dataset_columns=5,
    metrics={"accuracy": 0.9, "log_loss": 0.2095967341124093},
    code_version="0.1.0",
    signature=SignatureDigest(
        task="classification",
        features=["a", "b"],
        categorical=["b"],
        inputs=[("a", "float32", [-1, 1]), ("b", "string", [-1, 1])],
        outputs=[("label", "int64", [-1])],
    ),
)


def _training(**spec: Any) -> TrainingJob:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] |= {"namespace": "ml", "uid": "uid-1"}
    doc["spec"] |= spec
    return TrainingJob.model_validate(doc)


def _version(training: TrainingJob) -> ModelVersion:
    manifest = build_model_version(
        training, RESULT, name="iris-v1", version=1, storage=STORAGE, image="img"
    )
    return ModelVersion.model_validate(manifest)


def _shaping(training: TrainingJob) -> dict[str, Any]:
    """The trainer settings that shape the model (not where it is written, nor by whom)."""
    settings = trainer_settings(training, STORAGE, "img").model_dump()
    return {k: v for k, v in settings.items() if k not in ("training_job",)}


def test_the_lineage_gives_back_the_trainer_settings_of_the_training_job() -> None:
    training = _training(
        features=["a", "b"],
        categoricalFeatures=["b"],
        cvFolds=4,
        preprocessing={"scaleNumeric": False, "impute": {"numeric": "mean"}},
    )
    assert _shaping(recipe_of(_version(training))) == _shaping(training)


def test_a_replacement_dataset_is_used() -> None:
    recipe = recipe_of(_version(_training()), dataset_uri="file:///copy/iris.csv")
    assert recipe.spec.dataset.uri == "file:///copy/iris.csv"


def test_a_version_without_lineage_cannot_be_reproduced() -> None:
    version = _version(_training())
    version.spec.lineage = None
    with pytest.raises(ValueError, match="has no lineage"):
        recipe_of(version)


def test_identical_results_match_and_last_bits_are_tolerated() -> None:
    version = _version(_training())
    rerun = RESULT.model_copy(
        update={"metrics": {"accuracy": 0.9, "log_loss": 0.20959673411240903}}
    )
    assert all(check.matches for check in compare(version, rerun))


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"sha256": "c" * 64}, "onnx sha256"),
        ({"dataset_sha256": "c" * 64}, "data sha256"),
        ({"metrics": {"accuracy": 0.91, "log_loss": 0.2095967341124093}}, "accuracy"),
        ({"metrics": {"accuracy": 0.9}}, "log_loss"),
    ],
)
def test_each_difference_is_flagged(change: dict[str, Any], differs: str) -> None:
    checks = compare(_version(_training()), RESULT.model_copy(update=change))
    assert [c.name for c in checks if not c.matches] == [differs]
