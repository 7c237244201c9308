"""Why a training failed: a stable reason and one sentence for people."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason", "TrainingError"]


class Reason(StrEnum):
    """Stable, CamelCase reasons a training ends without a model."""

    INVALID_SETTINGS = "InvalidSettings"
    """The settings (environment or flags) do not validate."""
    DATASET_NOT_FOUND = "DatasetNotFound"
    """The dataset URI names nothing that exists."""
    INVALID_DATASET = "InvalidDataset"
    """The dataset exists but cannot be used: format, columns, types or values."""
    TOO_FEW_ROWS = "TooFewRows"
    """Not enough rows (or rows per class) for the held-out split or the folds."""
    ESTIMATOR_NOT_ALLOWED = "EstimatorNotAllowed"
    """The estimator is not on the allow-list."""
    INVALID_PARAMETER = "InvalidParameter"
    """An estimator parameter is unknown or has a value the estimator rejects."""
    FIT_FAILED = "FitFailed"
    """scikit-learn refused to fit the data."""
    EXPORT_FAILED = "ExportFailed"
    """The fitted pipeline could not be converted to ONNX."""
    PARITY_FAILED = "ParityFailed"
    """The ONNX model disagrees with scikit-learn on the held-out set."""
    STORAGE_FAILED = "StorageFailed"
    """An artifact could not be written to the output directory or the store."""
    INTERNAL_ERROR = "InternalError"
    """A bug: an exception nobody anticipated."""


class TrainingError(Exception):
    """A training that cannot succeed, with a reason and a sentence saying what to fix."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
