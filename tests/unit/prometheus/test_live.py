"""`evaluation_window`: how far back a DriftPolicy's evaluation reads the watched deployment's series.

Aspects: the policy's window once the deployment is older than it; the deployment's age
before (a namesake's series from before it are not its traffic: the second `make demo` on one
cluster retrained on the first run's drifted rows); never under the floor a rate needs.
"""

from __future__ import annotations

from mlops_operator.prometheus.live import MIN_WINDOW_SECONDS, evaluation_window


def test_the_window_is_the_policys_once_the_deployment_is_older() -> None:
    assert evaluation_window(60, 3600) == 60


def test_the_window_reaches_back_no_further_than_the_deployment() -> None:
    assert evaluation_window(600, 42.5) == 42.5


def test_a_new_deployments_window_keeps_the_floor() -> None:
    assert evaluation_window(600, 2) == MIN_WINDOW_SECONDS
    assert evaluation_window(600, -1) == MIN_WINDOW_SECONDS  # clocks apart: creation "ahead"
