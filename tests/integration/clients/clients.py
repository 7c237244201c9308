"""Real clients of other projects against a running ``mlops serve``; runs in the kserve venv.

Not a test module: tests/integration/clients/test_clients.py runs it with the competitors'
venv (benchmarks/serving/venvs.py), which holds kserve and tritonclient, and asserts on the
JSON it prints: for each client, what readiness and metadata said and the labels it got.
Each client is used the way its documentation shows, with its defaults unless a case
says otherwise.

Usage: ``python clients.py kserve|triton HTTP_URL GRPC_TARGET MODEL TENSORS_JSON ROWS_JSON`` (TENSORS_JSON: one
tensor per ONNX input, ``{"name": [shape, datatype, flat values]}``; ROWS_JSON: the same rows,
features in card order, for KServe's V1 client).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np


def _arrays(tensors: dict[str, Any]) -> dict[str, tuple[str, np.ndarray]]:
    return {
        name: (
            datatype,
            np.asarray(values, dtype=object if datatype == "BYTES" else np.float32).reshape(shape),
        )
        for name, (shape, datatype, values) in tensors.items()
    }


def _labels(array: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()]


async def kserve_rest(
    url: str, model: str, tensors: dict[str, Any], rows: list[list[Any]]
) -> dict[str, Any]:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=60))
    result: dict[str, Any] = {
        "server_ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, model),
    }
    for binary in (False, True):
        inputs = []
        for name, (datatype, array) in _arrays(tensors).items():
            infer_input = InferInput(name=name, shape=list(array.shape), datatype=datatype)
            infer_input.set_data_from_numpy(array, binary_data=binary)
            inputs.append(infer_input)
        outputs = [RequestedOutput("label", parameters={"binary_data": binary})]
        request = InferRequest(model_name=model, infer_inputs=inputs, request_outputs=outputs)
        response = await client.infer(url, request, model_name=model)
        result["binary" if binary else "json"] = _labels(response.outputs[0].as_numpy())
    await client.close()
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=1, timeout=60))
    answer = await v1.infer(url, {"instances": rows}, model_name=model)
    result["v1"] = [str(v) for v in answer["predictions"]]
    await v1.close()
    return result


async def kserve_grpc(target: str, model: str, tensors: dict[str, Any]) -> dict[str, Any]:
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    client = InferenceGRPCClient(target)
    result: dict[str, Any] = {
        "server_ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready(model),
    }
    inputs = []
    for name, (datatype, array) in _arrays(tensors).items():
        infer_input = InferInput(name=name, shape=list(array.shape), datatype=datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    response = await client.infer(InferRequest(model_name=model, infer_inputs=inputs))
    label = next(o for o in response.outputs if o.name == "label")
    result["labels"] = _labels(label.as_numpy())
    await client.close()
    return result


def triton(module: Any, target: str, model: str, tensors: dict[str, Any]) -> dict[str, Any]:
    client = module.InferenceServerClient(url=target)
    metadata = client.get_model_metadata(model)
    if not isinstance(metadata, dict):  # gRPC answers a protobuf message
        metadata = {"name": metadata.name, "inputs": [{"name": i.name} for i in metadata.inputs]}
    inputs = []
    for name, (datatype, array) in _arrays(tensors).items():
        infer_input = module.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)  # the defaults: binary over HTTP, raw over gRPC
        inputs.append(infer_input)
    result = client.infer(model, inputs)
    return {
        "server_live": client.is_server_live(),
        "server_ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "metadata_name": metadata["name"],
        "metadata_inputs": [i["name"] for i in metadata["inputs"]],
        "labels": _labels(result.as_numpy("label")),
    }


def main() -> None:
    # KServe's and Triton's generated messages share the protobuf package `inference` and
    # cannot be imported into one process: each family of clients runs in its own.
    which, url, target, model, tensors_json, rows_json = sys.argv[1:7]
    tensors, rows = json.loads(tensors_json), json.loads(rows_json)
    if which == "kserve":
        results = {
            "kserve_rest": asyncio.run(kserve_rest(url, model, tensors, rows)),
            "kserve_grpc": asyncio.run(kserve_grpc(target, model, tensors)),
        }
    else:
        import tritonclient.grpc as triton_grpc
        import tritonclient.http as triton_http

        results = {
            "triton_http": triton(triton_http, url.removeprefix("http://"), model, tensors),
            "triton_grpc": triton(triton_grpc, target, model, tensors),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
