"""Loading a dataset from its URI into a pandas DataFrame.

``sklearn://NAME`` is one of scikit-learn's bundled datasets (nothing is
downloaded; the label column is ``target``). ``payloadlog+<root>?target=…`` is an
inference server's payload log joined with its labelled feedback
(:mod:`.payloadlog`). Anything else is a CSV or Parquet
file, chosen by its extension: a path or ``file://`` URI on a mounted volume,
or any fsspec URI (``s3://``, ``gs://``...) whose fsspec package is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pandas as pd

from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.payloadlog import load_payload_log
from mlops_operator.trainer.payloadlog_uri import SCHEME_PREFIX

__all__ = ["BUNDLED_DATASETS", "load_dataset"]

BUNDLED_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def load_dataset(uri: str, format: str = "auto") -> pd.DataFrame:
    """The dataset at ``uri``, as loaded (see :mod:`.snapshot` for its canonical form).

    `format` (``csv`` or ``parquet``) overrides the file name's extension; ``auto`` uses it.
    """
    if uri.startswith("sklearn://"):
        return _load_bundled(uri.removeprefix("sklearn://").strip("/"))
    if uri.startswith(SCHEME_PREFIX):
        return load_payload_log(uri)
    reader = _reader_for(uri, format)
    try:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            return reader(handle)
    except FileNotFoundError as error:
        raise TrainingError(Reason.DATASET_NOT_FOUND, f"dataset {uri} does not exist") from error
    except IsADirectoryError as error:
        raise TrainingError(
            Reason.INVALID_DATASET, f"dataset {uri} is a directory; expected a CSV or Parquet file"
        ) from error
    except ImportError as error:
        scheme = urlsplit(uri).scheme
        raise TrainingError(
            Reason.INVALID_DATASET,
            f"dataset {uri} needs the fsspec backend for {scheme}:// which is not installed"
            f" ({error})",
        ) from error
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise TrainingError(
            Reason.INVALID_DATASET, f"dataset {uri} could not be read: {_first_line(error)}"
        ) from error


def _load_bundled(name: str) -> pd.DataFrame:
    from sklearn import datasets

    if name not in BUNDLED_DATASETS:
        raise TrainingError(
            Reason.DATASET_NOT_FOUND,
            f"there is no bundled dataset {name!r}; choose one of {', '.join(BUNDLED_DATASETS)}",
        )
    loader = getattr(datasets, f"load_{name}")
    frame: pd.DataFrame = loader(as_frame=True).frame
    return frame


def _reader_for(uri: str, format: str = "auto") -> Callable[[Any], pd.DataFrame]:
    suffix = "".join(PurePosixPath(urlsplit(uri).path).suffixes[-2:]).lower()
    name = PurePosixPath(urlsplit(uri).path).name.lower()
    if format == "parquet":
        return lambda handle: pd.read_parquet(handle)
    if format == "csv":
        return lambda handle: pd.read_csv(handle)
    if name.endswith(_PARQUET_SUFFIXES):
        return lambda handle: pd.read_parquet(handle)
    if name.endswith(_CSV_SUFFIXES):
        # pandas >= 3 parses floats exactly by default, so CSV and Parquet of the same numbers
        # give the same data version (pandas 2's default parser could be off by one ulp).
        return lambda handle: pd.read_csv(handle)
    raise TrainingError(
        Reason.INVALID_DATASET,
        f"dataset {uri} has an unsupported extension {suffix or '(none)'!r};"
        " expected .csv (optionally compressed: .csv.gz, .csv.bz2, .csv.zst) or .parquet, or"
        " say which with the dataset's format (csv, parquet)",
    )


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
