"""Ground truth by request id: the predictions of recent requests, kept for ``/feedback``.

Labels usually arrive long after the prediction, from another system, so the
server remembers each request's predictions for a bounded number of requests and
matches feedback to them; accuracy is then the ratio of two counters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from mlops_operator.serving.errors import InvalidInput, UnknownRequestId

__all__ = ["FeedbackStore", "parse_feedback"]


class FeedbackStore:
    """The predictions of the last ``capacity`` requests, by request id."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._predictions: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    def remember(self, request_id: str, predictions: Iterable[Any]) -> None:
        """Keep ``predictions`` for ``request_id``, forgetting the oldest request when full."""
        # A tuple of strings or floats is untracked by the garbage collector after its first
        # pass, so 100,000 remembered requests add nothing to a full collection's work.
        self._predictions[request_id] = tuple(predictions)
        if len(self._predictions) > self._capacity:
            self._predictions.popitem(last=False)

    def take(self, request_id: str, rows: int) -> Sequence[Any]:
        """The predictions of ``request_id`` (once: later feedback for it is refused)."""
        predictions = self._predictions.get(request_id)
        if predictions is None:
            raise UnknownRequestId(
                f"request id {request_id!r} is unknown or already has feedback; this worker "
                f"keeps the last {self._capacity} requests' predictions"
            )
        if len(predictions) != rows:
            raise InvalidInput(
                f"request {request_id!r} predicted {len(predictions)} rows; "
                f"expected {len(predictions)} labels, got {rows}"
            )
        del self._predictions[request_id]
        return predictions


def parse_feedback(body: object, *, classification: bool) -> list[tuple[str, list[Any]]]:
    """``(request_id, labels)`` pairs from ``{"request_id": ..., "labels": [...]}`` or a list."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInput('expected {"request_id": "...", "labels": [...]} or a non-empty list')
    pairs: list[tuple[str, list[Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"request_id", "labels"}:
            raise InvalidInput(
                f'feedback {index}: expected an object with exactly "request_id" and "labels"'
            )
        request_id, labels = item["request_id"], item["labels"]
        if not isinstance(request_id, str):
            raise InvalidInput(f"feedback {index}: request_id must be a string")
        if not isinstance(labels, list) or not labels:
            raise InvalidInput(f"feedback {index}: labels must be a non-empty list, one per row")
        if classification:
            if not all(type(v) in (str, int) for v in labels):
                raise InvalidInput(f"feedback {index}: class labels must be strings or integers")
            pairs.append((request_id, [str(v) for v in labels]))
        else:
            if not all(type(v) in (int, float) for v in labels):
                raise InvalidInput(f"feedback {index}: regression labels must be numbers")
            pairs.append((request_id, [float(v) for v in labels]))
    return pairs
