"""The request bodies other tools' clients send, read as rows by the one decoder.

- ``/predict``: ``{"rows": [...]}`` (ours) or ``{"instances": [...]}``;
- KServe V1 (``POST /v1/models/{name}:predict``): ``{"instances": [...]}`` or the columnar
  ``{"inputs": {feature: [...]}}``, answered with ``{"predictions": [...]}``;
- MLflow's scoring server (``POST /invocations``): exactly one of ``dataframe_split``,
  ``dataframe_records``, ``instances`` or ``inputs`` (rows, or columns by feature), answered
  with ``{"predictions": [...]}``.

Rows are lists in the card's feature order or objects keyed by feature name, so the same
rows give the same feeds, checks and predictions in every format.
"""

from __future__ import annotations

from typing import Any

from mlops_operator.serving.errors import InvalidInput
from mlops_operator.serving.validation import Batch, RequestDecoder

__all__ = ["mlflow_batch", "predict_batch", "v1_batch"]

_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _only(body: object, allowed: tuple[str, ...], extra: tuple[str, ...], what: str) -> str:
    """The one data key of ``body``, refusing anything but it and the ``extra`` keys."""
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object like {what}, got {type(body).__name__}")
    keys = [k for k in body if k in allowed]
    unexpected = sorted(str(k) for k in body if k not in allowed and k not in extra)
    if len(keys) != 1 or unexpected:
        raise InvalidInput(
            f"expected exactly one of {list(allowed)} in the body, got keys {sorted(body)}"
            f" (like {what})"
        )
    return str(keys[0])


def predict_batch(decoder: RequestDecoder, body: object) -> Batch:
    """``/predict``: ``rows`` or ``instances``, lists in feature order or objects by feature."""
    key = _only(body, ("rows", "instances"), (), '{"rows": [[...], ...]}')
    assert isinstance(body, dict)
    return decoder.rows(body[key], key)


def v1_batch(decoder: RequestDecoder, body: object) -> Batch:
    """KServe V1 ``:predict``: ``instances`` (rows) or ``inputs`` (columns by feature name)."""
    key = _only(body, ("instances", "inputs"), ("parameters",), '{"instances": [[...], ...]}')
    assert isinstance(body, dict)
    if key == "inputs" and isinstance(body[key], dict):
        return decoder.columns(body[key], key)
    return decoder.rows(body[key], key)


def mlflow_batch(decoder: RequestDecoder, body: object) -> Batch:
    """MLflow ``/invocations``: the four JSON formats of MLflow's scoring server."""
    key = _only(
        body, _MLFLOW_KEYS, ("params",), '{"dataframe_split": {"columns": ..., "data": ...}}'
    )
    assert isinstance(body, dict)
    if body.get("params"):
        raise InvalidInput('"params" are not accepted: the model takes no inference parameters')
    value: Any = body[key]
    if key == "dataframe_split":
        return decoder.split(value, key)
    if key == "inputs" and isinstance(value, dict):
        return decoder.columns(value, key)
    return decoder.rows(value, key)
