"""ONNX export, the model's signature, and the ONNX-vs-scikit-learn parity check.

Parity is checked on every held-out row: the ONNX labels must equal
scikit-learn's and the probabilities must be within
:data:`PROBABILITY_TOLERANCE`; a regression's outputs must be within
:data:`REGRESSION_RELATIVE_TOLERANCE` times the largest absolute training
target (at least 1), in target units. ONNX computes in float32, scikit-learn in
float64; the tolerances leave room for that and nothing more.

The export is deterministic: skl2onnx names nodes from counters, and the model
carries no timestamp, so the same fitted pipeline gives the same bytes.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from mlops_operator.modelcard import Feature, Parity, Signature, Task, TensorSpec
from mlops_operator.serving.loading import session_options
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.features import FeatureTable
from mlops_operator.trainer.pipeline import model_input

__all__ = [
    "PROBABILITY_TOLERANCE",
    "REGRESSION_RELATIVE_TOLERANCE",
    "check_parity",
    "export_onnx",
    "feeds",
    "signature_of",
]

PROBABILITY_TOLERANCE = 1e-4
REGRESSION_RELATIVE_TOLERANCE = 1e-4
SINGLE_INPUT = "input"

_DTYPES: dict[int, Literal["float32", "float64", "int64", "string"]] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.STRING: "string",
}


def export_onnx(pipeline: Pipeline, table: FeatureTable, task: Task) -> onnx.ModelProto:
    """The fitted ``pipeline`` as an ONNX model (probabilities as a plain tensor)."""
    if table.categorical:
        initial_types: list[tuple[str, Any]] = [
            (
                name,
                StringTensorType([None, 1])
                if name in table.categorical
                else FloatTensorType([None, 1]),
            )
            for name in table.x.columns
        ]
    else:
        initial_types = [(SINGLE_INPUT, FloatTensorType([None, len(table.numeric)]))]
    estimator = pipeline.steps[-1][1]
    options = {id(estimator): {"zipmap": False}} if task == "classification" else None
    try:
        model: onnx.ModelProto = to_onnx(pipeline, initial_types=initial_types, options=options)
    except Exception as error:  # skl2onnx raises anything from RuntimeError to TypeError
        raise TrainingError(
            Reason.EXPORT_FAILED,
            f"{type(estimator).__name__} could not be converted to ONNX: {str(error).splitlines()[0]}",
        ) from error
    return model


def _tensor_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    shape: list[int | None] = [
        dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim
    ]
    return TensorSpec(name=value.name, dtype=_DTYPES[tensor.elem_type], shape=shape)


def signature_of(
    model: onnx.ModelProto,
    table: FeatureTable,
    task: Task,
    classes: list[str] | None,
    *,
    imputes: bool,
) -> Signature:
    """What the model takes (tensors and the features in them) and returns."""
    inputs = [_tensor_spec(value) for value in model.graph.input]
    if table.categorical:
        # One input per column, in column order; skl2onnx may have sanitized the names.
        features = [
            Feature(
                name=name,
                kind="categorical" if name in table.categorical else "numeric",
                input=spec.name,
                index=0,
            )
            for name, spec in zip(table.x.columns, inputs, strict=True)
        ]
    else:
        features = [
            Feature(name=name, kind="numeric", input=SINGLE_INPUT, index=i)
            for i, name in enumerate(table.x.columns)
        ]
    return Signature(
        task=task,
        inputs=inputs,
        outputs=[_tensor_spec(value) for value in model.graph.output],
        features=features,
        classes=classes,
        allow_non_finite=imputes,
    )


def feeds(model: onnx.ModelProto, table: FeatureTable, x: Any) -> dict[str, npt.NDArray[Any]]:
    """The ONNX inputs for the rows ``x`` of ``table``'s features."""
    if not table.categorical:
        return {SINGLE_INPUT: x.to_numpy(dtype=np.float32)}
    result: dict[str, npt.NDArray[Any]] = {}
    for name, value in zip(table.x.columns, model.graph.input, strict=True):
        dtype = object if name in table.categorical else np.float32
        result[value.name] = x[[name]].to_numpy(dtype=dtype)
    return result


def check_parity(
    model: onnx.ModelProto,
    pipeline: Pipeline,
    table: FeatureTable,
    x_test: Any,
    *,
    task: Task,
    target_scale: float,
    sample_rows: int,
) -> Parity:
    """Compare ONNX with scikit-learn on ``x_test``; a disagreement is a TrainingError.

    ``target_scale`` is the largest absolute training target (regression tolerance).
    """
    # One thread that does not spin, as the validator scores: onnxruntime ignores THREAD_ENV
    # and would start a spinning thread per core of the node for one pass over the holdout.
    session = ort.InferenceSession(
        model.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, feeds(model, table, x_test))
    expected_labels = pipeline.predict(model_input(table, x_test))
    if task == "classification":
        labels, probabilities = np.asarray(outputs[0]).astype(str), np.asarray(outputs[1])
        expected = pipeline.predict_proba(model_input(table, x_test))
        differing = int((labels != expected_labels.astype(str)).sum())
        max_diff = float(np.abs(probabilities - expected).max())
        tolerance = PROBABILITY_TOLERANCE
        sample_outputs: list[str | float] = [str(label) for label in labels[:sample_rows]]
        sample_probabilities: list[list[float]] | None = probabilities[:sample_rows].tolist()
    else:
        predictions = np.asarray(outputs[0]).reshape(-1)
        max_diff = float(np.abs(predictions - expected_labels).max())
        differing = 0
        tolerance = REGRESSION_RELATIVE_TOLERANCE * max(1.0, target_scale)
        sample_outputs = [float(value) for value in predictions[:sample_rows]]
        sample_probabilities = None
    if differing or not max_diff <= tolerance:
        labels_note = (
            f"{differing} of {len(x_test)} labels differ and " if task == "classification" else ""
        )
        what = "probabilities" if task == "classification" else "predictions"
        raise TrainingError(
            Reason.PARITY_FAILED,
            f"the ONNX model disagrees with scikit-learn on the held-out rows: {labels_note}"
            f"{what} differ by up to {max_diff:.3g} (allowed {tolerance:.3g})",
        )
    return Parity(
        rows_checked=len(x_test),
        max_abs_diff=max_diff,
        labels_identical=differing == 0,
        tolerance=tolerance,
        sample_inputs=[_row(row) for row in x_test.iloc[:sample_rows].itertuples(index=False)],
        sample_outputs=sample_outputs,
        sample_probabilities=sample_probabilities,
    )


def _row(values: tuple[Any, ...]) -> list[float | str | None]:
    return [
        value if isinstance(value, str) else None if np.isnan(value) else float(value)
        for value in values
    ]
