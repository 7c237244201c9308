"""One training, start to finish, and how its outcome is reported.

Order matters for the person waiting: the estimator and its parameters are
checked before any data is read, the data before anything is fitted, and the
model card is written last, so a folder with a card always holds a complete,
checked model.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_operator.buildinfo import code_version
from mlops_operator.modelcard import (
    MODEL_CARD_FILE,
    MODEL_FILE,
    Artifact,
    Lineage,
    ModelCard,
    SourceRecord,
)
from mlops_operator.storage import ArtifactStore, StorageError, join_key, sha256_bytes
from mlops_operator.trainer.calibration import calibration_of
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.estimators import build_estimator, resolve_estimator
from mlops_operator.trainer.evaluation import cross_validation_metrics, held_out_metrics
from mlops_operator.trainer.export import check_parity, export_onnx, signature_of
from mlops_operator.trainer.features import prepare
from mlops_operator.trainer.holdout import split
from mlops_operator.trainer.pipeline import build_pipeline, model_input
from mlops_operator.trainer.reference import feature_references, prediction_reference
from mlops_operator.trainer.result import (
    SignatureDigest,
    TrainingFailed,
    TrainingSucceeded,
    render_termination_message,
)
from mlops_operator.trainer.settings import TrainerSettings
from mlops_operator.trainer.snapshot import write_snapshot
from mlops_operator.trainer.sources import LoadedSource, combine, load_source

__all__ = ["TrainingOutcome", "report", "train"]

_log = logging.getLogger(__name__)
_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow")


@dataclass
class TrainingOutcome:
    """A finished training: its short result, its model card, and how long each phase took."""

    result: TrainingSucceeded
    card: ModelCard
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _phase(seconds: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start
    _log.info("%s: %.3f s", name, seconds[name])


def train(settings: TrainerSettings) -> TrainingOutcome:
    """Train, evaluate, export and check one model as ``settings`` say; raise TrainingError if not."""
    seconds: dict[str, float] = {}
    spec = resolve_estimator(settings.estimator)
    estimator, params = build_estimator(spec, settings.params, settings.seed)
    store = _open_store(settings.store_uri)

    with _phase(seconds, "load"):
        loaded = [load_source(s, seed=settings.seed) for s in settings.data_sources()]
        frame, dataset_sha256 = combine(loaded)
    for part in loaded:
        _log.info(
            "source %s: %d rows (%d used), sha256 %s",
            part.lineage_uri,
            len(part.frame),
            len(part.used),
            part.sha256,
        )
    _log.info("training table: %d rows, %d columns, sha256 %s", *frame.shape, dataset_sha256)
    sources = (
        []
        if len(loaded) == 1 and loaded[0].source.sample >= 1.0
        else [
            SourceRecord(
                uri=part.lineage_uri,
                sha256=part.sha256,
                rows=len(part.frame),
                sample=part.source.sample,
                used_rows=len(part.used),
                key=join_key("datasets", part.sha256) if store else None,
            )
            for part in loaded
        ]
    )
    table = prepare(
        frame,
        target=settings.target,
        features=settings.features,
        categorical=settings.categorical,
        task=spec.task,
        imputation=settings.imputation != "none",
    )
    x_train, x_test, y_train, y_test = split(
        table,
        spec.task,
        test_size=settings.test_size,
        seed=settings.seed,
        cv_folds=settings.cv_folds,
    )
    scale = settings.scaling == "standard" or (settings.scaling == "auto" and spec.scale_sensitive)
    imputation = settings.imputation
    if imputation == "auto":
        # Fitting an imputer costs as much as fitting a linear model on wide data: only when needed.
        imputation = "median" if table.has_missing else "none"
    pipeline = build_pipeline(
        estimator,
        table,
        scale=scale,
        imputation=imputation,
        categorical_imputation=settings.categorical_imputation,
    )

    with _phase(seconds, "fit"):
        try:
            pipeline.fit(model_input(table, x_train), y_train)
        except ValueError as error:
            raise TrainingError(
                Reason.FIT_FAILED, f"{spec.name} could not be fitted: {str(error).splitlines()[0]}"
            ) from error
    with _phase(seconds, "evaluate"):
        metrics = held_out_metrics(pipeline, table, x_test, y_test, spec.task)
        if settings.cv_folds:
            metrics |= cross_validation_metrics(
                pipeline,
                table,
                x_train,
                y_train,
                spec.task,
                folds=settings.cv_folds,
                seed=settings.seed,
            )
    classes = [str(c) for c in pipeline.classes_] if spec.task == "classification" else None
    calibration = None
    if classes is not None:
        with _phase(seconds, "calibrate"):
            calibration = calibration_of(
                pipeline, table, (x_train, x_test, y_train, y_test), seed=settings.seed
            )
    with _phase(seconds, "export"):
        model = export_onnx(pipeline, table, spec.task)
        onnx_bytes = model.SerializeToString()
        parity = check_parity(
            model,
            pipeline,
            table,
            x_test,
            task=spec.task,
            target_scale=float(np.abs(y_train).max()) if spec.task == "regression" else 1.0,
            sample_rows=settings.parity_sample_rows,
        )
    with _phase(seconds, "reference"):
        references = feature_references(table, x_train)
        predictions = prediction_reference(
            pipeline.predict(model_input(table, x_train)), spec.task, classes
        )

    sha256 = sha256_bytes(onnx_bytes)
    card = ModelCard(
        model_name=settings.model_name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        signature=signature_of(model, table, spec.task, classes, imputes=imputation != "none"),
        metrics=metrics,
        lineage=Lineage(
            dataset_uri=" + ".join(part.lineage_uri for part in loaded),
            dataset_sha256=dataset_sha256,
            dataset_rows=frame.shape[0],
            dataset_columns=frame.shape[1],
            dataset_key=join_key("datasets", dataset_sha256) if store else None,
            sources=sources,
            target=settings.target,
            categorical=table.categorical,
            estimator=spec.name,
            params=params,
            seed=settings.seed,
            test_size=settings.test_size,
            cv_folds=settings.cv_folds,
            scaling="standard" if scale else "none",
            imputation=imputation,
            categorical_imputation=settings.categorical_imputation if table.categorical else None,
            image=settings.image,
            code_version=code_version(),
            training_job=settings.training_job,
            libraries=_library_versions(),
        ),
        artifact=Artifact(
            sha256=sha256, size_bytes=len(onnx_bytes), opset=_default_opset(model.opset_import)
        ),
        parity=parity,
        reference=references,
        prediction_reference=predictions,
        calibration=calibration,
    )
    with _phase(seconds, "write"):
        result = _write(settings, store, frame, card, onnx_bytes, loaded)
    return TrainingOutcome(result=result, card=card, seconds=seconds)


def _open_store(uri: str | None) -> ArtifactStore | None:
    if uri is None:
        return None
    try:
        return ArtifactStore(uri)
    except StorageError as error:
        raise TrainingError(Reason.STORAGE_FAILED, str(error)) from error


def _write(
    settings: TrainerSettings,
    store: ArtifactStore | None,
    frame: pd.DataFrame,
    card: ModelCard,
    onnx_bytes: bytes,
    loaded: list[LoadedSource],
) -> TrainingSucceeded:
    card_bytes = card.model_dump_json(indent=2).encode()
    sha256 = card.artifact.sha256
    try:
        output = ArtifactStore(str(settings.output_dir))
        output.put_bytes(MODEL_FILE, onnx_bytes, sha256=sha256)
        output.put_bytes(MODEL_CARD_FILE, card_bytes)
        model_uri, model_key = output.root_uri, None
        if store is not None:
            write_snapshot(frame, card.lineage.dataset_sha256, store)
            for part in loaded if card.lineage.sources else ():
                # Each source's own rows, by its own sha256: what `mlops reproduce` reads back.
                write_snapshot(part.frame, part.sha256, store)
            model_key = join_key("models", settings.model_name, sha256)
            store.put_bytes(join_key(model_key, MODEL_FILE), onnx_bytes, sha256=sha256)
            store.put_bytes(join_key(model_key, MODEL_CARD_FILE), card_bytes)
            model_uri = store.uri(model_key)
    except StorageError as error:
        raise TrainingError(Reason.STORAGE_FAILED, str(error)) from error
    return TrainingSucceeded(
        model_name=settings.model_name,
        model_uri=model_uri,
        model_key=model_key,
        sha256=sha256,
        size_bytes=card.artifact.size_bytes,
        opset=card.artifact.opset,
        dataset_sha256=card.lineage.dataset_sha256,
        dataset_rows=card.lineage.dataset_rows,
        dataset_columns=card.lineage.dataset_columns,
        dataset_sources=[(r.sha256, r.rows, r.used_rows) for r in card.lineage.sources],
        metrics=card.metrics,
        code_version=card.lineage.code_version,
        libraries=card.lineage.libraries,
        signature=SignatureDigest.of(card.signature),
    )


def _default_opset(imports: Iterable[Any]) -> int:
    for entry in imports:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise TrainingError(Reason.EXPORT_FAILED, "the ONNX model imports no default-domain opset")


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        versions[name] = metadata.version(name)
    return versions


def report(settings: TrainerSettings) -> int:
    """Run :func:`train`, print and record the outcome; return the process exit code.

    0: a model was written. 1: the training failed for the stated reason.
    70: an unexpected error (a bug), reported as ``InternalError``.
    """
    outcome: TrainingSucceeded | TrainingFailed
    try:
        outcome = train(settings).result
        code = 0
    except TrainingError as error:
        outcome = TrainingFailed(reason=error.reason, message=error.message)
        code = 1
    except Exception as error:  # noqa: BLE001  # a bug must still end with a termination message
        _log.exception("training failed unexpectedly")
        outcome = TrainingFailed(reason=Reason.INTERNAL_ERROR, message=f"internal error: {error!r}")
        code = 70
    message = render_termination_message(outcome)
    if settings.termination_message_path is not None:
        _write_termination_message(settings.termination_message_path, message)
    if isinstance(outcome, TrainingFailed):
        print(f"error: {outcome.message}", file=sys.stderr)
    print(message)
    return code


def _write_termination_message(path: Path, message: str) -> None:
    try:
        path.write_text(message)
    except OSError as error:
        _log.warning("could not write the termination message to %s: %s", path, error)
