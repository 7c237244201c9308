"""The training table from one source or several: loaded, versioned each, sampled, combined.

Retraining on the last window alone forgets: a class that was rare in it is nearly
unseen by the next version. A TrainingJob may therefore combine sources (the
original dataset plus a deployment's logged window, or several windows), each
optionally sampled. Every source keeps its own data version: the sha256 of its
canonical form (`snapshot`), and its canonical table is snapshotted in the store
under that sha256, so ``mlops reproduce`` rebuilds the combination even after the
payload log rolled over. A sample is drawn with the recipe's seed, so the same
sources give the same rows. The combined table (sources in order, their columns
aligned to the first's) is versioned again: that sha256 is the model's data version.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_operator.trainer.datasets import load_dataset
from mlops_operator.trainer.errors import Reason, TrainingError
from mlops_operator.trainer.settings import DataSource
from mlops_operator.trainer.snapshot import canonicalize, content_sha256

__all__ = ["LoadedSource", "combine", "load_source"]


@dataclass(frozen=True)
class LoadedSource:
    """One source: its settings, canonical table and data version, and the rows used."""

    source: DataSource
    frame: pd.DataFrame
    sha256: str
    used: pd.DataFrame

    @property
    def lineage_uri(self) -> str:
        """How the lineage names the source."""
        return self.source.lineage_uri or self.source.uri


def load_source(source: DataSource, *, seed: int) -> LoadedSource:
    """Read, canonicalize, version and sample one source."""
    frame = canonicalize(load_dataset(source.uri, source.format))
    used = frame
    if source.sample < 1.0:
        used = frame.sample(frac=source.sample, random_state=seed).sort_index()
        used = used.reset_index(drop=True)
        if used.empty:
            raise TrainingError(
                Reason.TOO_FEW_ROWS,
                f"sampling {source.sample:g} of {source.lineage_uri or source.uri}'s"
                f" {len(frame)} rows leaves none",
            )
    return LoadedSource(source, frame, content_sha256(frame), used)


def combine(loaded: list[LoadedSource]) -> tuple[pd.DataFrame, str]:
    """The combined canonical table (columns as the first source's) and its data version."""
    if len(loaded) == 1 and loaded[0].source.sample >= 1.0:
        return loaded[0].frame, loaded[0].sha256
    columns = list(loaded[0].used.columns)
    for other in loaded[1:]:
        if set(other.used.columns) != set(columns):
            missing = sorted(set(columns) - set(other.used.columns))
            extra = sorted(set(other.used.columns) - set(columns))
            raise TrainingError(
                Reason.INVALID_DATASET,
                f"source {other.lineage_uri} does not have the columns of {loaded[0].lineage_uri}"
                f" (missing {missing or 'none'}, extra {extra or 'none'}); combined sources"
                " must share their columns",
            )
    frame = canonicalize(pd.concat([part.used[columns] for part in loaded], ignore_index=True))
    return frame, content_sha256(frame)
