"""Strict request decoding: a request body becomes onnxruntime feeds or a 4xx that says why.

Every check compares the body with the model card's signature (feature names and
count, input names, shapes, dtypes) and the server's limits (rows per request),
and applies the card's NaN/inf policy. Messages name the offending row, feature
or input together with what was expected, because the caller has to fix it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_operator.serving.errors import InvalidInput, PayloadTooLarge
from mlops_operator.serving.model import NUMPY_DTYPES, V2_DATATYPES, ServedModel

__all__ = ["Batch", "RequestDecoder", "V2Request"]

_NUMBER_TYPES: dict[str, frozenset[type]] = {
    "float32": frozenset({float, int}),
    "float64": frozenset({float, int}),
    "int64": frozenset({int}),
    "string": frozenset({str}),
}
_FLOAT_DTYPES = frozenset({"float32", "float64"})
_TYPE_WORDS = {"float32": "numbers", "float64": "numbers", "int64": "integers", "string": "strings"}
_JSON_NAMES = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


def _json_name(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Batch:
    """Validated feeds for onnxruntime and their row count."""

    feeds: dict[str, npt.NDArray[Any]]
    rows: int


@dataclass(frozen=True)
class V2Request:
    """A validated Open Inference Protocol request."""

    batch: Batch
    id: str | None
    outputs: list[str] | None


class RequestDecoder:
    """Turns decoded JSON bodies into feeds for one model, or raises a ``ClientError``."""

    def __init__(self, model: ServedModel, *, max_rows: int) -> None:
        self._model = model
        self._max_rows = max_rows
        self._allow_non_finite = model.card.signature.allow_non_finite
        self._names = model.feature_names
        self._name_set = frozenset(self._names)
        self._columns = {
            name: [self._names.index(f.name) for f in features]
            for name, features in model.features_by_input.items()
        }
        self._output_names = [spec.name for spec in model.card.signature.outputs]

    # -- /predict -------------------------------------------------------------------------

    def predict(self, body: object) -> Batch:
        """Feeds from a ``/predict`` body: ``{"rows": [...]}`` with list or object rows."""
        if not isinstance(body, dict):
            raise InvalidInput(
                f'expected a JSON object like {{"rows": [[...], ...]}}, got {_json_name(body)}'
            )
        unexpected = sorted(set(body) - {"rows"})
        if unexpected or "rows" not in body:
            raise InvalidInput(
                f'expected exactly one key "rows" in the body, got keys {sorted(body)}'
            )
        rows = body["rows"]
        if not isinstance(rows, list) or not rows:
            raise InvalidInput(
                f'"rows" must be a non-empty list of rows, got {_json_name(rows)}'
                + (" (empty)" if rows == [] else "")
            )
        self._check_row_count(len(rows))
        matrix = [self._row_values(i, row) for i, row in enumerate(rows)]
        if self._model.single_input:
            name, spec = next(iter(self._model.inputs.items()))
            feeds = {name: self._to_array(matrix, spec.dtype, name)}
        else:
            feeds = {
                name: self._to_array(
                    [[row[c] for c in columns] for row in matrix],
                    self._model.inputs[name].dtype,
                    name,
                    columns,
                )
                for name, columns in self._columns.items()
            }
        return Batch(feeds=feeds, rows=len(rows))

    def _row_values(self, index: int, row: object) -> list[Any]:
        if type(row) is list:
            if len(row) != len(self._names):
                raise InvalidInput(
                    f"row {index} has {len(row)} values; expected {len(self._names)} "
                    f"(features in order: {self._names})"
                )
            return row
        if type(row) is dict:
            if row.keys() != self._name_set:
                missing = [n for n in self._names if n not in row]
                extra = sorted(str(k) for k in row if k not in self._name_set)
                raise InvalidInput(
                    f"row {index} does not have the model's features: missing {missing}, "
                    f"unexpected {extra}; expected exactly {self._names}"
                )
            return [row[name] for name in self._names]
        raise InvalidInput(
            f"row {index} is {_json_name(row)}; expected a list of {len(self._names)} values "
            f"or an object keyed by feature name ({self._names})"
        )

    def _to_array(
        self,
        matrix: list[list[Any]],
        dtype: str,
        input_name: str,
        columns: list[int] | None = None,
    ) -> npt.NDArray[Any]:
        allowed = self._allowed(dtype)
        for index, row in enumerate(matrix):
            if not set(map(type, row)) <= allowed:
                position, value = next((p, v) for p, v in enumerate(row) if type(v) not in allowed)
                feature = self._names[columns[position] if columns else position]
                raise InvalidInput(
                    f"row {index}, feature {feature!r}: got {_json_name(value)}; "
                    f"expected {self._expected_words(dtype)}"
                )
        array = self._cast(matrix, dtype, input_name)
        self._check_finite(array, input_name, columns)
        return array

    # -- Open Inference Protocol ----------------------------------------------------------

    def v2(self, body: object) -> V2Request:
        """Feeds from an Open Inference Protocol (KServe V2) inference request."""
        if not isinstance(body, dict):
            raise InvalidInput(f'expected a JSON object with "inputs", got {_json_name(body)}')
        unexpected = sorted(set(body) - {"id", "parameters", "inputs", "outputs"})
        if unexpected:
            raise InvalidInput(
                f"unexpected keys {unexpected}; an inference request has "
                '"id", "parameters", "inputs" and "outputs"'
            )
        request_id = body.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise InvalidInput(f'"id" must be a string, got {_json_name(request_id)}')
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidInput(
                f'"inputs" must be a non-empty list of tensors; the model takes '
                f"{sorted(self._model.inputs)}"
            )
        tensors = [self._v2_tensor_fields(i, t) for i, t in enumerate(inputs)]
        names = [t[0] for t in tensors]
        if sorted(names) != sorted(self._model.inputs):
            raise InvalidInput(
                f"inputs {names} do not match the model's inputs {sorted(self._model.inputs)}"
            )
        feeds = {
            name: self._v2_array(name, shape, datatype, data)
            for name, shape, datatype, data in tensors
        }
        batch_sizes = {array.shape[0] for array in feeds.values()}
        if len(batch_sizes) != 1:
            raise InvalidInput(
                f"inputs have different batch sizes {sorted(batch_sizes)}; expected one"
            )
        return V2Request(
            batch=Batch(feeds=feeds, rows=batch_sizes.pop()),
            id=request_id,
            outputs=self._v2_outputs(body.get("outputs")),
        )

    def _v2_tensor_fields(
        self, index: int, tensor: object
    ) -> tuple[str, list[int], str, list[Any]]:
        if not isinstance(tensor, dict):
            raise InvalidInput(f"inputs[{index}] is {_json_name(tensor)}; expected a tensor object")
        unexpected = sorted(set(tensor) - {"name", "shape", "datatype", "data", "parameters"})
        if unexpected:
            raise InvalidInput(
                f"inputs[{index}] has unexpected keys {unexpected}; a tensor has "
                '"name", "shape", "datatype", "data" and optional "parameters"'
            )
        name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
        if not isinstance(name, str):
            raise InvalidInput(f"inputs[{index}].name must be a string, got {_json_name(name)}")
        if not (
            isinstance(shape, list) and shape and all(type(d) is int and d >= 0 for d in shape)
        ):
            raise InvalidInput(
                f"input {name!r}: shape must be a non-empty list of non-negative integers, "
                f"got {shape!r}"
            )
        if not isinstance(datatype, str):
            raise InvalidInput(f'input {name!r}: datatype must be a string like "FP32"')
        if not isinstance(data, list):
            raise InvalidInput(f"input {name!r}: data must be a list, got {_json_name(data)}")
        return name, shape, datatype, data

    def _v2_array(
        self, name: str, shape: list[int], datatype: str, data: list[Any]
    ) -> npt.NDArray[Any]:
        spec = self._model.inputs[name]
        expected_type = V2_DATATYPES[spec.dtype]
        if datatype != expected_type:
            raise InvalidInput(f"input {name!r}: datatype {datatype}; expected {expected_type}")
        expected_shape = ["-1" if d is None else str(d) for d in spec.shape]
        if len(shape) != len(spec.shape) or any(
            d is not None and d != s for d, s in zip(spec.shape, shape, strict=True)
        ):
            raise InvalidInput(
                f"input {name!r}: shape {shape}; expected [{', '.join(expected_shape)}] "
                "(-1 is the batch dimension)"
            )
        if shape[0] < 1:
            raise InvalidInput(f"input {name!r}: the batch dimension must be at least 1")
        self._check_row_count(shape[0])
        flat = _flatten(data, depth=len(shape))
        if flat is None or len(flat) != math.prod(shape):
            raise InvalidInput(
                f"input {name!r}: data does not hold {math.prod(shape)} scalars for shape {shape} "
                "(flat row-major or nested to the same shape)"
            )
        allowed = self._allowed(spec.dtype)
        if not set(map(type, flat)) <= allowed:
            value = next(v for v in flat if type(v) not in allowed)
            raise InvalidInput(
                f"input {name!r}: got {_json_name(value)} in data; "
                f"expected {self._expected_words(spec.dtype)} ({expected_type})"
            )
        array = self._cast(flat, spec.dtype, name).reshape(shape)
        self._check_finite(array, name, self._columns[name])
        return array

    def _v2_outputs(self, outputs: object) -> list[str] | None:
        if outputs is None:
            return None
        if not isinstance(outputs, list):
            raise InvalidInput(f'"outputs" must be a list, got {_json_name(outputs)}')
        names = [o.get("name") if isinstance(o, dict) else None for o in outputs]
        unknown = [n for n in names if n not in self._output_names]
        if unknown:
            raise InvalidInput(
                f"requested outputs {unknown} are not outputs of the model; "
                f"expected names among {self._output_names}"
            )
        return [str(n) for n in names]

    # -- shared checks --------------------------------------------------------------------

    def _check_row_count(self, rows: int) -> None:
        if rows > self._max_rows:
            raise PayloadTooLarge(
                f"{rows} rows in one request; at most {self._max_rows} are accepted"
            )

    def _allowed(self, dtype: str) -> frozenset[type]:
        if dtype in _FLOAT_DTYPES and self._allow_non_finite:
            return _NUMBER_TYPES[dtype] | {type(None)}
        return _NUMBER_TYPES[dtype]

    def _expected_words(self, dtype: str) -> str:
        words = _TYPE_WORDS[dtype]
        if dtype in _FLOAT_DTYPES and self._allow_non_finite:
            return f"{words} or null (missing)"
        return words

    @staticmethod
    def _cast(values: list[Any], dtype: str, name: str) -> npt.NDArray[Any]:
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                return np.array(values, dtype=NUMPY_DTYPES[dtype])
        except (OverflowError, TypeError, ValueError) as error:
            raise InvalidInput(f"input {name!r}: a value does not fit {dtype} ({error})") from error

    def _check_finite(self, array: npt.NDArray[Any], name: str, columns: list[int] | None) -> None:
        """Refuse infinities always, and NaN (a JSON null) unless the model imputes it."""
        if array.dtype.kind != "f":
            return
        bad = np.isinf(array) if self._allow_non_finite else ~np.isfinite(array)
        if not bad.any():
            return
        position = np.argwhere(bad)[0]
        where = f"input {name!r} at index {position.tolist()}"
        if array.ndim == 2:
            column = int(position[1])
            feature_index = columns[column] if columns else column
            if feature_index < len(self._names):
                where = f"row {int(position[0])}, feature {self._names[feature_index]!r}"
        raise InvalidInput(
            f"{where}: value out of range for {array.dtype} (overflows to infinity); "
            "expected a finite number"
        )


def _flatten(data: list[Any], depth: int) -> list[Any] | None:
    """Row-major scalars of flat or fully nested ``data``; None when the nesting is ragged."""
    if not data or type(data[0]) is not list:
        return data
    if depth <= 1:
        return None
    flat: list[Any] = []
    for item in data:
        if type(item) is not list:
            return None
        inner = _flatten(item, depth - 1)
        if inner is None:
            return None
        flat.extend(inner)
    return flat
