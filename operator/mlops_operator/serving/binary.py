"""The Open Inference Protocol's binary tensor data extension, and raw tensor bytes.

A request or response body is a JSON header of ``Inference-Header-Content-Length`` bytes
followed by the tensors' bytes, in the order of the header's tensors; each binary tensor
says its size in ``parameters.binary_data_size``. Elements are little-endian and row-major;
a BYTES element is a 4-byte little-endian length followed by its bytes. gRPC's
``raw_input_contents`` / ``raw_output_contents`` use the same element encoding.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops_operator.serving.errors import InvalidInput

__all__ = ["HEADER_LENGTH", "split_body", "tensor_bytes"]

HEADER_LENGTH = "Inference-Header-Content-Length"
_LENGTH = struct.Struct("<I")


def split_body(raw: bytes, header_length: str) -> tuple[bytes, memoryview]:
    """The JSON header and the binary part of a body, from the header's declared length."""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(raw):
        raise InvalidInput(
            f"{HEADER_LENGTH} is {header_length!r}; expected the JSON header's length in bytes,"
            f" between 1 and the body's {len(raw)}"
        )
    view = memoryview(raw)
    return raw[:length], view[length:]


def tensor_bytes(array: npt.NDArray[Any]) -> bytes:
    """An output tensor's elements as the extension (and gRPC's raw contents) encode them."""
    if array.dtype.kind in "OUS":
        parts = []
        for value in array.ravel().tolist():
            encoded = value if isinstance(value, bytes) else str(value).encode()
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
