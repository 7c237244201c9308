"""The HTTP surface on a real model: parity, both protocols, metadata, probes, ids and versions.

Aspects: predictions through /predict (list rows and object rows) and through the
Open Inference Protocol equal the card's parity sample; the common V2 answer, written
from byte templates, is the JSON the general path serialises; every response carries
the model version and a request id; metadata and readiness follow KServe V2;
paths naming another model or version are 404.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlops_operator.serving.model import V2_DATATYPES
from tests.unit.serving.conftest import IRIS_FEATURES, ModelDir, Serve


@pytest.mark.parametrize(
    "model_fixture", ["trained_iris", "iris_lr", "iris_forest", "iris_imputing"]
)
async def test_predict_matches_the_cards_parity_sample(
    serve: Serve, model_fixture: str, request: pytest.FixtureRequest
) -> None:
    model: ModelDir = request.getfixturevalue(model_fixture)
    running = await serve(model)
    parity = model.card.parity
    response = await running.client.post("/predict", json={"rows": parity.sample_inputs})
    body = await response.json()
    assert response.status == 200, body
    assert body["labels"] == parity.sample_outputs
    assert parity.sample_probabilities is not None
    np.testing.assert_allclose(body["probabilities"], parity.sample_probabilities, atol=1e-5)
    assert body["classes"] == model.card.signature.classes


async def test_predict_accepts_rows_keyed_by_feature_name(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr)
    rows = [dict(zip(IRIS_FEATURES, row, strict=True)) for row in iris_lr.card.parity.sample_inputs]
    response = await running.client.post("/predict", json={"rows": rows})
    assert (await response.json())["labels"] == iris_lr.card.parity.sample_outputs


async def test_regression_predictions_match_parity(
    serve: Serve, diabetes_regression: ModelDir
) -> None:
    running = await serve(diabetes_regression)
    parity = diabetes_regression.card.parity
    response = await running.client.post("/predict", json={"rows": parity.sample_inputs})
    body = await response.json()
    np.testing.assert_allclose(body["predictions"], parity.sample_outputs, rtol=1e-4)


async def test_v2_infer_matches_parity_and_echoes_the_id(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr, model_version="v7")
    rows = iris_lr.card.parity.sample_inputs
    request = {
        "id": "client-42",
        "inputs": [{"name": "X", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}],
    }
    response = await running.client.post("/v2/models/iris/infer", json=request)
    body = await response.json()
    assert response.status == 200, body
    assert body["id"] == "client-42"
    assert body["model_name"] == "iris"
    assert body["model_version"] == "v7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["datatype"] == "INT64"
    assert [str(v) for v in outputs["label"]["data"]] == iris_lr.card.parity.sample_outputs
    assert outputs["probabilities"]["shape"] == [len(rows), 3]
    probabilities = np.reshape(outputs["probabilities"]["data"], (len(rows), 3))
    np.testing.assert_allclose(probabilities, iris_lr.card.parity.sample_probabilities, atol=1e-5)


async def test_v2_flat_data_and_output_selection(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr, model_version="v7")
    flat = [v for row in iris_lr.card.parity.sample_inputs[:2] for v in row]
    request = {
        "inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": flat}],
        "outputs": [{"name": "label"}],
    }
    response = await running.client.post("/v2/models/iris/versions/v7/infer", json=request)
    body = await response.json()
    assert [o["name"] for o in body["outputs"]] == ["label"]
    assert body["id"] == body["parameters"]["request_id"]


def v2_inputs(model: ModelDir, rows: list[list[Any]]) -> list[dict[str, Any]]:
    """The card's rows as V2 input tensors, one per model input, flat data."""
    signature = model.card.signature
    positions = {f.name: i for i, f in enumerate(signature.features)}
    tensors = []
    for spec in signature.inputs:
        features = sorted((f for f in signature.features if f.input == spec.name),
                          key=lambda f: f.index)  # fmt: skip
        tensors.append({
            "name": spec.name,
            "shape": [len(rows), len(features)],
            "datatype": V2_DATATYPES[spec.dtype],
            "data": [row[positions[f.name]] for row in rows for f in features],
        })  # fmt: skip
    return tensors


@pytest.mark.parametrize("model_fixture", ["iris_lr", "trained_categorical", "diabetes_regression"])
async def test_the_templated_v2_answer_is_the_general_one(
    serve: Serve, model_fixture: str, request: pytest.FixtureRequest
) -> None:
    model: ModelDir = request.getfixturevalue(model_fixture)
    # The version is written into the template: %-directives and quotes in it stay text.
    running = await serve(model, model_version='1.0 "%s%d%%"')
    inputs = v2_inputs(model, model.card.parity.sample_inputs[:3])
    every_output = [{"name": spec.name} for spec in model.card.signature.outputs]
    for client_id in (None, 'the client\'s "%s" id'):
        envelope = {} if client_id is None else {"id": client_id}
        answers = []
        for body in (
            {**envelope, "inputs": inputs},
            {**envelope, "inputs": inputs, "outputs": every_output},
        ):
            response = await running.client.post(
                f"/v2/models/{running.server.model.name}/infer", json=body
            )
            assert response.status == 200, await response.text()
            answer = await response.json()
            assert answer["parameters"]["request_id"] == answer["request_id"]
            assert answer["id"] == (client_id or answer["request_id"])
            assert answer["model_version"] == '1.0 "%s%d%%"'
            answer["parameters"]["request_id"] = answer["request_id"] = "-"
            answer["id"] = client_id or "-"
            answers.append(answer)
        templated, general = answers
        assert templated == general
        assert list(templated) == list(general)
        assert [list(o) for o in templated["outputs"]] == [list(o) for o in general["outputs"]]


async def test_every_response_carries_version_and_request_id(
    serve: Serve, iris_lr: ModelDir
) -> None:
    running = await serve(iris_lr, model_version="2026-11-26.1")
    ids = set()
    for body in ({"rows": [[5.1, 3.5, 1.4, 0.2]]}, {"rows": "nope"}):
        response = await running.client.post("/predict", json=body)
        payload: dict[str, Any] = await response.json()
        assert response.headers["X-Model-Version"] == "2026-11-26.1"
        assert payload["model_version"] == "2026-11-26.1"
        assert payload["request_id"] == response.headers["X-Request-ID"]
        ids.add(payload["request_id"])
    assert len(ids) == 2


async def test_health_metadata_and_readiness(serve: Serve, iris_lr: ModelDir) -> None:
    running = await serve(iris_lr, model_version="v1")
    client = running.client
    assert (await client.get("/v2/health/live")).status == 200
    assert (await client.get("/v2/health/ready")).status == 200
    assert await (await client.get("/v2/models/iris/ready")).json() == {
        "name": "iris",
        "ready": True,
    }
    metadata = await (await client.get("/v2/models/iris")).json()
    assert metadata["versions"] == ["v1"]
    assert metadata["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["parameters"]["sha256"] == iris_lr.card.artifact.sha256
    running.server.draining = True
    assert (await client.get("/v2/health/ready")).status == 503
    assert (await client.get("/v2/models/iris/ready")).status == 503
    assert (await client.get("/v2/health/live")).status == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v2/models/other/infer", "model 'other' is not served here"),
        ("/v2/models/iris/versions/v9/infer", "version 'v9' of 'iris' is not served here"),
    ],
)
async def test_other_models_and_versions_are_not_found(
    serve: Serve, iris_lr: ModelDir, path: str, message: str
) -> None:
    running = await serve(iris_lr, model_version="v1")
    response = await running.client.post(path, json={"inputs": []})
    assert response.status == 404
    assert message in (await response.json())["error"]
