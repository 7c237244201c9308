"""Triggers the API server admits but that cannot work here are said at once, never ignored.

Aspects: a schedule out of its ranges is refused at admission with a message naming
the field; one that is well-formed but can never fire (30 February) gets `Ready`
False with reason ``InvalidSchedule`` and a Warning Event, while the policy keeps
evaluating its other triggers; custom PromQL triggers with no Prometheus anywhere get `Ready` False
with reason ``PrometheusRequired`` and a Warning Event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.driftpolicy.conftest import condition, evaluations, policy, status_of
from tests.integration.operator.conftest import RunningOperator, operator_for_test
from tests.kube import get_json, kubectl, wait_for


@pytest.fixture
def operator(
    kubeconfig: Path, restricted: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningOperator]:
    """The operator for the test namespace, told of no Prometheus at all."""
    monkeypatch.delenv("MLOPS_PROMETHEUS_URL", raising=False)
    with operator_for_test(kubeconfig, restricted, tmp_path / "operator.log") as running:
        yield running


def _events(kubeconfig: Path, namespace: str, name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        kubeconfig, "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )["items"]
    return items


def test_a_schedule_out_of_range_is_refused_naming_the_field(
    kubeconfig: Path, restricted: str, model_deployment: str
) -> None:
    refused = kubectl(
        kubeconfig, "apply", "-f", "-", check=False,
        stdin=json.dumps(policy(restricted, "bad-minute", {"schedule": "61 * * * *"})),
    )  # fmt: skip
    assert refused.returncode != 0
    assert "spec.triggers.schedule" in refused.stderr
    assert "minute 0-59" in refused.stderr


def test_a_schedule_that_never_fires_is_reported_at_once(
    kubeconfig: Path, restricted: str, model_deployment: str, operator: RunningOperator
) -> None:
    namespace = restricted
    triggers = {"schedule": "0 0 30 2 *", "predictionDrift": {"minSamples": 10}}
    kubectl(kubeconfig, "apply", "-f", "-",
            stdin=json.dumps(policy(namespace, "leap", triggers)))  # fmt: skip

    warning = wait_for(
        lambda: [e for e in _events(kubeconfig, namespace, "leap")
                 if e["reason"] == "InvalidSchedule"],
        timeout=60, what="the InvalidSchedule Event",
    )[0]  # fmt: skip
    assert warning["type"] == "Warning"
    assert "never fires" in warning["message"]
    status = evaluations(kubeconfig, namespace, "leap", 1)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSchedule")
    assert "spec.triggers.schedule" in ready["message"]
    # The policy still evaluates its other triggers (here: no server, so no data yet).
    assert condition(status, "DriftDetected")["reason"] == "SourceUnreachable"


def test_custom_triggers_without_a_prometheus_are_reported(
    kubeconfig: Path, restricted: str, model_deployment: str, operator: RunningOperator
) -> None:
    namespace = restricted
    custom = [{"name": "latency", "query": "vector(1)", "threshold": 0.5}]
    kubectl(kubeconfig, "apply", "-f", "-",
            stdin=json.dumps(policy(namespace, "promql", {"custom": custom})))  # fmt: skip

    wait_for(
        lambda: [e for e in _events(kubeconfig, namespace, "promql")
                 if e["reason"] == "PrometheusRequired" and e["type"] == "Warning"],
        timeout=60, what="the PrometheusRequired Event",
    )  # fmt: skip
    status = wait_for(
        lambda: (s := status_of(kubeconfig, namespace, "promql")).get("lastEvaluationTime") and s,
        timeout=60, what="an evaluation",
    )  # fmt: skip
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusRequired")
    assert "latency" in ready["message"]
