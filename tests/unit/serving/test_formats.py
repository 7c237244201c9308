"""Every request format real clients send, against real models: same rows, same answers.

Aspects: KServe V1 (``:predict`` with ``instances`` or columnar ``inputs``), MLflow's four
``/invocations`` formats and ``/predict`` with ``instances`` give the predictions the Open
Inference Protocol gives for the same rows, for a numeric model and for the trainer's
categorical export (BYTES inputs), and equal to the card's parity sample; validation,
metrics and feedback ids work the same in every format; the V2 envelope keys
(``model_name``, ``model_version``) are accepted and checked against the path; the binary
tensor data extension decodes requests (FP32 and BYTES) and encodes responses under the
same validation, and its content-type errors say what is expected.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.unit.serving.conftest import ModelDir, Running, Serve

HEADER = "Inference-Header-Content-Length"


def _card_rows(model: ModelDir) -> list[list[Any]]:
    return model.card.parity.sample_inputs


def _v2_request(model: ModelDir, rows: list[list[Any]]) -> dict[str, Any]:
    """One tensor per ONNX input, built from rows in card feature order."""
    features = model.card.signature.features
    names = [f.name for f in features]
    inputs = []
    for spec in model.card.signature.inputs:
        members = sorted((f for f in features if f.input == spec.name), key=lambda f: f.index)
        positions = [names.index(f.name) for f in members]
        inputs.append(
            {
                "name": spec.name,
                "shape": [len(rows), len(positions)],
                "datatype": {"float32": "FP32", "string": "BYTES"}[spec.dtype],
                "data": [[row[p] for p in positions] for row in rows],
            }
        )
    return {"inputs": inputs}


async def _post(running: Running, path: str, body: Any) -> dict[str, Any]:
    response = await running.client.post(path, json=body)
    payload: dict[str, Any] = await response.json()
    assert response.status == 200, payload
    return payload


async def _v2_labels(running: Running, model: ModelDir, rows: list[list[Any]]) -> list[Any]:
    body = await _post(
        running, f"/v2/models/{model.card.model_name}/infer", _v2_request(model, rows)
    )
    label = next(o for o in body["outputs"] if o["name"] == "label")
    return list(label["data"])


@pytest.mark.parametrize("model_fixture", ["trained_iris", "trained_categorical"])
async def test_every_format_predicts_what_v2_predicts(
    serve: Serve, model_fixture: str, request: pytest.FixtureRequest
) -> None:
    model: ModelDir = request.getfixturevalue(model_fixture)
    running = await serve(model)
    name = model.card.model_name
    rows = _card_rows(model)
    names = [f.name for f in model.card.signature.features]
    records = [dict(zip(names, row, strict=True)) for row in rows]
    reordered = list(reversed(names))
    expected = await _v2_labels(running, model, rows)
    assert [str(v) for v in expected] == model.card.parity.sample_outputs
    columns = {n: [row[i] for row in rows] for i, n in enumerate(names)}
    bodies = {
        f"/v1/models/{name}:predict": [
            {"instances": rows},
            {"instances": records},
            {"inputs": columns},
        ],
        "/invocations": [
            {"dataframe_split": {"columns": names, "data": rows}},
            {
                "dataframe_split": {
                    "columns": reordered,
                    "data": [[r[n] for n in reordered] for r in records],
                    "index": list(range(len(rows))),
                }
            },
            {"dataframe_records": records},
            {"instances": rows},
            {"inputs": columns},
            {"inputs": rows, "params": {}},
        ],
    }
    for path, variants in bodies.items():
        for body in variants:
            answer = await _post(running, path, body)
            assert answer["predictions"] == expected, (path, body)
            assert answer["request_id"]
    predicted = await _post(running, "/predict", {"instances": records})
    assert predicted["labels"] == model.card.parity.sample_outputs


async def test_formats_share_validation_metrics_and_feedback(
    serve: Serve, trained_iris: ModelDir, tmp_path: Path
) -> None:
    running = await serve(trained_iris, max_rows=10, labels_uri=str(tmp_path / "labels"))
    client = running.client
    name = trained_iris.card.model_name
    refusals = {
        f"/v1/models/{name}:predict": (
            {"instances": [[5.1, "3.5", 1.4, 0.2]]},
            "row 0, feature 'sepal width (cm)': got a string; expected numbers",
        ),
        "/invocations": (
            {"dataframe_records": [{"sepal length (cm)": 5.1}]},
            "row 0 does not have the model's features: missing ['sepal width (cm)'",
        ),
    }
    for path, (body, message) in refusals.items():
        response = await client.post(path, json=body)
        assert response.status == 400
        assert message in (await response.json())["error"]
    too_many = await client.post("/invocations", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 11})
    assert too_many.status == 413
    two_formats = await client.post(
        "/invocations", json={"instances": [[1, 2, 3, 4]], "dataframe_records": []}
    )
    assert (
        "expected exactly one of ['dataframe_split', 'dataframe_records'"
        in (await two_formats.json())["error"]
    )
    other = await client.post("/v1/models/other:predict", json={"instances": [[1, 2, 3, 4]]})
    assert other.status == 404
    # Feedback ids answer in every format.
    answer = await _post(running, "/invocations", {"instances": [[6.7, 3.0, 5.2, 2.3]]})
    feedback = await client.post(
        "/feedback", json={"request_id": answer["request_id"], "labels": answer["predictions"]}
    )
    assert (await feedback.json())["accepted"] == 1
    ready = await client.get(f"/v1/models/{name}")
    assert (await ready.json())["ready"] is True
    assert (await client.get("/ping")).status == 200
    scrape = (await (await client.get("/metrics")).text()).splitlines()
    for endpoint, outcome in (
        ("v1_predict", "invalid_input"),
        ("invocations", "too_large"),
        ("invocations", "ok"),
    ):
        assert any(
            line.startswith("mlops_requests_total{")
            and f'endpoint="{endpoint}"' in line
            and f'outcome="{outcome}"' in line
            and not line.endswith(" 0.0")
            for line in scrape
        ), (endpoint, outcome)


async def test_envelope_keys_are_accepted_and_checked(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr, model_version="v3")
    client = running.client
    request = _v2_request(iris_lr, _card_rows(iris_lr)[:2])
    accepted = await client.post(
        "/v2/models/iris/infer", json={**request, "model_name": "iris", "model_version": "v3"}
    )
    assert accepted.status == 200
    cases = [
        ("/v2/models/iris/infer", {"model_name": "other"}, 400, "model_name 'other' in the body"),
        (
            "/v2/models/iris/versions/v3/infer",
            {"model_version": "v4"},
            400,
            "model_version 'v4' in the body disagrees with the version 'v3' in the path",
        ),
        ("/v2/models/iris/infer", {"model_version": "v4"}, 404, "version 'v4' of 'iris'"),
        ("/v2/models/iris/infer", {"model_name": 3}, 400, '"model_name" must be a string'),
    ]
    for path, envelope, status, message in cases:
        response = await client.post(path, json={**request, **envelope})
        assert response.status == status, envelope
        assert message in (await response.json())["error"]
    inner = json.loads(json.dumps(request))
    inner["inputs"][0]["model_name"] = "iris"
    refused = await client.post("/v2/models/iris/infer", json=inner)
    assert refused.status == 400
    assert "inputs[0] has unexpected keys ['model_name']" in (await refused.json())["error"]


def _binary_body(header: dict[str, Any], chunks: list[bytes]) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    return text + b"".join(chunks), {
        HEADER: str(len(text)),
        "Content-Type": "application/octet-stream",
    }


def _bytes_elements(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def _split_response(data: bytes, header_length: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    length = int(header_length)
    header = json.loads(data[:length])
    chunks, offset = {}, length
    for output in header["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            chunks[output["name"]] = data[offset : offset + size]
            offset += size
    assert offset == len(data)
    return header, chunks


async def test_binary_tensors_in_and_out(serve: Serve, trained_categorical: ModelDir) -> None:
    running = await serve(trained_categorical)
    rows = _card_rows(trained_categorical)
    request = _v2_request(trained_categorical, rows)
    expected = await _v2_labels(running, trained_categorical, rows)
    chunks = []
    for tensor in request["inputs"]:
        values = [v for row in tensor.pop("data") for v in row]
        if tensor["datatype"] == "BYTES":
            chunk = _bytes_elements(values)
        else:
            chunk = np.asarray(values, dtype="<f4").tobytes()
        tensor["parameters"] = {"binary_data_size": len(chunk)}
        chunks.append(chunk)
    request["parameters"] = {"binary_data_output": True}
    request["outputs"] = [
        {"name": "label"},
        {"name": "probabilities", "parameters": {"binary_data": False}},
    ]
    data, headers = _binary_body(request, chunks)
    response = await running.client.post("/v2/models/churn/infer", data=data, headers=headers)
    raw = await response.read()
    assert response.status == 200, raw[:300]
    assert response.headers["Content-Type"] == "application/octet-stream"
    header, binary = _split_response(raw, response.headers[HEADER])
    label = next(o for o in header["outputs"] if o["name"] == "label")
    assert label["datatype"] == "BYTES"
    count = label["shape"][0]
    decoded, offset = [], 0
    for _ in range(count):
        (length,) = struct.unpack_from("<I", binary["label"], offset)
        decoded.append(binary["label"][offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    assert decoded == expected
    probabilities = next(o for o in header["outputs"] if o["name"] == "probabilities")
    assert "data" in probabilities
    assert "probabilities" not in binary
    assert header["request_id"] == response.headers["X-Request-ID"]


async def test_binary_numeric_output_and_refusals(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr)
    client = running.client
    rows = _card_rows(iris_lr)[:3]
    values = np.asarray(rows, dtype="<f4")
    header = {
        "inputs": [
            {
                "name": "X",
                "shape": [3, 4],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 48},
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
    }
    data, headers = _binary_body(header, [values.tobytes()])
    response = await client.post("/v2/models/iris/infer", data=data, headers=headers)
    reply, binary = _split_response(await response.read(), response.headers[HEADER])
    assert [o["name"] for o in reply["outputs"]] == ["probabilities"]
    probabilities = np.frombuffer(binary["probabilities"], dtype="<f4").reshape(3, 3)
    np.testing.assert_allclose(
        probabilities, iris_lr.card.parity.sample_probabilities[:3], atol=1e-5
    )
    nan = values.copy()
    nan[1, 2] = np.nan
    bad = {
        "short": ([values.tobytes()[:40]], "binary_data_size is 48 but only 40 bytes"),
        "long": ([values.tobytes() + b"xx"], "2 bytes of binary data beyond"),
        "nan": ([nan.tobytes()], "row 1, feature 'petal_length': NaN"),
    }
    for case, (chunks, message) in bad.items():
        data, headers = _binary_body(header, chunks)
        refused = await client.post("/v2/models/iris/infer", data=data, headers=headers)
        assert refused.status == 400, case
        assert message in (await refused.json())["error"], case
    body = json.dumps(header).encode() + values.tobytes()
    bad_headers = [
        ({"Content-Type": "application/octet-stream"}, 415, f"needs the {HEADER} header"),
        ({HEADER: "0", "Content-Type": "application/json"}, 400, f"{HEADER} is '0'"),
        ({HEADER: str(len(body) + 1)}, 400, "between 1 and the body's"),
        (
            {HEADER: "12", "Content-Type": "text/plain"},
            415,
            "send application/json or application/octet-stream",
        ),
        ({"Content-Type": "application/json"}, 400, f"binary tensor data needs the {HEADER}"),
    ]
    for extra, status, message in bad_headers:
        refused = await client.post("/v2/models/iris/infer", data=body, headers=extra)
        assert refused.status == status, extra
        assert message in (await refused.json())["error"], extra
    elsewhere = await client.post("/predict", data=body, headers={HEADER: "12"})
    assert "only accepted by /v2/models/{name}/infer" in (await elsewhere.json())["error"]
    assert (await client.get("/v2/health/ready")).status == 200
    metadata = await (await client.get("/v2")).json()
    assert "binary_tensor_data" in metadata["extensions"]


async def test_binary_strings_must_be_utf8(serve: Serve, trained_categorical: ModelDir) -> None:
    running = await serve(trained_categorical)
    request = _v2_request(trained_categorical, _card_rows(trained_categorical)[:1])
    plan = next(t for t in request["inputs"] if t["name"] == "plan")
    plan.pop("data")
    chunk = struct.pack("<I", 2) + b"\xff\xfe"
    plan["parameters"] = {"binary_data_size": len(chunk)}
    data, headers = _binary_body(request, [chunk])
    refused = await running.client.post("/v2/models/churn/infer", data=data, headers=headers)
    assert refused.status == 400
    assert "input 'plan': BYTES element 0 is not valid UTF-8" in (await refused.json())["error"]
