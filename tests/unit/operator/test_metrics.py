"""The operator's own metrics: controller-runtime's names, results, and the endpoint.

Aspects: each outcome of a handler (return, TemporaryError, PermanentError, any
other exception) lands in its `result` and in the error counters as
controller-runtime counts them; the handler keeps its name (Kopf's handler id);
series exist before the first reconcile; GET /metrics serves them over HTTP.
"""

from __future__ import annotations

import aiohttp
import kopf
import pytest

from mlops_operator.runtime import metrics

CONTROLLER = "unittestkind"


def _value(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, {"controller": CONTROLLER, **labels})
    return value if value is not None else 0.0


def _snapshot() -> dict[str, float]:
    return {
        "success": _value("controller_runtime_reconcile_total", result="success"),
        "error": _value("controller_runtime_reconcile_total", result="error"),
        "requeue_after": _value("controller_runtime_reconcile_total", result="requeue_after"),
        "errors": _value("controller_runtime_reconcile_errors_total"),
        "terminal": _value("controller_runtime_terminal_reconcile_errors_total"),
        "observed": _value("controller_runtime_reconcile_time_seconds_count"),
    }


@metrics.reconciler(CONTROLLER)
async def _handler(outcome: BaseException | None = None) -> None:
    if outcome is not None:
        raise outcome


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (None, {"success": 1}),
        (kopf.TemporaryError("later", delay=1), {"requeue_after": 1}),
        (kopf.PermanentError("never"), {"error": 1, "errors": 1, "terminal": 1}),
        (RuntimeError("bug"), {"error": 1, "errors": 1}),
    ],
    ids=["success", "temporary", "permanent", "unexpected"],
)
async def test_each_outcome_is_counted_as_controller_runtime_does(
    outcome: BaseException | None, expected: dict[str, int]
) -> None:
    before = _snapshot()
    if outcome is None:
        await _handler()
    else:
        with pytest.raises(type(outcome)):
            await _handler(outcome)
    after = _snapshot()
    delta = {key: after[key] - before[key] for key in after}
    assert delta == {**dict.fromkeys(before, 0), **expected, "observed": 1}
    assert _value("controller_runtime_active_workers") == 0


def test_the_handler_keeps_its_name_for_kopf() -> None:
    assert _handler.__name__ == "_handler"
    assert _handler.__wrapped__.__name__ == "_handler"  # type: ignore[attr-defined]


async def _never_run() -> None:
    raise AssertionError("only decorated")


def test_series_exist_before_the_first_reconcile() -> None:
    metrics.reconciler("neverrun")(_never_run)
    zero = {
        ("controller_runtime_reconcile_total", "success"),
        ("controller_runtime_reconcile_total", "error"),
        ("controller_runtime_reconcile_errors_total", None),
        ("controller_runtime_terminal_reconcile_errors_total", None),
        ("controller_runtime_reconcile_time_seconds_count", None),
        ("controller_runtime_active_workers", None),
    }
    for name, result in zero:
        labels = {"controller": "neverrun"} | ({"result": result} if result else {})
        assert metrics.REGISTRY.get_sample_value(name, labels) == 0, name


async def test_the_endpoint_serves_the_metrics_over_http() -> None:
    await _handler()
    runner = await metrics.serve("127.0.0.1", 0)
    try:
        host, port = runner.addresses[0][:2]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/metrics") as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
    finally:
        await runner.cleanup()
    assert (
        f'controller_runtime_reconcile_total{{controller="{CONTROLLER}",result="success"}}' in text
    )
    assert "controller_runtime_reconcile_time_seconds_bucket" in text
    assert "process_cpu_seconds_total" in text
    assert "_created" not in text
