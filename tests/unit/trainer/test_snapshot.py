"""Data versioning: one hash for the same values, whatever file they came from.

Aspects: CSV, compressed CSV, Parquet and the bundled loader agree; whole-number
floats, booleans and integers are one kind; -0.0 and NaN payloads do not
matter; any changed value, column name, column order or type changes the hash;
a snapshot read back from the store has the hash it is filed under.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_operator.storage import ArtifactStore
from mlops_operator.trainer.datasets import load_dataset
from mlops_operator.trainer.errors import TrainingError
from mlops_operator.trainer.snapshot import (
    DATASET_MANIFEST_FILE,
    DATASET_SNAPSHOT_FILE,
    DatasetManifest,
    canonicalize,
    content_sha256,
    describe,
    write_snapshot,
)
from tests.unit.trainer.conftest import customers


def _version(frame: pd.DataFrame) -> str:
    return content_sha256(canonicalize(frame))


def test_the_same_data_has_the_same_version_wherever_it_came_from(tmp_path: Path) -> None:
    bundled = load_dataset("sklearn://wine")
    bundled.to_csv(tmp_path / "wine.csv", index=False)
    bundled.to_csv(tmp_path / "wine.csv.gz", index=False)
    bundled.to_parquet(tmp_path / "wine.parquet", index=False)

    versions = {
        _version(bundled),
        _version(load_dataset(str(tmp_path / "wine.csv"))),
        _version(load_dataset(f"file://{tmp_path}/wine.csv.gz")),
        _version(load_dataset(str(tmp_path / "wine.parquet"))),
    }

    assert len(versions) == 1


def test_mixed_data_with_missing_values_agrees_between_csv_and_parquet(tmp_path: Path) -> None:
    frame = customers()
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_parquet(tmp_path / "c.parquet", index=False)

    assert _version(load_dataset(str(tmp_path / "c.csv"))) == _version(
        load_dataset(str(tmp_path / "c.parquet"))
    )


def test_canonical_kinds() -> None:
    frame = canonicalize(
        pd.DataFrame(
            {
                "whole floats": [1.0, 2.0, 3.0],
                "floats": [0.5, np.nan, -0.0],
                "flags": [True, False, True],
                "text": ["a", None, "c"],
                "categories": pd.Categorical(["x", "y", "x"]),
                "dates": pd.to_datetime(["2024-01-01", None, "2024-03-01"]),
            }
        )
    )

    assert [c.dtype for c in describe(frame)] == [
        "int64",
        "float64",
        "int64",
        "string",
        "string",
        "string",
    ]
    assert frame["text"].tolist() == ["a", None, "c"]
    assert frame["dates"].tolist() == ["2024-01-01T00:00:00", None, "2024-03-01T00:00:00"]


def test_representations_of_the_same_values_hash_alike() -> None:
    assert _version(pd.DataFrame({"a": [1, 2]})) == _version(pd.DataFrame({"a": [1.0, 2.0]}))
    assert _version(pd.DataFrame({"a": [1, 0]})) == _version(pd.DataFrame({"a": [True, False]}))
    assert _version(pd.DataFrame({"a": [0.0, 1.5]})) == _version(pd.DataFrame({"a": [-0.0, 1.5]}))
    other_nan = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0]
    assert _version(pd.DataFrame({"a": [np.nan, 1.5]})) == _version(
        pd.DataFrame({"a": [other_nan, 1.5]})
    )
    assert _version(pd.DataFrame({"a": ["x", None]})) == _version(
        pd.DataFrame({"a": pd.Series(["x", None], dtype="string")})
    )


@pytest.mark.parametrize(
    "changed",
    [
        pd.DataFrame({"a": [1.0, 2.5], "b": ["x", "y"]}),  # a value
        pd.DataFrame({"A": [1.0, 2.0], "b": ["x", "y"]}),  # a column name
        pd.DataFrame({"b": ["x", "y"], "a": [1.0, 2.0]}),  # the column order
        pd.DataFrame({"a": ["1", "2"], "b": ["x", "y"]}),  # a column's kind
        pd.DataFrame({"a": [1.0, 2.0], "b": ["x", ""]}),  # empty text is not missing
        pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]}),  # a row
    ],
)
def test_any_change_changes_the_version(changed: pd.DataFrame) -> None:
    original = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", None]})

    assert _version(changed) != _version(original)


def test_duplicate_column_names_are_refused() -> None:
    with pytest.raises(TrainingError, match="duplicate column names: a"):
        canonicalize(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_a_snapshot_is_filed_under_its_version_and_reads_back_to_it(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    frame = canonicalize(customers())
    version = content_sha256(frame)

    folder = write_snapshot(frame, version, store)

    assert folder == f"datasets/{version}"
    manifest = DatasetManifest.model_validate_json(
        store.read_bytes(f"{folder}/{DATASET_MANIFEST_FILE}")
    )
    data = store.read_bytes(f"{folder}/{DATASET_SNAPSHOT_FILE}", sha256=manifest.file_sha256)
    assert (manifest.rows, manifest.columns) == (240, 5)
    assert _version(pd.read_parquet(io.BytesIO(data))) == version
    assert write_snapshot(frame, version, store) == folder  # already there: kept
