"""Real scikit-learn models exported to ONNX with their model cards, for the server's tests.

Stands in for the trainer (``mlops train``) until it lands: fits a real
estimator, exports it with skl2onnx, records the reference bins with the shared
statistics functions, and writes ``model.onnx`` and ``model-card.json``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from skl2onnx import to_onnx
from sklearn.base import BaseEstimator

from mlops_operator.distributions import bin_counts
from mlops_operator.modelcard import (
    MODEL_CARD_FILE,
    MODEL_FILE,
    Artifact,
    Feature,
    Lineage,
    ModelCard,
    NumericReference,
    Parity,
    PredictionReference,
    Signature,
    TensorSpec,
)

__all__ = ["export_model"]


def _reference(values: npt.NDArray[Any]) -> NumericReference:
    finite = values[~np.isnan(values)]
    edges = sorted(set(np.quantile(finite, np.linspace(0.1, 0.9, 9)).tolist()))
    counts = bin_counts(finite, edges)
    return NumericReference(edges=edges, proportions=(counts / counts.sum()).tolist())


def export_model(
    estimator: BaseEstimator,
    x: npt.NDArray[Any],
    y: npt.NDArray[Any],
    directory: Path,
    *,
    name: str,
    feature_names: list[str],
    allow_non_finite: bool = False,
) -> ModelCard:
    """Fit ``estimator`` on ``x, y``, export it to ``directory`` and return its card."""
    x = x.astype(np.float32)
    estimator.fit(x, y)  # type: ignore[attr-defined]
    classification = hasattr(estimator, "predict_proba")
    options = {id(estimator): {"zipmap": False}} if classification else None
    onnx_model = to_onnx(estimator, x[:1], options=options, target_opset=17)
    data = onnx_model.SerializeToString()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(data)
    sample = x[:20]
    predictions = estimator.predict(sample)  # type: ignore[attr-defined]
    train_predictions = estimator.predict(x)  # type: ignore[attr-defined]
    classes = [str(c) for c in estimator.classes_] if classification else None  # type: ignore[attr-defined]
    if classification:
        assert classes is not None
        outputs = [
            TensorSpec(name="label", dtype="int64", shape=[None]),
            TensorSpec(name="probabilities", dtype="float32", shape=[None, len(classes)]),
        ]
        counts = [float(np.sum(train_predictions == c)) for c in estimator.classes_]  # type: ignore[attr-defined]
        prediction_reference = PredictionReference(
            classes=classes, proportions=[c / sum(counts) for c in counts]
        )
        sample_outputs: list[str | float] = [str(p) for p in predictions]
        probabilities = estimator.predict_proba(sample).tolist()  # type: ignore[attr-defined]
    else:
        outputs = [TensorSpec(name="variable", dtype="float32", shape=[None, 1])]
        reference = _reference(train_predictions.astype(np.float64))
        prediction_reference = PredictionReference(
            edges=reference.edges, proportions=reference.proportions
        )
        sample_outputs = [float(p) for p in predictions]
        probabilities = None
    card = ModelCard(
        model_name=name,
        created_at="2026-11-26T00:00:00Z",
        signature=Signature(
            task="classification" if classification else "regression",
            inputs=[TensorSpec(name="X", dtype="float32", shape=[None, x.shape[1]])],
            outputs=outputs,
            features=[
                Feature(name=f, kind="numeric", input="X", index=i)
                for i, f in enumerate(feature_names)
            ],
            classes=classes,
            allow_non_finite=allow_non_finite,
        ),
        metrics={},
        lineage=Lineage(
            dataset_uri="sklearn://test",
            dataset_sha256="0" * 64,
            dataset_rows=len(x),
            dataset_columns=x.shape[1] + 1,
            target="target",
            estimator=type(estimator).__name__,
            params={},
            seed=0,
            test_size=0.0,
            code_version="test",
        ),
        artifact=Artifact(
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            opset=17,
        ),
        parity=Parity(
            rows_checked=len(sample),
            max_abs_diff=0.0,
            labels_identical=True,
            tolerance=1e-4,
            sample_inputs=[
                [None if np.isnan(v) else float(v) for v in row] for row in sample.tolist()
            ],
            sample_outputs=sample_outputs,
            sample_probabilities=probabilities,
        ),
        reference={f: _reference(x[:, i].astype(np.float64)) for i, f in enumerate(feature_names)},
        prediction_reference=prediction_reference,
    )
    (directory / MODEL_CARD_FILE).write_text(card.model_dump_json(indent=2))
    return card
