"""The API server reads a duration as `parse_duration` does (CEL's ``duration()`` in the rules).

A DriftPolicy's ``cooldown`` must not be shorter than its ``interval`` (a CEL rule comparing
two durations). Pairs written differently but meaning the same, or a millisecond apart,
are admitted exactly when `parse_duration` says the cooldown is not shorter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_operator.api.durations import parse_duration
from tests.integration.api.support import edit, example, submit

PAIRS = [
    ("1.5m", "90s"),
    ("1.5m", "89999ms"),
    ("1h30m", "5400s"),
    ("1h30m", "1.49h"),
    ("10s", "10000ms"),
    ("2m", "119.999s"),
]


@pytest.mark.parametrize(("interval", "cooldown"), PAIRS)
def test_cel_reads_durations_as_the_operator_does(
    crds: Path, namespace: str, interval: str, cooldown: str
) -> None:
    document = example("driftpolicy.yaml")
    edit(document, "spec.interval", interval)
    edit(document, "spec.window", "24h")
    edit(document, "spec.cooldown", cooldown)

    error = submit(crds, namespace, document, dry_run=True)

    expected = parse_duration(cooldown) >= parse_duration(interval)
    assert (error == "") is expected, error
    if not expected:
        assert "`cooldown` must not be shorter than `interval`" in error
