"""Strict request decoding: a request becomes onnxruntime feeds or a 4xx that says why.

Every check compares the request with the model card's signature (feature names and
count, input names, shapes, dtypes) and the server's limits (rows per request),
and applies the card's NaN/inf policy. Messages name the offending row, feature
or input together with what was expected, because the caller has to fix it.

One decoder serves every format, so the same body means the same feeds and the
same refusal whichever way it arrives:

- rows (``/predict``'s ``rows`` or ``instances``, KServe V1 ``instances``, MLflow's
  ``dataframe_records``, ``dataframe_split``, ``instances`` and ``inputs``): lists in
  card feature order or objects keyed by feature name, or columns by feature name;
- tensors (the Open Inference Protocol): JSON ``data``, the binary tensor data
  extension's bytes, or gRPC's typed or raw contents all end in :meth:`RequestDecoder.tensor`.

The request nearly every V2 JSON client sends (flat ``data`` of numbers or strings for each
input, nothing optional but ``id`` and the envelope's names) is first tried by
:meth:`RequestDecoder.common_v2`: a handful of C-level checks and one numpy conversion per
input, a tenth of the full decoder's work. It accepts only what the full decoder accepts,
giving the same feeds; anything else, right or wrong, goes to the full decoder, which
decides and words the refusal.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from mlops_operator.serving.errors import InvalidInput, PayloadTooLarge
from mlops_operator.serving.model import NUMPY_DTYPES, V2_DATATYPES, ServedModel

__all__ = [
    "Batch",
    "CommonFeeds",
    "RequestDecoder",
    "TensorInput",
    "V2Request",
    "decode_bytes_elements",
]

_NUMBER_TYPES: dict[str, frozenset[type]] = {
    "float32": frozenset({float, int}),
    "float64": frozenset({float, int}),
    "int64": frozenset({int}),
    "string": frozenset({str}),
}
_FLOAT_DTYPES = frozenset({"float32", "float64"})
_TYPE_WORDS = {"float32": "numbers", "float64": "numbers", "int64": "integers", "string": "strings"}
# Little-endian wire layouts of the binary tensor data extension and gRPC's raw contents.
_WIRE_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int64": np.dtype("<i8"),
}
_JSON_NAMES = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}
_V2_KEYS = frozenset({"id", "parameters", "inputs", "outputs", "model_name", "model_version"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
# The common request's keys (RequestDecoder.common_v2): no parameters, no requested outputs.
_COMMON_V2_KEYS = frozenset({"id", "inputs", "model_name", "model_version"})
_COMMON_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})
_NO_ENVELOPE: tuple[None, None, None] = (None, None, None)
# Values within these bounds convert to the dtype exactly or to a finite neighbour (a float
# beyond float32's largest finite value would become infinity; an int beyond int64, an error).
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT64_MAX = float(np.finfo(np.float64).max)
_BOUNDS: dict[str, tuple[float, float] | None] = {
    "float32": (-_FLOAT32_MAX, _FLOAT32_MAX),
    "float64": (-_FLOAT64_MAX, _FLOAT64_MAX),
    "int64": (-(2**63), 2**63 - 1),
    "string": None,
}
_LENGTH = struct.Struct("<I")
# A number beyond float32 becomes infinity when cast, which _check_finite refuses by name; the
# cast's warning says nothing more (and np.errstate costs microseconds on every request).
warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)


Feeds = dict[str, npt.NDArray[Any]]
CommonFeeds = tuple[Feeds, int, tuple[str | None, str | None, str | None]]
"""A common V2 request's feeds, rows, and envelope (``id``, ``model_name``, ``model_version``)."""


def _json_name(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


# Batch and V2Request are built on every request: slotted, and not frozen (a frozen dataclass's
# __init__ sets each field through object.__setattr__, several times the cost). Nothing
# mutates them.
@dataclass(slots=True)
class Batch:
    """Validated feeds for onnxruntime and their row count."""

    feeds: dict[str, npt.NDArray[Any]]
    rows: int


@dataclass(slots=True)
class V2Request:
    """A validated Open Inference Protocol request (JSON, binary or gRPC)."""

    batch: Batch
    id: str | None
    outputs: list[str] | None
    model_name: str | None = None
    model_version: str | None = None
    # Outputs to answer as binary data (the extension), by name; empty: all as JSON.
    binary_outputs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TensorInput:
    """One input tensor as it arrived, before validation.

    Exactly one of ``data`` (JSON: flat or nested scalars, types unchecked), ``values``
    (gRPC typed contents: already of the wire type) and ``raw`` (little-endian bytes) is set.
    """

    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    values: Sequence[Any] | None = None
    raw: bytes | memoryview | None = None


def decode_bytes_elements(raw: bytes | memoryview, count: int, where: str) -> list[str]:
    """``count`` BYTES elements (4-byte little-endian length, then the bytes) as UTF-8 strings."""
    view = memoryview(raw)
    values: list[str] = []
    offset = 0
    for index in range(count):
        if offset + 4 > len(view):
            raise InvalidInput(
                f"{where}: binary data ends after {index} of {count} BYTES elements "
                "(each is a 4-byte little-endian length, then its bytes)"
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidInput(
                f"{where}: BYTES element {index} declares {length} bytes; "
                f"only {len(view) - offset} remain"
            )
        try:
            values.append(str(view[offset : offset + length], "utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidInput(
                f"{where}: BYTES element {index} is not valid UTF-8 ({error.reason})"
            ) from error
        offset += length
    if offset != len(view):
        raise InvalidInput(
            f"{where}: binary data has {len(view) - offset} bytes after its {count} BYTES elements"
        )
    return values


class RequestDecoder:
    """Turns decoded requests into feeds for one model, or raises a ``ClientError``."""

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
        self._input_names = sorted(model.inputs)
        self._common = {
            name: _CommonInput(V2_DATATYPES[spec.dtype], spec.shape[1], NUMPY_DTYPES[spec.dtype],
                               _NUMBER_TYPES[spec.dtype], _BOUNDS[spec.dtype])
            for name, spec in model.inputs.items()
            if len(spec.shape) == 2 and spec.shape[0] is None and spec.shape[1] is not None
        }  # fmt: skip
        if len(self._common) != len(model.inputs):
            self._common = {}  # an input of another rank: every request takes the full path
        # How many inputs a common request holds (-1: none is common, not even an empty list).
        self._common_inputs = len(self._common) or -1

    # -- rows: /predict, KServe V1, MLflow ---------------------------------------------------

    def rows(self, rows: object, key: str) -> Batch:
        """Feeds from a list of rows (lists in feature order, or objects keyed by feature)."""
        if not isinstance(rows, list) or not rows:
            raise InvalidInput(
                f'"{key}" must be a non-empty list of rows, got {_json_name(rows)}'
                + (" (empty)" if rows == [] else "")
            )
        self._check_row_count(len(rows))
        return self._matrix([self._row_values(i, row) for i, row in enumerate(rows)])

    def columns(self, columns: object, key: str) -> Batch:
        """Feeds from columns keyed by feature name, all of one length (MLflow's ``inputs``)."""
        if not isinstance(columns, dict) or columns.keys() != self._name_set:
            given = sorted(map(str, columns)) if isinstance(columns, dict) else _json_name(columns)
            raise InvalidInput(
                f'"{key}" must be an object with one list per feature, exactly {self._names}; '
                f"got {given}"
            )
        lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
        if len(lengths) != 1 or -1 in lengths or 0 in lengths:
            raise InvalidInput(f'"{key}": every feature must be a non-empty list of one length')
        self._check_row_count(lengths.pop())
        return self._matrix(
            [list(row) for row in zip(*(columns[n] for n in self._names), strict=True)]
        )

    def split(self, frame: object, key: str) -> Batch:
        """Feeds from pandas' ``split`` orientation: ``{"columns": [...], "data": [[...]]}``."""
        if (
            not isinstance(frame, dict)
            or "data" not in frame
            or set(frame)
            - {
                "columns",
                "data",
                "index",
            }
        ):
            raise InvalidInput(
                f'"{key}" must be an object with "data" (rows) and optional "columns" and "index"'
            )
        columns = frame.get("columns")
        data = frame["data"]
        if columns is None or columns == self._names:
            return self.rows(data, f"{key}.data")
        if not isinstance(columns, list) or sorted(map(str, columns)) != sorted(self._names):
            raise InvalidInput(
                f'"{key}.columns" must name each feature once, {self._names}; got {columns!r}'
            )
        # A permutation of the features: rows become objects keyed by column.
        if not isinstance(data, list):
            raise InvalidInput(f'"{key}.data" must be a list of rows, got {_json_name(data)}')
        width = len(columns)
        for index, row in enumerate(data):
            if not isinstance(row, list) or len(row) != width:
                raise InvalidInput(f'"{key}.data" row {index} must be a list of {width} values')
        return self.rows([dict(zip(columns, row, strict=True)) for row in data], f"{key}.data")

    def _matrix(self, matrix: list[list[Any]]) -> Batch:
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
        return Batch(feeds=feeds, rows=len(matrix))

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

    def full_v2(self, body: object, binary: memoryview | None = None) -> V2Request:
        """Feeds from an Open Inference Protocol request body (JSON, with optional binary data):
        every check, and the refusal's wording.

        ``binary`` is what follows the JSON header under the binary tensor data extension;
        inputs with a ``binary_data_size`` parameter take their bytes from it, in order.
        The common JSON request is decoded first by :meth:`common_v2`; what it does not take
        comes here.
        """
        if not isinstance(body, dict):
            raise InvalidInput(f'expected a JSON object with "inputs", got {_json_name(body)}')
        if not body.keys() <= _V2_KEYS:
            unexpected = sorted(map(str, set(body) - _V2_KEYS))
            raise InvalidInput(
                f"unexpected keys {unexpected}; an inference request has "
                '"id", "parameters", "inputs" and "outputs" (and optionally "model_name" and '
                '"model_version", which must name this model)'
            )
        request_id = body.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise InvalidInput(f'"id" must be a string, got {_json_name(request_id)}')
        envelope = [body.get(k) for k in ("model_name", "model_version")]
        for key, value in zip(("model_name", "model_version"), envelope, strict=True):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f'"{key}" must be a string, got {_json_name(value)}')
        parameters = _parameters(body.get("parameters"), "parameters")
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidInput(
                f'"inputs" must be a non-empty list of tensors; the model takes {self._input_names}'
            )
        tensors = self._json_tensors(inputs, binary)
        requested = body.get("outputs")
        return V2Request(
            batch=self.tensors(tensors),
            id=request_id,
            outputs=self._v2_outputs(requested),
            model_name=envelope[0],
            model_version=envelope[1],
            binary_outputs=self._binary_outputs(parameters, requested),
        )

    def common_v2(self, body: object) -> CommonFeeds | None:
        """The common V2 JSON request, decoded in a few operations: its feeds, their rows and
        the envelope's ``id``, ``model_name`` and ``model_version``; None for any other body.

        Common: ``inputs`` holds each model input once as ``name``, ``shape`` ``[rows,
        width]``, ``datatype`` and flat ``data`` of plain numbers (or strings for BYTES)
        within the dtype's range; the body has nothing else but string ``id``,
        ``model_name`` and ``model_version``. Such a body is one :meth:`full_v2` accepts,
        and the feeds are the ones it builds (the same conversion of the same list). None
        sends a body to the full decoder: requested outputs, parameters, nested data, nulls,
        an error of any kind.

        Written for few bytecodes, as it runs on nearly every request: a tensor's keys are
        checked by count and lookup, its input's spec unpacked once, element types by a
        superset test over ``map(type, data)`` (no set built), and no request object is
        built (the handler makes the one it needs).
        """
        if type(body) is not dict:
            return None
        inputs = body.get("inputs")
        if type(inputs) is not list or len(inputs) != self._common_inputs:
            return None
        envelope = _NO_ENVELOPE
        if len(body) > 1:
            if not body.keys() <= _COMMON_V2_KEYS:
                return None
            envelope = (body.get("id"), body.get("model_name"), body.get("model_version"))
            if any(value is not None and type(value) is not str for value in envelope):
                return None
        feeds: Feeds = {}
        rows = 0
        for tensor in inputs:
            if type(tensor) is not dict or len(tensor) != len(_COMMON_TENSOR_KEYS):
                return None
            try:  # as many keys as the common tensor's, all of them: exactly its keys
                name = tensor["name"]
                datatype, width, dtype, types, bounds = self._common[name]
                shape, data = tensor["shape"], tensor["data"]
                if tensor["datatype"] != datatype:
                    return None
            except (KeyError, TypeError):  # a key missing, an unknown or unhashable name
                return None
            if type(shape) is not list or len(shape) != 2 or type(data) is not list:
                return None
            count, columns = shape
            if (
                type(count) is not int
                or type(columns) is not int
                or columns != width
                or not 0 < count <= self._max_rows
                or (rows and count != rows)
                or name in feeds
                or len(data) != count * width
                or not types.issuperset(map(type, data))
                or (bounds is not None and not bounds[0] <= min(data) <= max(data) <= bounds[1])
            ):
                return None
            rows = count
            try:
                feeds[name] = np.array(data, dtype=dtype).reshape(count, width)
            except (OverflowError, TypeError, ValueError):  # the full decoder words it
                return None
        return feeds, rows, envelope

    def _json_tensors(self, inputs: list[Any], binary: memoryview | None) -> list[TensorInput]:
        tensors = []
        offset = 0
        for index, tensor in enumerate(inputs):
            name, shape, datatype, data, size = self._v2_tensor_fields(index, tensor)
            if size is None:
                tensors.append(TensorInput(name, shape, datatype, data=data))
                continue
            available = 0 if binary is None else len(binary) - offset
            if binary is None or size > available:
                raise InvalidInput(
                    f"input {name!r}: binary_data_size is {size} but "
                    + (
                        "the request has no binary data (send the JSON header's length in the "
                        "Inference-Header-Content-Length header, the tensors' bytes after it)"
                        if binary is None
                        else f"only {available} bytes of binary data remain"
                    )
                )
            tensors.append(TensorInput(name, shape, datatype, raw=binary[offset : offset + size]))
            offset += size
        if binary is not None and offset != len(binary):
            raise InvalidInput(
                f"the body has {len(binary) - offset} bytes of binary data beyond what the inputs' "
                "binary_data_size parameters declare"
            )
        return tensors

    def _v2_tensor_fields(
        self, index: int, tensor: object
    ) -> tuple[str, list[int], str, list[Any] | None, int | None]:
        if not isinstance(tensor, dict):
            raise InvalidInput(f"inputs[{index}] is {_json_name(tensor)}; expected a tensor object")
        if not tensor.keys() <= _TENSOR_KEYS:
            unexpected = sorted(map(str, set(tensor) - _TENSOR_KEYS))
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
        size = _parameters(tensor.get("parameters"), f"input {name!r}: parameters").get(
            "binary_data_size"
        )
        if size is not None:
            if type(size) is not int or size < 0:
                raise InvalidInput(
                    f"input {name!r}: binary_data_size must be a non-negative integer"
                )
            if data is not None:
                raise InvalidInput(f'input {name!r}: has both "data" and binary_data_size')
            return name, shape, datatype, None, size
        if not isinstance(data, list):
            raise InvalidInput(f"input {name!r}: data must be a list, got {_json_name(data)}")
        return name, shape, datatype, data, None

    def tensors(self, tensors: Sequence[TensorInput]) -> Batch:
        """Feeds from the input tensors of a request, checked against the model's inputs."""
        names = [t.name for t in tensors]
        if sorted(names) != self._input_names:
            raise InvalidInput(
                f"inputs {names} do not match the model's inputs {self._input_names}"
            )
        feeds = {t.name: self.tensor(t) for t in tensors}
        batch_sizes = {array.shape[0] for array in feeds.values()}
        if len(batch_sizes) != 1:
            raise InvalidInput(
                f"inputs have different batch sizes {sorted(batch_sizes)}; expected one"
            )
        return Batch(feeds=feeds, rows=batch_sizes.pop())

    def tensor(self, tensor: TensorInput) -> npt.NDArray[Any]:
        """One input tensor as the model's array, whichever encoding it arrived in."""
        name, shape, datatype = tensor.name, tensor.shape, tensor.datatype
        spec = self._model.inputs[name]
        expected_type = V2_DATATYPES[spec.dtype]
        if datatype != expected_type:
            raise InvalidInput(f"input {name!r}: datatype {datatype}; expected {expected_type}")
        if len(shape) != len(spec.shape) or any(
            d is not None and d != s for d, s in zip(spec.shape, shape, strict=True)
        ):
            expected_shape = ["-1" if d is None else str(d) for d in spec.shape]
            raise InvalidInput(
                f"input {name!r}: shape {shape}; expected [{', '.join(expected_shape)}] "
                "(-1 is the batch dimension)"
            )
        if shape[0] < 1:
            raise InvalidInput(f"input {name!r}: the batch dimension must be at least 1")
        self._check_row_count(shape[0])
        count = math.prod(shape)
        if tensor.raw is not None:
            array = self._from_raw(tensor.raw, spec.dtype, count, name)
        elif tensor.values is not None:
            if len(tensor.values) != count:
                raise InvalidInput(
                    f"input {name!r}: contents hold {len(tensor.values)} values; "
                    f"expected {count} for shape {shape}"
                )
            values: Any = tensor.values
            if spec.dtype == "string":
                values = _utf8(values, name)
            array = self._cast(values, spec.dtype, name)
        else:
            array = self._from_json(tensor.data or [], spec.dtype, count, tensor)
        array = array.reshape(shape)
        self._check_finite(array, name, self._columns[name])
        return array

    def _from_json(
        self, data: list[Any], dtype: str, count: int, tensor: TensorInput
    ) -> npt.NDArray[Any]:
        name, shape = tensor.name, tensor.shape
        flat = _flatten(data, depth=len(shape))
        if flat is None or len(flat) != count:
            raise InvalidInput(
                f"input {name!r}: data does not hold {count} scalars for shape {shape} "
                "(flat row-major or nested to the same shape)"
            )
        allowed = self._allowed(dtype)
        if not set(map(type, flat)) <= allowed:
            value = next(v for v in flat if type(v) not in allowed)
            raise InvalidInput(
                f"input {name!r}: got {_json_name(value)} in data; "
                f"expected {self._expected_words(dtype)} ({V2_DATATYPES[dtype]})"
            )
        return self._cast(flat, dtype, name)

    @staticmethod
    def _from_raw(raw: bytes | memoryview, dtype: str, count: int, name: str) -> npt.NDArray[Any]:
        if dtype == "string":
            return np.array(decode_bytes_elements(raw, count, f"input {name!r}"), dtype=object)
        wire = _WIRE_DTYPES[dtype]
        if len(raw) != count * wire.itemsize:
            raise InvalidInput(
                f"input {name!r}: {len(raw)} bytes of binary data; expected {count * wire.itemsize}"
                f" ({count} {V2_DATATYPES[dtype]} values of {wire.itemsize} bytes, little-endian)"
            )
        array: npt.NDArray[Any] = np.frombuffer(raw, dtype=wire)
        return array.astype(NUMPY_DTYPES[dtype], copy=False)

    def _v2_outputs(self, outputs: object) -> list[str] | None:
        if outputs is None:
            return None
        if not isinstance(outputs, list):
            raise InvalidInput(f'"outputs" must be a list, got {_json_name(outputs)}')
        names = [o.get("name") if isinstance(o, dict) else None for o in outputs]
        return self.output_names(names)

    def output_names(self, names: Sequence[object]) -> list[str]:
        """Requested output names, each an output of the model."""
        unknown = [n for n in names if n not in self._output_names]
        if unknown:
            raise InvalidInput(
                f"requested outputs {unknown} are not outputs of the model; "
                f"expected names among {self._output_names}"
            )
        return [str(n) for n in names]

    def _binary_outputs(self, parameters: Mapping[str, Any], outputs: object) -> frozenset[str]:
        """Outputs answered as binary data: ``binary_data_output``, overridden per output."""
        everything = parameters.get("binary_data_output", False)
        if type(everything) is not bool:
            raise InvalidInput("parameters.binary_data_output must be true or false")
        chosen = set(self._output_names) if everything else set()
        for output in outputs if isinstance(outputs, list) else []:
            given = _parameters(output.get("parameters"), f"output {output.get('name')!r}")
            flag = given.get("binary_data")
            if flag is None:
                continue
            if type(flag) is not bool:
                raise InvalidInput(
                    f"output {output.get('name')!r}: parameters.binary_data must be true or false"
                )
            (chosen.add if flag else chosen.discard)(output["name"])
        return frozenset(chosen)

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
    def _cast(values: Any, dtype: str, name: str) -> npt.NDArray[Any]:
        try:
            return np.array(values, dtype=NUMPY_DTYPES[dtype])
        except (OverflowError, TypeError, ValueError) as error:
            raise InvalidInput(f"input {name!r}: a value does not fit {dtype} ({error})") from error

    def _check_finite(self, array: npt.NDArray[Any], name: str, columns: list[int] | None) -> None:
        """Refuse infinities always, and NaN (a JSON null) unless the model imputes it."""
        if array.dtype.kind != "f" or np.isfinite(array).all():
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
        if np.isnan(array[tuple(position)]):
            raise InvalidInput(
                f"{where}: NaN (a missing value), which this model does not impute; "
                "expected a finite number"
            )
        raise InvalidInput(
            f"{where}: value out of range for {array.dtype} (overflows to infinity); "
            "expected a finite number"
        )


class _CommonInput(NamedTuple):
    """What :meth:`RequestDecoder.common_v2` checks an input tensor against (a tuple: one
    unpacking per tensor)."""

    datatype: str  # the V2 name of the input's dtype
    width: int  # the second dimension
    dtype: Any  # the numpy dtype the feed is built with
    types: frozenset[type]  # the JSON scalars accepted (numbers, or strings; never null)
    bounds: tuple[float, float] | None  # values converting to a finite number of the dtype


def _parameters(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object, got {_json_name(value)}")
    return value


def _utf8(values: Sequence[Any], name: str) -> list[str]:
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    except UnicodeDecodeError as error:
        raise InvalidInput(f"input {name!r}: a BYTES value is not valid UTF-8") from error


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
