"""HTTP wiring: the Open Inference Protocol, KServe V1, MLflow, ``/predict``, probes, ``/metrics``.

Handlers only move bytes: decoding and checks live in ``validation`` (and ``formats``,
``binary``), inference in ``batching``, counting in ``metrics``. Every response carries
the model version and a request id (``X-Model-Version``, ``X-Request-ID``, and in JSON
bodies). Client mistakes are 4xx with a message; only a server fault is a 5xx. The gRPC
endpoint (``grpc``) shares :meth:`InferenceServer.infer` and the decoder with these.

Every inference request takes its endpoint's handler (:meth:`InferenceServer._endpoint`:
id, latency, outcome, response, side channels) around :meth:`InferenceServer._answer`
(from the request to its reply). What is counted per onnxruntime call (drift bins, the
prediction log for labels) happens in :meth:`InferenceServer.observe_calls`, for many
calls at once, after the handlers have answered. The answer to the common V2 JSON
request (every output as JSON) is written from a template laid out once per model, not
built as objects and serialised (``benchmarks/serving`` says what each step of the path
costs).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import orjson
from aiohttp import hdrs, web
from multidict import CIMultiDict, istr

from mlops_operator import __version__
from mlops_operator.modelcard import TensorSpec
from mlops_operator.serving.batching import MicroBatcher
from mlops_operator.serving.binary import HEADER_LENGTH, split_body, tensor_bytes
from mlops_operator.serving.errors import (
    ClientError,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    PayloadTooLarge,
    ServerNotReady,
    Unauthorized,
    UnsupportedMediaType,
)
from mlops_operator.serving.formats import mlflow_batch, predict_batch, v1_batch
from mlops_operator.serving.labels import LabelRecorder, RequestIds, parse_feedback
from mlops_operator.serving.metrics import CONTENT_TYPE, ServingMetrics
from mlops_operator.serving.model import V2_DATATYPES, ServedModel
from mlops_operator.serving.settings import ServingSettings
from mlops_operator.serving.sidechannels import CanaryForwarder, PayloadLogger, ShadowMirror
from mlops_operator.serving.validation import Batch, RequestDecoder, V2Request

__all__ = ["EXTENSIONS", "InferenceServer", "Reply"]

log = logging.getLogger(__name__)

# Server metadata's "extensions": what Triton and KServe clients may rely on.
EXTENSIONS = ["binary_tensor_data"]
_JSON_TYPES = frozenset({"application/json", ""})
_BINARY_TYPES = _JSON_TYPES | {"application/octet-stream"}
_DUMP = orjson.OPT_SERIALIZE_NUMPY
# Set on a request while the canary has it: a deadline passing then is the canary's failure.
_FORWARDING = web.RequestKey("forwarding", bool)
# Header names as multidict keys: looked up without case-folding them on every request.
_HEADER_LENGTH = istr(HEADER_LENGTH)
_REQUEST_ID = istr("X-Request-ID")
Outputs = list[npt.NDArray[Any]]


@dataclass(slots=True)
class Reply:
    """What a handler answers: the JSON body, binary tensors after it, and the request's rows.

    ``body`` is an object (``model_version`` and ``request_id`` are added to it), or the
    finished JSON as bytes (the common V2 answer, written from its template with both).
    """

    body: dict[str, Any] | bytes
    batch: Batch | None = None
    binary: list[bytes] | None = None
    request: bytes = b""  # the request's body as received (for the side channels)


Responder = Callable[[web.Request, Any, "memoryview | None", str], Awaitable[Reply]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


class _V2Template:
    """The common V2 answer (every output as JSON ``data``), laid out once per model.

    The same JSON the general path serialises from objects: model name, ``id`` (the
    client's, else the request id), ``parameters.request_id``, each output's name,
    datatype, shape and data, then ``model_version`` and ``request_id``. The outputs are
    dicts made once, whose shape and data are replaced on each request and serialised in
    one call; everything else is one ``%``-format per model (two: the answer's ``id`` is the
    request id, or the client's). For iris that is 15,500 instructions a request, where
    building the answer from pieces took 23,500. Request ids are hex digits, dashes and a
    dot (``serving.labels.RequestIds``), so they go in without escaping.
    """

    def __init__(self, model: ServedModel) -> None:
        def literal(text: bytes) -> bytes:
            return text.replace(b"%", b"%%")

        outputs = model.card.signature.outputs
        self._tensors: list[dict[str, Any]] = [
            {"name": spec.name, "datatype": V2_DATATYPES[spec.dtype], "shape": (), "data": []}
            for spec in outputs
        ]
        # String outputs are numpy objects, which orjson serialises as lists only.
        self._strings = [spec.dtype == "string" for spec in outputs]
        head = literal(b'{"model_name":' + orjson.dumps(model.name) + b',"id":')
        rest = (
            b',"parameters":{"request_id":"%s"},"outputs":%s'
            + literal(b',"model_version":' + orjson.dumps(model.version))
            + b',"request_id":"%s"}'
        )
        self._with_request_id = head + b'"%s"' + rest
        self._with_client_id = head + b"%s" + rest

    def render(self, client_id: str | None, request_id: str, outputs: Outputs) -> bytes:
        """The answer's JSON."""
        for tensor, output, strings in zip(self._tensors, outputs, self._strings, strict=True):
            flat = output.ravel()
            tensor["shape"] = output.shape
            tensor["data"] = flat.tolist() if strings else flat
        tensors = orjson.dumps(self._tensors, option=_DUMP)
        rid = request_id.encode()
        if client_id:
            return self._with_client_id % (orjson.dumps(client_id), rid, tensors, rid)
        return self._with_request_id % (rid, rid, tensors, rid)


@types.coroutine
def _resumed(
    coroutine: Coroutine[Any, Any, Reply | web.Response], waiting: Any
) -> Generator[Any, Any, Reply | web.Response]:
    """The rest of ``coroutine``, suspended once on ``waiting`` already, driven as ``await``
    drives it: the task waits on ``waiting``, then what it sends or throws in (a
    cancellation, the deadline's) goes to ``coroutine``."""
    while True:
        try:
            yield waiting
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as error:  # noqa: BLE001 - handed to the coroutine, as await does
            try:
                waiting = coroutine.throw(error)
            except StopIteration as done:
                answer: Reply | web.Response = done.value
                return answer
        else:
            rest: Reply | web.Response = yield from coroutine
            return rest


class InferenceServer:
    """The aiohttp application of one worker and the state its handlers share."""

    def __init__(self, model: ServedModel, settings: ServingSettings, *, worker: int = 0) -> None:
        self.model = model
        self.settings = settings
        self.metrics = ServingMetrics(model)
        self.decoder = RequestDecoder(model, max_rows=settings.max_rows)
        self.batcher = MicroBatcher(
            model,
            self.observe_calls,
            max_rows=settings.max_batch_rows,
            delay_seconds=settings.batch_delay_ms / 1000,
            offload=settings.offload_inference,
            observe_delay_seconds=settings.observe_delay_ms / 1000,
        )
        # The model's outputs for a validated batch, whatever the format (its rows are counted
        # and recorded by `observe_calls`): the batcher's own coroutine, not one around it.
        self.infer: Callable[[Batch, str], Awaitable[Outputs]] = self.batcher.predict
        key = settings.labels_key.get_secret_value().encode() if settings.labels_key else None
        self.ids = RequestIds(
            key or os.urandom(32), worker=worker, retention_seconds=settings.label_retention_seconds
        )
        self.labels = (
            LabelRecorder(settings.labels_uri, self.metrics, self.ids,
                          calibration=model.card.calibration)
            if settings.labels_uri
            else None
        )  # fmt: skip
        self.mirror = (
            ShadowMirror(
                settings.shadow_url,
                self.metrics,
                queue_size=settings.shadow_queue_size,
                percent=settings.shadow_percent,
            )
            if settings.shadow_url
            else None
        )
        self.canary = (
            CanaryForwarder(settings.canary_url, self.metrics, percent=settings.canary_percent)
            if settings.canary_url and settings.canary_percent
            else None
        )
        self._deadline = settings.timeout_ms / 1000 if settings.timeout_ms else None
        self.payloads = (
            PayloadLogger(
                settings.payload_log_uri,
                self.metrics,
                sample_rate=settings.payload_log_sample_rate,
                max_bytes=settings.payload_log_max_bytes,
            )
            if settings.payload_log_uri and settings.payload_log_sample_rate > 0
            else None
        )
        self.draining = False
        self._headers = {"X-Model-Version": model.version}
        self._json_headers = CIMultiDict({hdrs.CONTENT_TYPE: "application/json", **self._headers})
        self._binary_headers = CIMultiDict(
            {hdrs.CONTENT_TYPE: "application/octet-stream", **self._headers}
        )
        self._outputs = model.card.signature.outputs
        self._versioned = f"/v2/models/{model.name}/versions/{model.version}/"
        self._v2_template = _V2Template(model)
        self._serve_feedback = self._endpoint("feedback", self._feedback_body)

    def next_id(self) -> str:
        """A new request id, signed with the deployment's key (`serving.labels.RequestIds`)."""
        return self.ids.issue()

    def application(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        router = app.router
        # The served model's own paths first, as plain resources: aiohttp finds those by a
        # dict lookup before it tries the patterns (which remain for 404s naming the model).
        v2 = f"/v2/models/{self.model.name}"
        v2_infer = self._endpoint("v2_infer", self._v2_body)
        for prefix in (v2, f"{v2}/versions/{self.model.version}", "/v2/models/{name}",
                       "/v2/models/{name}/versions/{version}"):  # fmt: skip
            router.add_post(prefix + "/infer", v2_infer)
            router.add_get(prefix, self._model_metadata)
            router.add_get(prefix + "/ready", self._model_ready)
        v1_predict = self._endpoint("v1_predict", self._predictions(v1_batch))
        for name in (self.model.name, "{name}"):
            router.add_post(f"/v1/models/{name}:predict", v1_predict)
            router.add_get(f"/v1/models/{name}", self._v1_model)
        router.add_get("/v2/health/live", self._live)
        router.add_get("/v2/health/ready", self._ready)
        router.add_get("/v2", self._server_metadata)
        router.add_post("/predict", self._endpoint("predict", self._predict_body))
        router.add_post(
            "/invocations", self._endpoint("invocations", self._predictions(mlflow_batch))
        )
        # MLflow's scoring server probes.
        router.add_get("/ping", self._ready)
        router.add_get("/health", self._ready)
        router.add_post("/feedback", self._feedback)
        router.add_get("/metrics", self._metrics)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _: web.Application) -> None:
        self.batcher.start()
        for channel in (self.mirror, self.payloads, self.labels, self.canary):
            if channel is not None:
                channel.start()

    async def _stop(self, _: web.Application) -> None:
        await self.batcher.stop()
        for channel in (self.mirror, self.payloads, self.labels, self.canary):
            if channel is not None:
                await channel.stop()

    # -- inference, whatever the format ----------------------------------------------------

    def observe_calls(
        self,
        feeds: dict[str, Any],
        outputs: Outputs,
        request_ids: list[str],
        rows: list[int],
        call_rows: list[int],
    ) -> None:
        """After onnxruntime calls (merged): count drift bins and record their predictions."""
        self.metrics.observe_batch(feeds, outputs[0], rows, call_rows)
        if self.labels is not None:
            self.labels.record(request_ids, rows, outputs, classifier=self.model.is_classifier)

    def check_envelope(
        self, name: str | None, version: str | None, path_version: str | None
    ) -> None:
        """The body's ``model_name`` / ``model_version`` (KServe's and Triton's clients send
        them) must agree with the path and with what is served."""
        if name and name != self.model.name:
            raise InvalidInput(
                f"model_name {name!r} in the body disagrees with the model "
                f"{self.model.name!r} the request was sent to"
            )
        if not version or version == self.model.version:
            return
        if path_version is not None:
            raise InvalidInput(
                f"model_version {version!r} in the body disagrees with the version "
                f"{path_version!r} in the path"
            )
        raise ModelNotFound(
            f"version {version!r} of {self.model.name!r} is not served here; "
            f"this server serves version {self.model.version!r}"
        )

    def selected_outputs(
        self, parsed: V2Request, outputs: Outputs
    ) -> list[tuple[TensorSpec, npt.NDArray[Any]]]:
        """The requested outputs (all by default) with their card specs, in card order."""
        return [
            (spec, output)
            for spec, output in zip(self._outputs, outputs, strict=True)
            if parsed.outputs is None or spec.name in parsed.outputs
        ]

    def metadata(self) -> dict[str, Any]:
        """The model's Open Inference Protocol metadata."""
        signature = self.model.card.signature

        def tensors(specs: list[TensorSpec]) -> list[dict[str, Any]]:
            return [
                {
                    "name": s.name,
                    "datatype": V2_DATATYPES[s.dtype],
                    "shape": [-1 if d is None else d for d in s.shape],
                }
                for s in specs
            ]

        return {
            "name": self.model.name,
            "versions": [self.model.version],
            "platform": "onnxruntime_onnx",
            "inputs": tensors(signature.inputs),
            "outputs": tensors(signature.outputs),
            "parameters": {
                "sha256": self.model.sha256,
                "task": signature.task,
                "features": self.model.feature_names,
                "classes": signature.classes,
            },
        }

    # -- HTTP inference endpoints ---------------------------------------------------------

    async def _predict_body(
        self, _: web.Request, body: Any, __: memoryview | None, request_id: str
    ) -> Reply:
        batch = predict_batch(self.decoder, body)
        outputs = await self.infer(batch, request_id)
        if self.model.is_classifier:
            return Reply(
                {
                    "labels": list(map(str, outputs[0].tolist())),
                    "probabilities": outputs[1],
                    "classes": self.model.card.signature.classes,
                },
                batch,
            )
        return Reply({"predictions": outputs[0].ravel()}, batch)

    def _predictions(self, read: Callable[[RequestDecoder, Any], Batch]) -> Responder:
        """KServe V1 and MLflow answer ``{"predictions": [...]}``: labels or values per row."""

        async def respond(
            _: web.Request, body: Any, __: memoryview | None, request_id: str
        ) -> Reply:
            batch = read(self.decoder, body)
            outputs = await self.infer(batch, request_id)
            first = outputs[0].ravel()
            return Reply(
                {"predictions": first.tolist() if first.dtype.kind == "O" else first}, batch
            )

        return respond

    async def _v2_body(
        self, request: web.Request, body: Any, binary: memoryview | None, request_id: str
    ) -> Reply:
        common = self.decoder.common_v2(body) if binary is None else None
        if common is None:  # anything else, right or wrong: the full decoder decides
            return await self._v2_reply(request, self.decoder.full_v2(body, binary), request_id)
        feeds, rows, (client_id, name, version) = common
        if name is not None or version is not None:
            self.check_envelope(name, version, self._path_version(request))
        batch = Batch(feeds, rows)
        # The batcher's submit, not its predict coroutine: a lone request's outputs come back at
        # once, and only a queued one has a future to await (the hot path's one layer less).
        outputs = self.batcher.submit(batch, request_id)
        if not isinstance(outputs, list):
            outputs = await outputs
        return Reply(self._v2_template.render(client_id, request_id, outputs), batch)

    async def _v2_reply(self, request: web.Request, parsed: V2Request, request_id: str) -> Reply:
        """The answer to any V2 request the full decoder took (JSON or binary tensors)."""
        if parsed.model_name is not None or parsed.model_version is not None:
            self.check_envelope(
                parsed.model_name, parsed.model_version, self._path_version(request)
            )
        outputs = await self.infer(parsed.batch, request_id)
        if parsed.outputs is None and not parsed.binary_outputs:
            return Reply(self._v2_template.render(parsed.id, request_id, outputs), parsed.batch)
        tensors = []
        chunks: list[bytes] = []
        for spec, output in self.selected_outputs(parsed, outputs):
            tensor: dict[str, Any] = {
                "name": spec.name,
                "datatype": V2_DATATYPES[spec.dtype],
                "shape": list(output.shape),
            }
            if spec.name in parsed.binary_outputs:
                chunk = tensor_bytes(output)
                tensor["parameters"] = {"binary_data_size": len(chunk)}
                chunks.append(chunk)
            else:
                flat = output.ravel()
                tensor["data"] = flat.tolist() if flat.dtype.kind == "O" else flat
            tensors.append(tensor)
        return Reply(
            {
                "model_name": self.model.name,
                "id": parsed.id or request_id,
                "parameters": {"request_id": request_id},
                "outputs": tensors,
            },
            parsed.batch,
            chunks or None,
        )

    async def _feedback(self, request: web.Request) -> web.Response:
        denied = self._feedback_denied(request)
        if denied is not None:
            self.metrics.observe_request("feedback", denied.outcome, 0.0)
            response = self._json({"error": denied.message}, denied.status)
            response.headers["WWW-Authenticate"] = 'Bearer realm="feedback"'
            return response
        return await self._serve_feedback(request)

    def _feedback_denied(self, request: web.Request) -> Unauthorized | None:
        """Why a /feedback request is refused when a token is required (labels steer
        accuracy, rollbacks and retraining: only the label sender may post them)."""
        token = self.settings.feedback_token
        if token is None:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return Unauthorized("/feedback needs `Authorization: Bearer <token>`")
        if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
            return Unauthorized("the bearer token is not this deployment's feedback token")
        return None

    async def _feedback_body(
        self, _: web.Request, body: Any, __: memoryview | None, ___: str
    ) -> Reply:
        if self.labels is None:
            raise ModelNotFound(
                "labels are not collected by this server: the ModelDeployment needs"
                " spec.feedback (mlops serve: --labels-uri)"
            )
        classes = self.model.card.signature.classes if self.model.is_classifier else None
        pairs = parse_feedback(body, classes=classes)
        accepted, duplicates = self.labels.accept(pairs)
        if self.payloads is not None:
            for request_id, labels in pairs:
                self.payloads.log_feedback(request_id, labels)
        return Reply({"accepted": accepted, "duplicates": duplicates})

    def _endpoint(self, endpoint: str, respond: Responder) -> Handler:
        """The handler of an inference endpoint: the request id, the latency, the outcome,
        the response and the side channels around ``respond`` (one coroutine per request:
        the endpoint and its responder are the handler's own, not arguments)."""

        async def serve(request: web.Request) -> web.Response:
            started = time.perf_counter()
            request_id = self.ids.issue()
            status, outcome = 200, "ok"
            reply: Reply | None = None
            try:
                answering = self._answer(request, endpoint, respond, request_id)
                if self._deadline is None:
                    answer = await answering
                else:
                    answer = await self._within_deadline(answering, self._deadline, started)
                if not isinstance(answer, Reply):  # the canary's answer, relayed
                    return answer
                reply = answer
                body = reply.body
            except TimeoutError:
                late = DeadlineExceeded(
                    f"no answer within the server's deadline of {self.settings.timeout_ms} ms"
                    " (spec.server.timeoutMs)"
                )
                status, outcome = late.status, late.outcome
                body = {"error": late.message}
            except ClientError as error:
                status, outcome = error.status, error.outcome
                body = {"error": error.message}
            except Exception:
                log.exception("request %s failed on the server side", request_id)
                status, outcome = 500, "error"
                body = {"error": f"internal server error; see the server log for {request_id}"}
            if isinstance(body, bytes):
                data = body
            else:
                body["model_version"] = self.model.version
                body["request_id"] = request_id
                data = orjson.dumps(body, option=_DUMP)
            if reply is not None and reply.binary:
                headers = CIMultiDict(self._binary_headers)
                headers[_HEADER_LENGTH] = str(len(data))
                response = self._response(
                    b"".join([data, *reply.binary]), status, request_id, headers
                )
            else:
                response = self._response(data, status, request_id)
            if self.canary is not None and request.get(_FORWARDING):
                # The canary ran out of the request's time: its failure (it counts its own), not ours.
                self.metrics.observe_side_channel("canary", outcome)
                return response
            self.metrics.observe_request(endpoint, outcome, time.perf_counter() - started)
            if (self.mirror or self.payloads) and reply is not None and reply.batch is not None:
                native = (
                    endpoint in ("predict", "v2_infer") and _HEADER_LENGTH not in request.headers
                )
                self.sample(
                    endpoint,
                    reply.batch,
                    request_id,
                    response=data,
                    path=request.path if native else None,
                    raw=reply.request if native else None,
                )
            return response

        return serve

    @staticmethod
    async def _within_deadline(
        answering: Coroutine[Any, Any, Reply | web.Response], deadline: float, started: float
    ) -> Reply | web.Response:
        """``answering`` awaited within what is left of ``deadline`` seconds from ``started``.

        The deadline is armed when the answer first has to wait (for the body, the canary, a
        batch or the inference thread). Until then nothing can interrupt it, the deadline
        included: had the time run out meanwhile, the timeout fires at that first wait, as
        one armed at the start would. A request answered without waiting (a lone request
        whose body had arrived, the common case) arms no timer at all, which cost as many
        instructions as the rest of its handling (27,600 for asyncio.timeout's context).
        """
        try:
            waiting = answering.send(None)
        except StopIteration as answered:
            answer: Reply | web.Response = answered.value
            return answer
        async with asyncio.timeout(deadline - (time.perf_counter() - started)):
            return await _resumed(answering, waiting)

    async def _answer(
        self, request: web.Request, endpoint: str, respond: Responder, request_id: str
    ) -> Reply | web.Response:
        """From the request to its reply (or the canary's answer, when it takes this one); a
        ClientError says what is wrong with it."""
        if request.match_info:  # the patterns' routes; the served model's own paths have none
            self._check_model(request)
        headers = request.headers
        header_length = headers.get(_HEADER_LENGTH)
        content_type = headers.get(hdrs.CONTENT_TYPE, "")
        if content_type != "application/json":  # the common case needs no parsing
            self._check_content_type(content_type, binary=header_length is not None)
        limit = self.settings.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"the body has {length} bytes; at most {limit} are accepted")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as error:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes") from error
        if self.canary is not None and self._to_canary(request, endpoint):
            request[_FORWARDING] = True  # a timeout meanwhile is the canary's (_endpoint)
            forwarded = await self._forward(request, raw)
            request[_FORWARDING] = False
            if forwarded is not None:
                return forwarded
        binary = None
        text = raw
        if header_length is not None:
            if endpoint != "v2_infer":
                raise InvalidInput(
                    f"binary tensor data ({HEADER_LENGTH}) is only accepted by "
                    "/v2/models/{name}/infer"
                )
            text, binary = split_body(raw, header_length)
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            hint = (
                f"; binary tensor data needs the {HEADER_LENGTH} header"
                if header_length is None and endpoint == "v2_infer"
                else ""
            )
            raise InvalidInput(f"the body is not valid JSON: {error}{hint}") from error
        reply = await respond(request, body, binary, request_id)
        reply.request = raw
        return reply

    def _to_canary(self, request: web.Request, endpoint: str) -> bool:
        # A request that names a version asks for that one; feedback has its own path.
        return (
            self.canary is not None
            and endpoint != "feedback"
            and "version" not in request.match_info
            and not request.path.startswith(self._versioned)
            and self.canary.take()
        )

    async def _forward(self, request: web.Request, raw: bytes) -> web.Response | None:
        assert self.canary is not None
        # Half the deadline for the canary: a slow one leaves time to answer here.
        within = self._deadline / 2 if self._deadline else None
        forwarded = await self.canary.forward(request.path, raw, request.headers, within=within)
        if forwarded is not None and self.draining:
            forwarded.force_close()
        return forwarded

    def sample(
        self,
        endpoint: str,
        batch: Batch,
        request_id: str,
        *,
        response: bytes,
        path: str | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Offer an answered request to the shadow mirror and the payload log.

        ``raw`` is the JSON body at ``path`` of a ``/predict`` or V2 JSON request; any other
        request (binary, KServe V1, MLflow, gRPC) travels as ``/predict`` rows, the one format
        every reader of the payload log and every shadow server takes.
        """
        if self.mirror is None and self.payloads is None:
            return
        if path is None or raw is None:
            path, endpoint = "/predict", "predict"
            raw = orjson.dumps({"rows": self.rows_of(batch)})
        if self.mirror is not None:
            self.mirror.offer(path, raw, request_id)
        if self.payloads is not None:
            self.payloads.log_request(endpoint, request_id, raw, response)

    def rows_of(self, batch: Batch) -> list[list[Any]]:
        """The rows of a validated batch, features in card order (JSON-ready)."""
        if self.model.single_input:
            return list(next(iter(batch.feeds.values())).tolist())
        columns: list[list[Any]] = [[] for _ in self.model.feature_names]
        for features in self.model.features_by_input.values():
            for feature in features:
                position = self.model.feature_names.index(feature.name)
                columns[position] = batch.feeds[feature.input][:, feature.index].tolist()
        return [list(row) for row in zip(*columns, strict=True)]

    def _path_version(self, request: web.Request) -> str | None:
        version = request.match_info.get("version")
        if version is None and request.path.startswith(self._versioned):
            return self.model.version  # the plain route of the served version
        return version

    def _check_model(self, request: web.Request) -> None:
        name = request.match_info.get("name")
        if name is not None and name != self.model.name:
            raise ModelNotFound(
                f"model {name!r} is not served here; this server serves {self.model.name!r}"
            )
        version = request.match_info.get("version")
        if version is not None and version != self.model.version:
            raise ModelNotFound(
                f"version {version!r} of {self.model.name!r} is not served here; "
                f"this server serves version {self.model.version!r}"
            )

    @staticmethod
    def _check_content_type(content_type: str, *, binary: bool) -> None:
        media = content_type.partition(";")[0].strip().lower()
        accepted = _BINARY_TYPES if binary else _JSON_TYPES
        if media in accepted or media.endswith("+json"):
            return
        if media == "application/octet-stream":
            raise UnsupportedMediaType(
                f"Content-Type {content_type!r} needs the {HEADER_LENGTH} header giving the "
                "JSON header's length (the binary tensor data extension, on "
                "/v2/models/{name}/infer); without it send application/json"
            )
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; send application/json"
            + (" or application/octet-stream" if binary else "")
        )

    def _response(
        self,
        data: bytes,
        status: int,
        request_id: str | None = None,
        headers: CIMultiDict[str] | None = None,
    ) -> web.Response:
        """A response with the version's headers (JSON unless ``headers`` say otherwise)."""
        # Response copies the headers it is given: the prebuilt ones stay as they are.
        response = web.Response(body=data, status=status, headers=headers or self._json_headers)
        if request_id is not None:
            response.headers[_REQUEST_ID] = request_id
        if self.draining:
            # Clients must not reuse a connection that is about to be closed.
            response.force_close()
        return response

    def _json(self, payload: dict[str, Any], status: int = 200) -> web.Response:
        return self._response(orjson.dumps(payload), status)

    # -- probes and metadata --------------------------------------------------------------

    async def _live(self, _: web.Request) -> web.Response:
        return self._json({"live": True})

    async def _ready(self, _: web.Request) -> web.Response:
        return self._json({"ready": not self.draining}, 503 if self.draining else 200)

    async def _model_ready(self, request: web.Request) -> web.Response:
        try:
            self._check_model(request)
            if self.draining:
                raise ServerNotReady("the server is shutting down")
        except ClientError as error:
            return self._json({"error": error.message}, error.status)
        return self._json({"name": self.model.name, "ready": True})

    async def _v1_model(self, request: web.Request) -> web.Response:
        return await self._model_ready(request)

    async def _server_metadata(self, _: web.Request) -> web.Response:
        return self._json(
            {"name": "mlops-operator", "version": __version__, "extensions": EXTENSIONS}
        )

    async def _model_metadata(self, request: web.Request) -> web.Response:
        try:
            self._check_model(request)
        except ClientError as error:
            return self._json({"error": error.message}, error.status)
        return self._json(self.metadata())

    async def _metrics(self, _: web.Request) -> web.Response:
        self.batcher.observe_now()  # this worker's last calls, counted before it answers
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE, **self._headers}
        )
