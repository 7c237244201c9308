"""Strict input handling: every malformed request is a 4xx that says what was wrong.

Aspects: body format and JSON, content type, body size, rows per request, row
shape and feature names, dtypes, NaN and infinity per the card's policy, the
Open Inference Protocol's names, datatypes and shapes; the refusal is counted
by outcome. The property tests (hypothesis) send arbitrary JSON and arbitrary
bytes to a real server and require that none of it yields a 5xx.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_operator.serving.app import InferenceServer
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.settings import ServingSettings
from tests.unit.serving.conftest import ModelDir, Serve

ROW = [5.1, 3.5, 1.4, 0.2]


def v2(data: Any, *, shape: Any = (1, 4), datatype: Any = "FP32", name: Any = "X") -> Any:
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}]}


PREDICT_CASES = [
    ([ROW], 400, "expected a JSON object"),
    ({"rows": [ROW], "instances": [ROW]}, 400, "expected exactly one of ['rows', 'instances']"),
    ({"inputs": [ROW]}, 400, "expected exactly one of ['rows', 'instances']"),
    ({"rows": []}, 400, "non-empty list of rows"),
    ({"rows": ROW}, 400, "row 0 is a number; expected a list of 4 values"),
    ({"rows": [ROW[:3]]}, 400, "row 0 has 3 values; expected 4"),
    ({"rows": [ROW, [*ROW, 1.0]]}, 400, "row 1 has 5 values; expected 4"),
    ({"rows": [["5.1", 3.5, 1.4, 0.2]]}, 400, "feature 'sepal_length': got a string"),
    ({"rows": [[5.1, True, 1.4, 0.2]]}, 400, "feature 'sepal_width': got a boolean"),
    ({"rows": [[5.1, 3.5, None, 0.2]]}, 400, "feature 'petal_length': got null"),
    ({"rows": [[5.1, 3.5, [1.4], 0.2]]}, 400, "got a list; expected numbers"),
    ({"rows": [[5.1, 3.5, 1.4, 1e39]]}, 400, "feature 'petal_width': value out of range"),
    (
        {"rows": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}]},
        400,
        "missing ['petal_width'], unexpected []",
    ),
    (
        {
            "rows": [
                dict(zip(["a", "sepal_width", "petal_length", "petal_width"], ROW, strict=True))
            ]
        },
        400,
        "missing ['sepal_length'], unexpected ['a']",
    ),
    ({"rows": [ROW] * 11}, 413, "11 rows in one request; at most 10"),
]

V2_CASES = [
    ({"inputs": []}, 400, '"inputs" must be a non-empty list'),
    ({"inputs": [], "extra": 1}, 400, "unexpected keys ['extra']"),
    ({"id": 5, "inputs": []}, 400, '"id" must be a string'),
    (v2(ROW, name="input"), 400, "inputs ['input'] do not match the model's inputs ['X']"),
    (v2(ROW, datatype="FP64"), 400, "datatype FP64; expected FP32"),
    (v2(ROW, shape=(1, 3)), 400, "shape [1, 3]; expected [-1, 4]"),
    (v2(ROW, shape=(4,)), 400, "shape [4]; expected [-1, 4]"),
    (v2(ROW, shape=(1, "4")), 400, "shape must be a non-empty list of non-negative integers"),
    (v2(ROW, shape=(2, 4)), 400, "data does not hold 8 scalars for shape [2, 4]"),
    (v2([ROW, ROW[:3]], shape=(2, 4)), 400, "data does not hold 8 scalars"),
    (v2([1, 2, "3", 4]), 400, "got a string in data; expected numbers (FP32)"),
    (v2(ROW, shape=(0, 4)), 400, "batch dimension must be at least 1"),
    (v2(ROW * 11, shape=(11, 4)), 413, "11 rows in one request; at most 10"),
    ({**v2(ROW), "outputs": [{"name": "p"}]}, 400, "requested outputs ['p'] are not outputs"),
]


@pytest.mark.parametrize(("body", "status", "message"), PREDICT_CASES)
async def test_predict_refusals(
    serve: Serve, iris_lr: ModelDir, body: Any, status: int, message: str
) -> None:
    running = await serve(iris_lr, max_rows=10)
    response = await running.client.post("/predict", json=body)
    payload = await response.json()
    assert response.status == status
    assert message in payload["error"]


@pytest.mark.parametrize(("body", "status", "message"), V2_CASES)
async def test_v2_refusals(
    serve: Serve, iris_lr: ModelDir, body: Any, status: int, message: str
) -> None:
    running = await serve(iris_lr, max_rows=10)
    response = await running.client.post("/v2/models/iris/infer", json=body)
    payload = await response.json()
    assert response.status == status
    assert message in payload["error"]


async def test_missing_values_follow_the_cards_policy(
    serve: Serve, iris_imputing: ModelDir
) -> None:
    running = await serve(iris_imputing)
    accepted = await running.client.post("/predict", json={"rows": [[5.1, None, 1.4, 0.2]]})
    assert accepted.status == 200
    infinite = await running.client.post("/predict", json={"rows": [[5.1, 3.5, 1e39, 0.2]]})
    assert infinite.status == 400
    assert "expected a finite number" in (await infinite.json())["error"]
    flat = await running.client.post("/v2/models/iris-imputing/infer", json=v2([5.1, None, 1, 2]))
    assert flat.status == 200


@pytest.mark.parametrize(
    ("data", "headers", "status", "message"),
    [
        (b"{", {"Content-Type": "application/json"}, 400, "the body is not valid JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "the body is not valid JSON"),
        (
            b"rows=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "send application/json",
        ),
        (
            b'{"rows": [[NaN, 1, 2, 3]]}',
            {"Content-Type": "application/json"},
            400,
            "the body is not valid JSON",
        ),
        (b" " * 2048, {"Content-Type": "application/json"}, 413, "at most 1024 are accepted"),
    ],
)
async def test_transport_refusals(
    serve: Serve,
    iris_lr: ModelDir,
    data: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    running = await serve(iris_lr, max_body_bytes=1024)
    response = await running.client.post("/predict", data=data, headers=headers)
    assert response.status == status
    assert message in (await response.json())["error"]


async def test_refusals_are_counted_by_outcome(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr)
    await running.client.post("/predict", json={"rows": []})
    await running.client.post("/predict", data=b"x", headers={"Content-Type": "text/plain"})
    text = await (await running.client.get("/metrics")).text()
    assert 'outcome="invalid_input"} 1.0' in text
    assert 'outcome="unsupported_media_type"} 1.0' in text


# -- property tests against a server running in a thread --------------------------------


@pytest.fixture(scope="module")
def threaded_server(iris_lr: ModelDir) -> Iterator[int]:
    """A real server on a loopback port, run by its own loop in a thread."""
    settings_ = ServingSettings(model_dir=str(iris_lr.path), max_rows=50, max_body_bytes=65536)
    model = load_model(settings_.model_dir, threads=1)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port: list[int] = []
    stop = asyncio.Event()

    async def main() -> None:
        runner = web.AppRunner(InferenceServer(model, settings_).application())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(30)
    yield port[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)


def _post(port: int, path: str, data: bytes, content_type: str = "application/json") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=data, headers={"Content-Type": content_type})
        response = connection.getresponse()
        payload = orjson.loads(response.read())
        assert "request_id" in payload
        if response.status != 200:
            assert payload["error"]
        return response.status
    finally:
        connection.close()


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=40,
)
rows = st.lists(st.lists(scalars, min_size=3, max_size=5), min_size=0, max_size=4)
keyed_rows = st.lists(
    st.dictionaries(
        st.sampled_from(["sepal_length", "sepal_width", "petal_length", "petal_width", "x"]),
        scalars,
    ),
    max_size=3,
)
predict_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"rows": st.one_of(rows, keyed_rows, json_values)}),
)
tensors = st.fixed_dictionaries(
    {
        "name": st.one_of(st.just("X"), st.text(max_size=3)),
        "shape": st.one_of(st.lists(st.integers(-1, 6), max_size=3), json_values),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "x"]),
        "data": st.one_of(st.lists(scalars, max_size=12), rows, json_values),
    }
)
v2_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"inputs": st.lists(tensors, max_size=2)},
        optional={"id": json_values, "outputs": json_values, "parameters": json_values},
    ),
)
property_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@property_settings
@given(body=predict_bodies)
def test_no_predict_body_yields_a_server_error(threaded_server: int, body: Any) -> None:
    assert _post(threaded_server, "/predict", json.dumps(body).encode()) < 500


@property_settings
@given(body=v2_bodies)
def test_no_v2_body_yields_a_server_error(threaded_server: int, body: Any) -> None:
    assert _post(threaded_server, "/v2/models/iris/infer", json.dumps(body).encode()) < 500


@property_settings
@given(data=st.binary(max_size=256), content_type=st.sampled_from(["application/json", "x/y"]))
def test_no_byte_string_yields_a_server_error(
    threaded_server: int, data: bytes, content_type: str
) -> None:
    for path in ("/predict", "/v2/models/iris/infer", "/feedback"):
        assert _post(threaded_server, path, data, content_type) < 500
