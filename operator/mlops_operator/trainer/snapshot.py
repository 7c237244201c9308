"""Data versioning: a dataset's canonical form, its content hash, and its snapshot.

The data version is the sha256 of a canonical serialization of the *values*,
not of any file's bytes, so the same table gives the same hash whether it came
from CSV, Parquet or scikit-learn, and whatever Parquet writer wrote it.

Canonical form, column by column, in the source's column order:

* booleans, integers, and floats that are all whole numbers without missing
  values (CSV often turns integers into floats) become ``int64``;
* other numbers become ``float64``; ``-0.0`` is ``0.0`` and every NaN is one NaN;
* everything else (text, categories, dates) becomes text: ``str(value)`` or
  missing.

The hash covers a header (format version, row count, column names and kinds),
then each column: int64 and float64 as little-endian bytes; text as a
present/missing byte then the UTF-8 length (8 bytes, little-endian) and bytes.
The snapshot in the store is ``datasets/<sha256>/data.parquet`` plus
``datasets/<sha256>/dataset.json`` (this manifest, written last).
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from pydantic import BaseModel, ConfigDict

from mlops_operator.storage import ArtifactStore, join_key
from mlops_operator.trainer.errors import Reason, TrainingError

__all__ = [
    "DATASET_MANIFEST_FILE",
    "DATASET_SNAPSHOT_FILE",
    "ColumnSchema",
    "DatasetManifest",
    "canonicalize",
    "content_sha256",
    "describe",
    "write_snapshot",
]

DATASET_SNAPSHOT_FILE = "data.parquet"
DATASET_MANIFEST_FILE = "dataset.json"
_FORMAT = "mlops-dataset/1"
_EXACT_INTEGERS = 2.0**53

ColumnKind = Literal["int64", "float64", "string"]


class ColumnSchema(BaseModel):
    """One column of the canonical table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    dtype: ColumnKind


class DatasetManifest(BaseModel):
    """What a snapshot holds: the data version, its size and its schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str
    rows: int
    columns: int
    column_schema: list[ColumnSchema]
    file: str = DATASET_SNAPSHOT_FILE
    file_sha256: str | None = None


def canonicalize(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical form of ``frame`` (see the module docstring); raises on duplicate columns."""
    names = [str(name) for name in frame.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"the dataset has duplicate column names: {', '.join(duplicates)}",
        )
    columns = {name: _canonical_column(frame.iloc[:, i]) for i, name in enumerate(names)}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _canonical_column(column: pd.Series) -> pd.Series:
    if ptypes.is_bool_dtype(column) and not column.isna().any():
        return column.astype("int64")
    if ptypes.is_numeric_dtype(column) and not ptypes.is_complex_dtype(column):
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        if ptypes.is_integer_dtype(column) and not column.isna().any():
            return pd.Series(column.to_numpy(dtype="int64"), dtype="int64")
        if (
            np.isfinite(values).all()
            and (np.abs(values) < _EXACT_INTEGERS).all()
            and (values == np.round(values)).all()
        ):
            return pd.Series(values.astype("int64"), dtype="int64")
        return pd.Series(np.where(np.isnan(values), np.nan, values + 0.0), dtype="float64")
    return pd.Series([_text(value) for value in column.to_numpy(dtype=object)], dtype=object)


def _text(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.isoformat() if isinstance(value, pd.Timestamp) else str(value)


def _kind(column: pd.Series) -> ColumnKind:
    if column.dtype == np.int64:
        return "int64"
    if column.dtype == np.float64:
        return "float64"
    return "string"


def describe(frame: pd.DataFrame) -> list[ColumnSchema]:
    """The schema of a canonical frame."""
    return [ColumnSchema(name=str(name), dtype=_kind(frame[name])) for name in frame.columns]


def content_sha256(frame: pd.DataFrame) -> str:
    """The data version of a canonical frame: sha256 of its canonical serialization."""
    schema = describe(frame)
    header = {
        "format": _FORMAT,
        "rows": len(frame),
        "columns": [[column.name, column.dtype] for column in schema],
    }
    digest = hashlib.sha256()
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    for column in schema:
        values = frame[column.name]
        if column.dtype == "int64":
            digest.update(values.to_numpy(dtype="<i8").tobytes())
        elif column.dtype == "float64":
            digest.update(values.to_numpy(dtype="<f8").tobytes())
        else:
            for value in values:
                if value is None:
                    digest.update(b"\x00")
                else:
                    encoded = value.encode()
                    digest.update(b"\x01" + len(encoded).to_bytes(8, "little") + encoded)
    return digest.hexdigest()


def write_snapshot(frame: pd.DataFrame, sha256: str, store: ArtifactStore) -> str:
    """Store the canonical ``frame`` under ``datasets/<sha256>/``; return that folder's key.

    An existing snapshot of the same version is kept as it is.
    """
    folder = join_key("datasets", sha256)
    manifest_key = join_key(folder, DATASET_MANIFEST_FILE)
    if store.exists(manifest_key):
        return folder
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    stored = store.put_bytes(join_key(folder, DATASET_SNAPSHOT_FILE), buffer.getvalue())
    manifest = DatasetManifest(
        sha256=sha256,
        rows=len(frame),
        columns=frame.shape[1],
        column_schema=describe(frame),
        file_sha256=stored.sha256,
    )
    store.put_bytes(manifest_key, manifest.model_dump_json(indent=2).encode())
    return folder
