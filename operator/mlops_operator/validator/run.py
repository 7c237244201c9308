"""The checks, in order: checksum, artifact (size and opset), load, signature, parity, then
evaluation beside the champions.

Each check is recorded whether it passes or not; a failed check stops the ones
that depend on it (a model that does not load is not evaluated). Evaluation
re-creates the candidate's held-out split from the dataset snapshot in the
store (same seed, same size) and runs the candidate and every champion on those
rows with onnxruntime, so the comparison gate compares like with like.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pandas as pd

from mlops_operator.modelcard import ModelCard
from mlops_operator.serving.errors import ArtifactError
from mlops_operator.serving.loading import load_model, read_artifact
from mlops_operator.serving.model import NUMPY_DTYPES, ServedModel
from mlops_operator.storage import ArtifactStore, StorageError, join_key
from mlops_operator.trainer.errors import TrainingError
from mlops_operator.trainer.features import prepare
from mlops_operator.trainer.holdout import split
from mlops_operator.trainer.scoring import scores
from mlops_operator.trainer.snapshot import DATASET_SNAPSHOT_FILE
from mlops_operator.validator.report import Check, CheckName, ValidationReport
from mlops_operator.validator.settings import ValidatorSettings

__all__ = ["feeds", "predict", "validate"]


def feeds(card: ModelCard, rows: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
    """The ONNX inputs for `rows` (columns named as the card's features), per the card's signature."""
    result: dict[str, npt.NDArray[Any]] = {}
    for spec in card.signature.inputs:
        features = sorted(
            (f for f in card.signature.features if f.input == spec.name), key=lambda f: f.index
        )
        dtype = NUMPY_DTYPES[spec.dtype]
        columns = []
        for feature in features:
            column = rows[feature.name]
            if feature.kind == "categorical":
                columns.append(column.map(lambda v: "" if pd.isna(v) else str(v)).to_numpy(object))
            else:
                columns.append(pd.to_numeric(column).to_numpy(np.float64))
        result[spec.name] = np.column_stack(columns).astype(dtype)
    return result


def predict(model: ServedModel, rows: pd.DataFrame) -> tuple[npt.NDArray[Any], Any]:
    """Labels or predictions, and class probabilities (None for regression), for `rows`."""
    outputs = model.run(feeds(model.card, rows))
    if model.is_classifier:
        return np.asarray(outputs[0]).astype(str).reshape(-1), np.asarray(outputs[1])
    return np.asarray(outputs[0]).reshape(-1).astype(np.float64), None


def _checksum(settings: ValidatorSettings) -> tuple[Check, bytes]:
    # The bytes must hash to the digest the ModelVersion registers (handed in through the pod
    # spec), and the card must say the same: a card that agrees only with itself proves nothing.
    try:
        card, data = read_artifact(settings.model_uri, settings.expected_sha256)
    except ArtifactError as error:
        return Check(name=CheckName.CHECKSUM, passed=False, message=str(error)), b""
    if card.artifact.sha256 != settings.expected_sha256:
        return Check(
            name=CheckName.CHECKSUM,
            passed=False,
            message=f"the artifact's sha256 is {card.artifact.sha256} but the ModelVersion"
            f" records {settings.expected_sha256}",
        ), data
    message = f"sha256 {card.artifact.sha256}"
    return Check(name=CheckName.CHECKSUM, passed=True, message=message), data


def _default_opset(data: bytes) -> int | None:
    for entry in onnx.load_model_from_string(data).opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def _artifact(settings: ValidatorSettings, data: bytes) -> Check:
    """The file's size and its ONNX opset are the ones the ModelVersion records."""
    problems, found = [], [f"{len(data)} bytes"]
    if settings.expected_size_bytes is not None and len(data) != settings.expected_size_bytes:
        problems.append(
            f"model.onnx has {len(data)} bytes but the ModelVersion records"
            f" {settings.expected_size_bytes}"
        )
    try:
        opset = _default_opset(data)
    except Exception as error:  # noqa: BLE001  # onnx raises untyped errors on a broken file
        return Check(name=CheckName.ARTIFACT, passed=False, message=f"not ONNX: {error}")
    found.append(f"opset {opset}")
    if settings.expected_opset is not None and opset != settings.expected_opset:
        problems.append(
            f"model.onnx imports opset {opset} but the ModelVersion records"
            f" {settings.expected_opset}"
        )
    if problems:
        return Check(name=CheckName.ARTIFACT, passed=False, message="; ".join(problems))
    return Check(name=CheckName.ARTIFACT, passed=True, message=", ".join(found) + " as recorded")


def _signature(settings: ValidatorSettings, card: ModelCard) -> Check:
    problems = []
    names = [f.name for f in card.signature.features]
    if settings.expected_features is not None and settings.expected_features != names:
        problems.append(
            f"features are {names} in the model card but {settings.expected_features}"
            " in the ModelVersion"
        )
    if settings.expected_classes is not None and settings.expected_classes != (
        card.signature.classes or []
    ):
        problems.append(
            f"classes are {card.signature.classes} in the model card but"
            f" {settings.expected_classes} in the ModelVersion"
        )
    if problems:
        return Check(name=CheckName.SIGNATURE, passed=False, message="; ".join(problems))
    return Check(
        name=CheckName.SIGNATURE,
        passed=True,
        message=f"{len(names)} features, ONNX inputs and outputs as in the model card",
    )


def _parity(model: ServedModel) -> Check:
    parity = model.card.parity
    names = [f.name for f in model.card.signature.features]
    rows = pd.DataFrame(
        [[np.nan if v is None else v for v in row] for row in parity.sample_inputs], columns=names
    )
    if rows.empty:
        return Check(name=CheckName.PARITY, passed=False, message="the card has no parity sample")
    labels, probabilities = predict(model, rows)
    if model.is_classifier:
        differing = int((labels != np.asarray(parity.sample_outputs, dtype=str)).sum())
        expected = np.asarray(parity.sample_probabilities or [], dtype=np.float64)
        diff = float(np.abs(probabilities - expected).max()) if expected.size else np.inf
    else:
        differing = 0
        diff = float(np.abs(labels - np.asarray(parity.sample_outputs, dtype=np.float64)).max())
    passed = differing == 0 and diff <= parity.tolerance
    return Check(
        name=CheckName.PARITY,
        passed=passed,
        message=f"{len(rows)} sample rows: {differing} labels differ, largest difference"
        f" {diff:.3g} (allowed {parity.tolerance:.3g})",
    )


def _held_out(settings: ValidatorSettings, card: ModelCard) -> tuple[pd.DataFrame, Any]:
    """The candidate's held-out rows (raw columns) and their targets, re-created from the snapshot."""
    lineage = card.lineage
    if settings.store_uri is None or lineage.dataset_key is None:
        raise ValueError("no dataset snapshot is recorded (or no store is mounted) to evaluate on")
    store = ArtifactStore(settings.store_uri)
    data = store.read_bytes(join_key(lineage.dataset_key, DATASET_SNAPSHOT_FILE))
    frame = pd.read_parquet(io.BytesIO(data))
    table = prepare(
        frame,
        target=lineage.target,
        features=[f.name for f in card.signature.features],
        categorical=lineage.categorical,
        task=card.signature.task,
        imputation=lineage.imputation != "none",
    )
    _, x_test, _, y_test = split(
        table, card.signature.task, test_size=lineage.test_size, seed=lineage.seed, cv_folds=0
    )
    return frame.loc[x_test.index], y_test


def _score(model: ServedModel, rows: pd.DataFrame, y_true: npt.NDArray[Any]) -> dict[str, float]:
    predicted, probabilities = predict(model, rows)
    if model.is_classifier:
        classes = np.asarray(model.card.signature.classes or [], dtype=str)
        return scores("classification", y_true.astype(str), predicted, probabilities, classes)
    return scores("regression", y_true.astype(np.float64), predicted)


def _evaluate(
    settings: ValidatorSettings, model: ServedModel
) -> tuple[Check, int, dict[str, float], dict[str, dict[str, float]]]:
    try:
        rows, y_true = _held_out(settings, model.card)
        candidate = _score(model, rows, y_true)
    except (ValueError, KeyError, StorageError, TrainingError, OSError) as error:
        message = f"cannot evaluate on the held-out rows: {error}"
        return Check(name=CheckName.EVALUATION, passed=False, message=message), 0, {}, {}
    champions: dict[str, dict[str, float]] = {}
    failures = []
    for name, uri in sorted(settings.champions.items()):
        try:
            champion = load_model(uri, threads=1, name=name)
            champions[name] = _score(champion, rows, y_true)
        except (ArtifactError, ValueError, KeyError, OSError) as error:
            failures.append(f"champion {name} could not be evaluated: {error}")
    message = f"{len(rows)} held-out rows; candidate and {len(champions)} champion(s) evaluated"
    check = Check(
        name=CheckName.EVALUATION,
        passed=not failures,
        message="; ".join(failures) if failures else message,
    )
    return check, len(rows), candidate, champions


def validate(settings: ValidatorSettings) -> ValidationReport:
    """Run every check on the candidate; the report says what passed and what was measured."""
    checksum, data = _checksum(settings)
    checks: list[Check] = [checksum]
    if not checksum.passed:
        return ValidationReport(checks=checks)
    checks.append(_artifact(settings, data))
    if not checks[-1].passed:
        return ValidationReport(checks=checks)
    try:
        model = load_model(settings.model_uri, threads=1, expected_sha256=settings.expected_sha256)
    except ArtifactError as error:
        return ValidationReport(
            checks=[*checks, Check(name=CheckName.LOAD, passed=False, message=str(error))]
        )
    checks.append(Check(name=CheckName.LOAD, passed=True, message="loads in onnxruntime"))
    checks.append(_signature(settings, model.card))
    checks.append(_parity(model))
    if not _all_passed(checks):
        return ValidationReport(checks=checks)
    evaluation, rows, candidate, champions = _evaluate(settings, model)
    checks.append(evaluation)
    return ValidationReport(
        checks=checks, rows=rows, candidate_metrics=candidate, champion_metrics=champions
    )


def _all_passed(checks: Sequence[Check]) -> bool:
    return all(c.passed for c in checks)
