"""Kubernetes Events the controllers post: the type and the reason come from catalogues.

A decision a person should see is told in an Event as well as in status. The pure
deciders (`mlops_operator.decisions`) say which Events a decision implies with
`Event`; the handlers post them through the controller kit
(`mlops_operator.handlers.kit.post`), the only place that posts. The reason is a
`Reason` member, the same catalogue the conditions use, so an alert on an Event's
reason and a dashboard on a condition's agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mlops_operator.api.conditions import Reason

__all__ = ["MAX_EVENT_MESSAGE", "Event", "EventType"]

MAX_EVENT_MESSAGE = 1024
"""Messages are cut here (Kopf's own bound on an Event's message): the front says what happened."""


class EventType(StrEnum):
    """The two types Kubernetes knows."""

    NORMAL = "Normal"
    """A decision taken as designed (a version trained, a rollout promoted)."""
    WARNING = "Warning"
    """Something a person may have to act on (a spec refused, a gate failed, a name taken)."""


@dataclass(frozen=True)
class Event:
    """An Event to post about the object a decision was taken for."""

    type: EventType
    reason: Reason
    message: str

    @classmethod
    def normal(cls, reason: Reason, message: str) -> Event:
        """A `EventType.NORMAL` Event."""
        return cls(EventType.NORMAL, reason, message)

    @classmethod
    def warning(cls, reason: Reason, message: str) -> Event:
        """A `EventType.WARNING` Event."""
        return cls(EventType.WARNING, reason, message)
