"""Shadow mirroring and payload logging see the traffic without ever delaying it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.unit.serving.conftest import ModelDir, Serve

ROWS = [[5.1, 3.5, 1.4, 0.2]]


async def test_requests_are_mirrored_to_the_shadow(serve: Serve, iris_lr: ModelDir) -> None:
    received: list[tuple[str, bytes, dict[str, str]]] = []
    arrived = asyncio.Event()

    async def record(request: web.Request) -> web.Response:
        received.append((request.path, await request.read(), dict(request.headers)))
        if len(received) == 3:
            arrived.set()
        return web.json_response({})

    shadow_app = web.Application()
    shadow_app.router.add_post("/{tail:.*}", record)
    async with TestServer(shadow_app, host="127.0.0.1") as shadow:
        running = await serve(iris_lr, shadow_url=str(shadow.make_url("/")))
        bodies = [{"rows": ROWS}, {"rows": ROWS * 2}]
        ids = []
        for body in bodies:
            response = await running.client.post("/predict", json=body)
            ids.append(response.headers["X-Request-ID"])
        v2 = {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ROWS}]}
        await running.client.post("/v2/models/iris/infer", json=v2)
        await running.client.post("/predict", json={"rows": []})  # refused: not mirrored
        await asyncio.wait_for(arrived.wait(), timeout=30)
    paths = [path for path, _, _ in received]
    assert paths == ["/predict", "/predict", "/v2/models/iris/infer"]
    assert [orjson.loads(body) for _, body, _ in received[:2]] == bodies
    assert [headers["X-Request-ID"] for _, _, headers in received[:2]] == ids
    assert all(headers["X-Mlops-Shadow"] == "1" for _, _, headers in received)


async def test_a_stuck_shadow_drops_copies_and_never_delays_callers(
    serve: Serve, iris_lr: ModelDir
) -> None:
    release = asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    shadow_app = web.Application()
    shadow_app.router.add_post("/{tail:.*}", stuck)
    async with TestServer(shadow_app, host="127.0.0.1") as shadow:
        running = await serve(iris_lr, shadow_url=str(shadow.make_url("/")), shadow_queue_size=1)
        for _ in range(6):
            response = await asyncio.wait_for(
                running.client.post("/predict", json={"rows": ROWS}), timeout=30
            )
            assert response.status == 200
        text = await (await running.client.get("/metrics")).text()
        release.set()
    # At most one copy in flight and one queued; the rest are dropped.
    assert 'channel="shadow",model="iris",' in text
    dropped = [line for line in text.splitlines() if 'outcome="dropped"' in line]
    assert dropped
    assert float(dropped[0].rsplit(" ", 1)[1]) in (4.0, 5.0)


async def test_sampled_payloads_land_in_the_store_as_json_lines(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(
        iris_lr, payload_log_uri=str(tmp_path), payload_log_sample_rate=1.0, model_version="v1"
    )
    ids = []
    for count in (1, 2, 3):
        response = await running.client.post("/predict", json={"rows": ROWS * count})
        ids.append(response.headers["X-Request-ID"])
    assert running.server.payloads is not None
    await running.server.payloads.flush()
    [log_file] = list((tmp_path / "iris" / "v1").rglob("*.jsonl"))
    records: list[dict[str, Any]] = [
        orjson.loads(line) for line in log_file.read_bytes().splitlines()
    ]
    assert [r["request_id"] for r in records] == ids
    assert [len(r["request"]["rows"]) for r in records] == [1, 2, 3]
    assert all(r["response"]["labels"] == ["0"] * len(r["request"]["rows"]) for r in records)


async def test_feedback_joins_the_logged_requests_into_a_training_dataset(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    from mlops_operator.trainer.payloadlog import load_payload_log
    from mlops_operator.trainer.payloadlog_uri import payload_log_dataset_uri

    running = await serve(
        iris_lr,
        payload_log_uri=str(tmp_path),
        payload_log_sample_rate=1.0,
        model_version="1",
        labels_uri=str(tmp_path.parent / f"{tmp_path.name}-labels"),
    )
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    ids = []
    for row in rows:
        response = await running.client.post("/predict", json={"rows": [row]})
        ids.append(response.headers["X-Request-ID"])
    by_name = {"rows": [dict(zip(["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                 rows[0], strict=True))]}  # fmt: skip
    response = await running.client.post("/predict", json=by_name)
    ids.append(response.headers["X-Request-ID"])
    feedback = [
        {"request_id": rid, "labels": [label]} for rid, label in zip(ids, [0, 2, 1, 0], strict=True)
    ]
    assert (await running.client.post("/feedback", json=feedback[:3])).status == 200
    assert running.server.payloads is not None
    await running.server.payloads.flush()
    frame = load_payload_log(payload_log_dataset_uri(tmp_path.as_uri(), target="target"))
    # The fourth request has no label yet: logged, not joined.
    assert frame.values.tolist() == [
        [*row, label] for row, label in zip(rows, [0, 2, 1], strict=True)
    ]


async def test_sampling_follows_the_request_id_so_feedback_matches_its_request(
    serve: Serve, iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(
        iris_lr,
        payload_log_uri=str(tmp_path),
        payload_log_sample_rate=0.5,
        model_version="1",
        labels_uri=str(tmp_path.parent / f"{tmp_path.name}-labels"),
    )
    ids = []
    for _ in range(40):
        response = await running.client.post("/predict", json={"rows": ROWS})
        ids.append(response.headers["X-Request-ID"])
    for rid in ids:
        assert (
            await running.client.post("/feedback", json={"request_id": rid, "labels": [0]})
        ).status == 200
    assert running.server.payloads is not None
    await running.server.payloads.flush()
    records = await asyncio.to_thread(_records, tmp_path)
    requests = {r["request_id"] for r in records if r["endpoint"] == "predict"}
    labelled = {r["request_id"] for r in records if r["endpoint"] == "feedback"}
    assert requests == labelled
    assert 5 <= len(requests) <= 35


def _records(root: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in root.rglob("*.jsonl")
            for line in path.read_bytes().splitlines()]  # fmt: skip
