"""The Open Inference Protocol over gRPC (KServe's ``inference.GRPCInferenceService``).

Liveness, readiness, server and model metadata and ``ModelInfer`` on the same model,
decoder, batcher, metrics and feedback ids as the HTTP endpoints: a request's tensors
become :class:`~mlops_operator.serving.validation.TensorInput` (typed ``contents`` or
``raw_input_contents``) and go through the same checks, so a request refused over HTTP
is refused over gRPC with the same message. Refusals map to gRPC status codes
(INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE); the request id travels in
the response's ``parameters.request_id`` (``/feedback`` takes it) and its trailing
metadata ``x-request-id``. A request with raw inputs is answered with raw outputs (as
Triton does); one with typed contents, with typed contents.

The service is registered by hand from the generated messages (``oip/``), so no
generated servicer code is needed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import orjson

from mlops_operator import __version__
from mlops_operator.serving.app import EXTENSIONS, InferenceServer
from mlops_operator.serving.binary import tensor_bytes
from mlops_operator.serving.errors import ClientError, InvalidInput, ModelNotFound, ServerNotReady
from mlops_operator.serving.model import V2_DATATYPES
from mlops_operator.serving.oip import grpc_predict_v2_pb2 as pb
from mlops_operator.serving.validation import TensorInput, V2Request

__all__ = ["SERVICE", "GrpcEndpoint"]

SERVICE = "inference.GRPCInferenceService"
ENDPOINT = "grpc_infer"
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
# Which typed contents field carries each datatype.
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# grpc.aio.ServicerContext; grpcio ships no type information.
Context = Any
log = logging.getLogger(__name__)


class GrpcEndpoint:
    """The gRPC service of one worker, sharing its :class:`InferenceServer`."""

    def __init__(self, server: InferenceServer) -> None:
        self._server = server
        self._model = server.model

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's methods, for ``grpc.aio.Server.add_generic_rpc_handlers``."""

        def method(
            function: Callable[[Any, Context], Awaitable[Any]], request: Any, reply: Any
        ) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                function,
                request_deserializer=request.FromString,
                response_serializer=reply.SerializeToString,
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ServerLive": method(self._live, pb.ServerLiveRequest, pb.ServerLiveResponse),
                "ServerReady": method(self._ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
                "ModelReady": method(
                    self._model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse
                ),
                "ServerMetadata": method(
                    self._server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse
                ),
                "ModelMetadata": method(
                    self._model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse
                ),
                "ModelInfer": method(self._infer, pb.ModelInferRequest, pb.ModelInferResponse),
            },
        )

    # -- probes and metadata --------------------------------------------------------------

    async def _live(self, _: pb.ServerLiveRequest, __: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _ready(self, _: pb.ServerReadyRequest, __: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=not self._server.draining)

    async def _model_ready(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        await self._check_or_abort(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=not self._server.draining)

    async def _server_metadata(
        self, _: pb.ServerMetadataRequest, __: Context
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name="mlops-operator", version=__version__, extensions=EXTENSIONS
        )

    async def _model_metadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        await self._check_or_abort(request.name, request.version, context)
        metadata = self._server.metadata()
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[tensor(**t) for t in metadata["inputs"]],
            outputs=[tensor(**t) for t in metadata["outputs"]],
        )

    async def _check_or_abort(self, name: str, version: str, context: Context) -> None:
        try:
            self._check_model(name, version)
        except ClientError as error:
            await context.abort(_CODES.get(error.status, grpc.StatusCode.INTERNAL), error.message)

    def _check_model(self, name: str, version: str) -> None:
        if name != self._model.name:
            raise ModelNotFound(
                f"model {name!r} is not served here; this server serves {self._model.name!r}"
            )
        if version and version != self._model.version:
            raise ModelNotFound(
                f"version {version!r} of {name!r} is not served here; "
                f"this server serves version {self._model.version!r}"
            )

    # -- inference ------------------------------------------------------------------------

    async def _infer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        request_id = self._server.next_id()
        outcome = "ok"
        failure: tuple[grpc.StatusCode, str] | None = None
        try:
            if self._server.draining:
                raise ServerNotReady("the server is shutting down")
            self._check_model(request.model_name, request.model_version)
            parsed = self._decode(request)
            outputs = await self._server.infer(parsed.batch, request_id)
            response = self._response(request, parsed, outputs, request_id)
        except ClientError as error:
            outcome = error.outcome
            failure = (_CODES.get(error.status, grpc.StatusCode.INVALID_ARGUMENT), error.message)
        except Exception:
            log.exception("gRPC request %s failed on the server side", request_id)
            outcome = "error"
            failure = (
                grpc.StatusCode.INTERNAL,
                f"internal server error; see the server log for {request_id}",
            )
        self._server.metrics.observe_request(ENDPOINT, outcome, time.perf_counter() - started)
        context.set_trailing_metadata((("x-request-id", request_id),))
        if failure is not None:
            await context.abort(*failure)
        predictions = outputs[0].ravel()
        self._server.sample(
            ENDPOINT,
            parsed.batch,
            request_id,
            response=orjson.dumps(
                {
                    "predictions": predictions.tolist()
                    if predictions.dtype.kind == "O"
                    else predictions
                },
                option=orjson.OPT_SERIALIZE_NUMPY,
            ),
        )
        return response

    def _decode(self, request: pb.ModelInferRequest) -> V2Request:
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise InvalidInput(
                f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; "
                "expected one per input, in order"
            )
        tensors = []
        for index, tensor in enumerate(request.inputs):
            shape = list(tensor.shape)
            if not shape or any(d < 0 for d in shape):
                raise InvalidInput(
                    f"input {tensor.name!r}: shape must be a non-empty list of non-negative "
                    f"integers, got {shape}"
                )
            if raw:
                tensors.append(TensorInput(tensor.name, shape, tensor.datatype, raw=raw[index]))
                continue
            field = _CONTENTS.get(tensor.datatype)
            values = getattr(tensor.contents, field) if field else []
            tensors.append(TensorInput(tensor.name, shape, tensor.datatype, values=values))
        decoder = self._server.decoder
        outputs = [o.name for o in request.outputs]
        return V2Request(
            batch=decoder.tensors(tensors),
            id=request.id or None,
            outputs=decoder.output_names(outputs) if outputs else None,
        )

    def _response(
        self,
        request: pb.ModelInferRequest,
        parsed: V2Request,
        outputs: list[npt.NDArray[Any]],
        request_id: str,
    ) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse(
            model_name=self._model.name,
            model_version=self._model.version,
            id=request.id or request_id,
        )
        response.parameters["request_id"].string_param = request_id
        raw = bool(request.raw_input_contents)
        for spec, output in self._server.selected_outputs(parsed, outputs):
            datatype = V2_DATATYPES[spec.dtype]
            tensor = response.outputs.add(name=spec.name, datatype=datatype, shape=output.shape)
            if raw:
                response.raw_output_contents.append(tensor_bytes(output))
            elif datatype == "BYTES":
                tensor.contents.bytes_contents.extend(
                    str(v).encode() for v in output.ravel().tolist()
                )
            else:
                getattr(tensor.contents, _CONTENTS[datatype]).extend(
                    np.ascontiguousarray(output).ravel().tolist()
                )
        return response
