"""`Notes`: a note reads as absent once past its shelf life, and the map stays bounded."""

from __future__ import annotations

import copy

from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.notes import Notes
from mlops_operator.k8s import KubeClient
from mlops_operator.runtime.settings import OperatorSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_note_is_read_until_it_expires_and_rewriting_renews_it() -> None:
    clock = Clock()
    notes: Notes[str] = Notes(10.0, clock=clock)
    assert notes.get("a") is None
    notes.put("a", "x")
    clock.now += 9.9
    assert notes.get("a") == "x"
    clock.now += 0.1
    assert notes.get("a") is None
    notes.put("a", "y")
    assert notes.get("a") == "y"
    notes.forget("a")
    assert notes.get("a") is None


def test_expired_notes_are_dropped_once_over_the_limit_and_fresh_ones_kept() -> None:
    clock = Clock()
    notes: Notes[int] = Notes(10.0, limit=100, clock=clock)
    for i in range(100):
        notes.put(f"gone-{i}", i)
    clock.now += 5
    notes.put("fresh", 1)
    assert len(notes) == 101  # nothing expired yet: nothing to drop
    clock.now += 6
    notes.put("new", 2)
    assert len(notes) == 102  # pruned a moment ago: not again within the ttl
    clock.now += 10
    notes.put("newer", 3)
    assert len(notes) == 1
    assert notes.get("newer") == 3


def test_the_copies_kopf_hands_to_handlers_share_the_notes() -> None:
    context = OperatorContext.create(OperatorSettings(), KubeClient())
    copy.copy(context).ticks.put("uid", ((1,), True))
    assert context.ticks.get("uid") == ((1,), True)
