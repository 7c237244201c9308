"""The Open Inference Protocol over gRPC, on real models, in-process (grpc.aio on loopback).

Aspects: liveness, readiness and metadata; typed and raw contents infer what the card's
parity sample says, numeric and categorical (BYTES) models alike, and what HTTP infers;
refusals carry the HTTP endpoints' messages with gRPC status codes; requests are counted
under ``grpc_infer`` and their ids take ``/feedback``; the checked-in messages are what
``make protos`` generates from the .proto; ``mlops serve`` listens on HTTP (which the
kubelet's probe asks) only once its gRPC port takes calls.
"""

from __future__ import annotations

import asyncio
import filecmp
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from mlops_operator.serving import oip
from mlops_operator.serving.binary import tensor_bytes
from mlops_operator.serving.grpc_endpoint import GrpcEndpoint
from mlops_operator.serving.oip import grpc_predict_v2_pb2 as pb
from tests.ports import free_port
from tests.unit.serving.conftest import ModelDir, Running, Serve

Call = Callable[[str, Any], Any]
_REPLIES = {
    "ServerLive": pb.ServerLiveResponse,
    "ServerReady": pb.ServerReadyResponse,
    "ModelReady": pb.ModelReadyResponse,
    "ServerMetadata": pb.ServerMetadataResponse,
    "ModelMetadata": pb.ModelMetadataResponse,
    "ModelInfer": pb.ModelInferResponse,
}


@pytest.fixture
async def grpc_for() -> AsyncIterator[Callable[[Running], Any]]:
    """Start a gRPC endpoint beside an in-process HTTP server; returns a caller."""
    servers: list[Any] = []
    channels: list[Any] = []

    async def start(running: Running) -> Call:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((GrpcEndpoint(running.server).handler(),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)

        async def call(method: str, request: Any) -> Any:
            stub = channel.unary_unary(
                f"/inference.GRPCInferenceService/{method}",
                request_serializer=type(request).SerializeToString,
                response_deserializer=_REPLIES[method].FromString,
            )
            return await stub(request)

        return call

    yield start
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


def _infer_request(model: ModelDir, rows: list[list[Any]], *, raw: bool) -> pb.ModelInferRequest:
    """One tensor per ONNX input, typed contents or raw bytes."""
    features = model.card.signature.features
    names = [f.name for f in features]
    request = pb.ModelInferRequest(model_name=model.card.model_name, id="client-1")
    for spec in model.card.signature.inputs:
        members = sorted((f for f in features if f.input == spec.name), key=lambda f: f.index)
        positions = [names.index(f.name) for f in members]
        values = [row[p] for row in rows for p in positions]
        datatype = {"float32": "FP32", "string": "BYTES"}[spec.dtype]
        tensor = request.inputs.add(
            name=spec.name, datatype=datatype, shape=[len(rows), len(positions)]
        )
        array = np.asarray(values, dtype=object if datatype == "BYTES" else np.float32)
        if raw:
            request.raw_input_contents.append(tensor_bytes(array))
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        else:
            tensor.contents.fp32_contents.extend(values)
    return request


def _labels(response: pb.ModelInferResponse) -> list[str]:
    names = [o.name for o in response.outputs]
    index = names.index("label")
    output = response.outputs[index]
    if response.raw_output_contents:
        data = response.raw_output_contents[index]
        if output.datatype == "BYTES":
            labels, offset = [], 0
            while offset < len(data):
                length = int.from_bytes(data[offset : offset + 4], "little")
                labels.append(data[offset + 4 : offset + 4 + length].decode())
                offset += 4 + length
            return labels
        return [str(v) for v in np.frombuffer(data, dtype="<i8")]
    if output.datatype == "BYTES":
        return [v.decode() for v in output.contents.bytes_contents]
    return [str(v) for v in output.contents.int64_contents]


@pytest.mark.parametrize("model_fixture", ["trained_iris", "trained_categorical"])
@pytest.mark.parametrize("raw", [False, True])
async def test_infer_matches_parity_and_http(
    serve: Serve,
    grpc_for: Callable[[Running], Any],
    model_fixture: str,
    raw: bool,
    request: pytest.FixtureRequest,
) -> None:
    model: ModelDir = request.getfixturevalue(model_fixture)
    running = await serve(model)
    call = await grpc_for(running)
    rows = model.card.parity.sample_inputs
    response = await call("ModelInfer", _infer_request(model, rows, raw=raw))
    assert _labels(response) == model.card.parity.sample_outputs
    assert response.id == "client-1"
    assert response.model_version == running.server.model.version
    assert bool(response.raw_output_contents) == raw
    probabilities = response.outputs[[o.name for o in response.outputs].index("probabilities")]
    if raw:
        values = np.frombuffer(response.raw_output_contents[1], dtype="<f4")
    else:
        values = np.asarray(probabilities.contents.fp32_contents)
    np.testing.assert_allclose(
        values.reshape(list(probabilities.shape)), model.card.parity.sample_probabilities, atol=1e-5
    )


async def test_probes_metadata_refusals_metrics_and_feedback(
    serve: Serve, grpc_for: Callable[[Running], Any], iris_lr: ModelDir, tmp_path: Path
) -> None:
    running = await serve(
        iris_lr, model_version="v2", max_rows=10, labels_uri=str(tmp_path / "labels")
    )
    call = await grpc_for(running)
    assert (await call("ServerLive", pb.ServerLiveRequest())).live
    assert (await call("ServerReady", pb.ServerReadyRequest())).ready
    assert (await call("ModelReady", pb.ModelReadyRequest(name="iris"))).ready
    server = await call("ServerMetadata", pb.ServerMetadataRequest())
    assert "binary_tensor_data" in server.extensions
    metadata = await call("ModelMetadata", pb.ModelMetadataRequest(name="iris", version="v2"))
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("X", "FP32", [-1, 4])
    ]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await call("ModelMetadata", pb.ModelMetadataRequest(name="other"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    rows = iris_lr.card.parity.sample_inputs
    good = _infer_request(iris_lr, rows[:2], raw=False)
    refusals: list[tuple[Any, grpc.StatusCode, str]] = []
    wrong_type = pb.ModelInferRequest()
    wrong_type.CopyFrom(good)
    wrong_type.inputs[0].datatype = "FP64"
    refusals.append((wrong_type, grpc.StatusCode.INVALID_ARGUMENT, "datatype FP64; expected FP32"))
    short = pb.ModelInferRequest()
    short.CopyFrom(good)
    del short.inputs[0].contents.fp32_contents[-1]
    refusals.append((short, grpc.StatusCode.INVALID_ARGUMENT, "contents hold 7 values; expected 8"))
    infinite = pb.ModelInferRequest()
    infinite.CopyFrom(good)
    infinite.inputs[0].contents.fp32_contents[5] = float("inf")
    refusals.append((infinite, grpc.StatusCode.INVALID_ARGUMENT, "row 1, feature 'sepal_width'"))
    raw_mismatch = _infer_request(iris_lr, rows[:2], raw=True)
    raw_mismatch.raw_input_contents.append(b"")
    refusals.append(
        (raw_mismatch, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents has 2 entries for 1")
    )
    too_many = _infer_request(iris_lr, rows[:11], raw=False)
    refusals.append((too_many, grpc.StatusCode.RESOURCE_EXHAUSTED, "11 rows in one request"))
    other = pb.ModelInferRequest()
    other.CopyFrom(good)
    other.model_version = "v9"
    refusals.append((other, grpc.StatusCode.NOT_FOUND, "version 'v9' of 'iris' is not served"))
    unknown_output = pb.ModelInferRequest()
    unknown_output.CopyFrom(good)
    unknown_output.outputs.add(name="p")
    refusals.append(
        (unknown_output, grpc.StatusCode.INVALID_ARGUMENT, "requested outputs ['p'] are not")
    )
    for message, code, text in refusals:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call("ModelInfer", message)
        assert refused.value.code() == code, text
        assert text in (refused.value.details() or ""), refused.value.details()
    answer = await call("ModelInfer", good)
    request_id = answer.parameters["request_id"].string_param
    feedback = await running.client.post(
        "/feedback", json={"request_id": request_id, "labels": _labels(answer)}
    )
    assert (await feedback.json())["accepted"] == 2
    scrape = (await (await running.client.get("/metrics")).text()).splitlines()
    counted = {
        line.split('outcome="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in scrape
        if line.startswith("mlops_requests_total{") and 'endpoint="grpc_infer"' in line
    }
    assert counted["ok"] == 1
    assert counted["invalid_input"] == 5
    assert counted["too_large"] == 1
    assert counted["not_found"] == 1
    running.server.draining = True
    assert not (await call("ServerReady", pb.ServerReadyRequest())).ready


def test_generated_messages_match_the_proto(tmp_path: Path) -> None:
    """`make protos` output is checked in; regenerate and compare byte for byte."""
    package = Path(oip.__file__).parent
    source_root = package.parents[2]
    proto = package.relative_to(source_root) / "grpc_predict_v2.proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{source_root}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", str(proto)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    generated = tmp_path / proto.parent
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi"):
        assert filecmp.cmp(generated / name, package / name, shallow=False), (
            f"{name} is stale: run `make protos`"
        )


async def test_http_listens_only_once_grpc_takes_calls(iris_lr: ModelDir) -> None:
    """The Service sends gRPC to a pod as soon as its HTTP readiness probe passes."""
    http, grpc_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mlops_operator.cli", "serve", "--model-dir", str(iris_lr.path),
        "--host", "127.0.0.1", "--port", str(http), "--grpc-port", str(grpc_port),
        "--workers", "1", "--log-level", "WARNING",
    )  # fmt: skip
    try:
        # The moment HTTP accepts a connection (a probe could pass from then on), gRPC must
        # accept one too: connect() takes microseconds, far less than any gap between them.
        deadline = time.monotonic() + 120
        while not _accepts(http):
            assert process.returncode is None, "the server exited"
            assert time.monotonic() < deadline, "the server never listened"
        assert _accepts(grpc_port), "HTTP listened before gRPC did"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            ready = channel.unary_unary(
                "/inference.GRPCInferenceService/ServerReady",
                request_serializer=pb.ServerReadyRequest.SerializeToString,
                response_deserializer=pb.ServerReadyResponse.FromString,
            )
            # No waiting for a connection: a port that does not take calls fails the call.
            reply = await ready(pb.ServerReadyRequest(), timeout=10, wait_for_ready=False)
        assert reply.ready
    finally:
        process.terminate()
        await process.wait()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
