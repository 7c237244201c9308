"""Exact shares of traffic (canary forwarding, shadow mirroring) and the request deadline.

Aspects: `TrafficShare` takes exactly its percent of any 100 consecutive calls;
a shadow gets exactly ``shadow_percent`` of the requests; a champion forwards
exactly ``canary_percent`` of them to a real canary server and relays its
answers, and answers itself when the canary is down; a request past ``timeout_ms`` gets a 504 naming the
deadline while the server keeps serving; the deadline is armed only once an answer has to
wait, and then holds from the request's arrival as before.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from mlops_operator.serving.app import InferenceServer
from mlops_operator.serving.binary import HEADER_LENGTH
from mlops_operator.serving.sidechannels import TrafficShare
from tests.unit.serving.conftest import ModelDir, Running, Serve

ROWS = [[5.1, 3.5, 1.4, 0.2]]
time_now = time.perf_counter  # the clock `started` is read from


@pytest.mark.parametrize("percent", [0, 1, 3, 10, 25, 33, 50, 99, 100])
def test_a_share_takes_exactly_its_percent_of_any_hundred_calls(percent: int) -> None:
    share = TrafficShare(percent)
    taken = [share.take() for _ in range(1000)]
    assert all(sum(taken[i : i + 100]) == percent for i in range(0, 1000, 100))
    assert sum(taken) == 10 * percent


def _count(running: Running, name: str, **labels: str) -> float:
    """The sum of the samples of counter `name` with `labels`, as /metrics shows them."""
    families = text_string_to_metric_families(running.server.metrics.render().decode())
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == f"{name}_total"
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _side_channel(running: Running, channel: str, outcome: str) -> float:
    return _count(running, "mlops_side_channel", channel=channel, outcome=outcome)


def _requests(running: Running, outcome: str) -> float:
    return _count(running, "mlops_requests", outcome=outcome)


async def _until(condition: Any, within: float = 30) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  # a metric offers no event to await
            await asyncio.sleep(0.01)


async def test_a_shadow_gets_exactly_its_percent(serve: Serve, iris_lr: ModelDir) -> None:
    received: list[str] = []

    async def record(request: web.Request) -> web.Response:
        received.append(request.headers["X-Request-ID"])
        return web.json_response({})

    shadow_app = web.Application()
    shadow_app.router.add_post("/{tail:.*}", record)
    async with TestServer(shadow_app, host="127.0.0.1") as shadow:
        running = await serve(iris_lr, shadow_url=str(shadow.make_url("/")), shadow_percent=25)
        for _ in range(40):
            assert (await running.client.post("/predict", json={"rows": ROWS})).status == 200
        await _until(lambda: _side_channel(running, "shadow", "sent") >= 10)
    assert len(received) == 10
    assert _side_channel(running, "shadow", "dropped") == 0


async def _canary_and_champion(
    serve: Serve, model: ModelDir, percent: int
) -> tuple[Running, Running]:
    canary = await serve(model, model_version="2")
    url = str(canary.client.make_url("/"))
    champion = await serve(model, model_version="1", canary_url=url, canary_percent=percent)
    return canary, champion


async def test_the_champion_forwards_exactly_the_canary_share(
    serve: Serve, iris_lr: ModelDir
) -> None:
    canary, champion = await _canary_and_champion(serve, iris_lr, 10)
    versions: Counter[str] = Counter()
    for index in range(200):
        if index % 2:
            response = await champion.client.post("/predict", json={"rows": ROWS})
        else:
            v2 = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ROWS}]}
            response = await champion.client.post("/v2/models/iris/infer", json=v2)
        assert response.status == 200
        body = await response.json()
        assert response.headers["X-Model-Version"] == body["model_version"]
        versions[body["model_version"]] += 1

    assert versions == {"1": 180, "2": 20}
    assert _side_channel(champion, "canary", "forwarded") == 20
    # Each version counts only what it answered: the analysis compares like with like.
    assert _requests(champion, "ok") == 180
    assert _requests(canary, "ok") == 20


async def test_a_canary_that_is_down_leaves_the_champion_answering(
    serve: Serve, iris_lr: ModelDir
) -> None:
    async with TestServer(web.Application(), host="127.0.0.1") as gone:
        url = str(gone.make_url("/"))
    champion = await serve(iris_lr, model_version="1", canary_url=url, canary_percent=100)

    response = await champion.client.post("/predict", json={"rows": ROWS})

    assert response.status == 200
    assert (await response.json())["model_version"] == "1"
    assert _side_channel(champion, "canary", "failed") == 1


async def test_a_request_past_the_deadline_gets_a_504_and_the_server_keeps_serving(
    serve: Serve, iris_lr: ModelDir
) -> None:
    # A batch that waits 400 ms for company cannot answer within a 50 ms deadline.
    slow = await serve(iris_lr, timeout_ms=50, batch_delay_ms=400)

    response = await slow.client.post("/predict", json={"rows": ROWS})

    assert response.status == 504
    body = await response.json()
    assert body["error"] == (
        "no answer within the server's deadline of 50 ms (spec.server.timeoutMs)"
    )
    assert (await slow.client.get("/v2/health/ready")).status == 200
    assert _requests(slow, "timeout") == 1
    patient = await serve(iris_lr, timeout_ms=5000, batch_delay_ms=400)
    assert (await patient.client.post("/predict", json={"rows": ROWS})).status == 200


async def test_the_deadline_is_armed_only_once_the_answer_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    within = InferenceServer._within_deadline
    armed: list[float] = []
    timeout = asyncio.timeout

    def counted(delay: float | None) -> asyncio.Timeout:
        assert delay is not None
        armed.append(delay)
        return timeout(delay)

    monkeypatch.setattr(asyncio, "timeout", counted)

    async def at_once() -> str:
        return "answered"

    async def waiting(seconds: float, result: str = "waited") -> str:
        await asyncio.sleep(seconds)
        await asyncio.sleep(0)  # resumed after the first wait, as a second one would be
        return result

    # Answered without waiting: no timer, even with no time left.
    assert await within(at_once(), 0.05, time_now() - 10) == "answered"  # type: ignore[arg-type]
    assert armed == []
    # Waiting within the deadline: armed once, with what is left of it.
    assert await within(waiting(0.01), 5.0, time_now() - 1.0) == "waited"  # type: ignore[arg-type]
    assert len(armed) == 1
    assert 3.0 < armed[0] <= 4.0
    # Waiting past it, or with none left by the first wait: TimeoutError (the 504).
    with pytest.raises(TimeoutError):
        await within(waiting(10), 0.05, time_now())  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await within(waiting(0), 0.05, time_now() - 1.0)  # type: ignore[arg-type]

    # A failure after the wait is the answer's own, and a cancellation reaches the answer.
    async def failing() -> str:
        await asyncio.sleep(0)
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await within(failing(), 5.0, time_now())  # type: ignore[arg-type]
    cancelled = asyncio.Event()

    async def cancellable() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    task = asyncio.create_task(within(cancellable(), 30.0, time_now()))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_a_canary_past_half_the_deadline_leaves_the_champion_answering(
    serve: Serve, iris_lr: ModelDir
) -> None:
    canary = await serve(iris_lr, model_version="2", batch_delay_ms=2000)
    url = str(canary.client.make_url("/"))
    champion = await serve(
        iris_lr, model_version="1", canary_url=url, canary_percent=100, timeout_ms=1000
    )

    response = await champion.client.post("/predict", json={"rows": ROWS})

    assert response.status == 200, await response.text()
    assert (await response.json())["model_version"] == "1"
    assert _side_channel(champion, "canary", "timeout") == 1
    assert _requests(champion, "timeout") == 0
    assert _requests(champion, "ok") == 1


async def test_binary_tensor_requests_are_forwarded_as_they_came(
    serve: Serve, iris_lr: ModelDir
) -> None:
    _, champion = await _canary_and_champion(serve, iris_lr, 100)
    data = np.asarray(ROWS, dtype="<f4").tobytes()
    header = {
        "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32",
                    "parameters": {"binary_data_size": len(data)}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
    }  # fmt: skip
    text = json.dumps(header).encode()

    response = await champion.client.post(
        "/v2/models/iris/infer",
        data=text + data,
        headers={HEADER_LENGTH: str(len(text)), "Content-Type": "application/octet-stream"},
    )

    assert response.status == 200, await response.text()
    assert response.headers["X-Model-Version"] == "2"
    length = int(response.headers[HEADER_LENGTH])
    body = await response.read()
    answer = json.loads(body[:length])
    (label,) = answer["outputs"]
    assert len(body) == length + label["parameters"]["binary_data_size"]
