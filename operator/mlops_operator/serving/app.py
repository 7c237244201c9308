"""HTTP wiring: the Open Inference Protocol, ``/predict``, ``/feedback``, probes and ``/metrics``.

Handlers only move bytes: decoding and checks live in ``validation``, inference
in ``batching``, counting in ``metrics``. Every response carries the model
version and a request id (``X-Model-Version``, ``X-Request-ID``, and in JSON
bodies). Client mistakes are 4xx with a message; only a server fault is a 5xx.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from mlops_operator import __version__
from mlops_operator.serving.batching import MicroBatcher
from mlops_operator.serving.errors import (
    CanaryUnreachable,
    ClientError,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    PayloadTooLarge,
    ServerNotReady,
    UnsupportedMediaType,
)
from mlops_operator.serving.feedback import FeedbackStore, parse_feedback
from mlops_operator.serving.metrics import CONTENT_TYPE, ServingMetrics
from mlops_operator.serving.model import V2_DATATYPES, ServedModel
from mlops_operator.serving.settings import ServingSettings
from mlops_operator.serving.sidechannels import CanaryForwarder, PayloadLogger, ShadowMirror
from mlops_operator.serving.validation import RequestDecoder

__all__ = ["InferenceServer"]

log = logging.getLogger(__name__)

_JSON_TYPES = frozenset({"application/json", ""})
_DUMP = orjson.OPT_SERIALIZE_NUMPY
Responder = Callable[[Any, str], Awaitable[dict[str, Any]]]


class InferenceServer:
    """The aiohttp application of one worker and the state its handlers share."""

    def __init__(self, model: ServedModel, settings: ServingSettings, *, worker: int = 0) -> None:
        self.model = model
        self.settings = settings
        self.metrics = ServingMetrics(model)
        self.decoder = RequestDecoder(model, max_rows=settings.max_rows)
        self.batcher = MicroBatcher(
            model,
            self.metrics,
            max_rows=settings.max_batch_rows,
            delay_seconds=settings.batch_delay_ms / 1000,
            offload=settings.offload_inference,
        )
        self.feedback = FeedbackStore(settings.feedback_window)
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
            CanaryForwarder(
                settings.canary_url,
                self.metrics,
                percent=settings.canary_percent,
                remembered=settings.feedback_window,
            )
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
        # Unique per process lifetime and cheap: a random nonce, the worker, a counter.
        self._id_prefix = f"{os.urandom(4).hex()}-{worker}-"
        self._id_counter = itertools.count(1)
        self._headers = {"X-Model-Version": model.version}

    def _next_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):x}"

    def application(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        name = "/v2/models/{name}"
        app.router.add_get("/v2/health/live", self._live)
        app.router.add_get("/v2/health/ready", self._ready)
        app.router.add_get("/v2", self._server_metadata)
        app.router.add_get(name, self._model_metadata)
        app.router.add_get(name + "/versions/{version}", self._model_metadata)
        app.router.add_get(name + "/ready", self._model_ready)
        app.router.add_get(name + "/versions/{version}/ready", self._model_ready)
        app.router.add_post(name + "/infer", self._v2_infer)
        app.router.add_post(name + "/versions/{version}/infer", self._v2_infer)
        app.router.add_post("/predict", self._predict)
        app.router.add_post("/feedback", self._feedback)
        app.router.add_get("/metrics", self._metrics)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _: web.Application) -> None:
        self.batcher.start()
        for channel in (self.mirror, self.payloads, self.canary):
            if channel is not None:
                channel.start()

    async def _stop(self, _: web.Application) -> None:
        await self.batcher.stop()
        for channel in (self.mirror, self.payloads, self.canary):
            if channel is not None:
                await channel.stop()

    # -- inference ------------------------------------------------------------------------

    async def _predict(self, request: web.Request) -> web.Response:
        return await self._serve(request, "predict", self._predict_body)

    async def _predict_body(self, body: Any, request_id: str) -> dict[str, Any]:
        batch = self.decoder.predict(body)
        outputs = await self.batcher.predict(batch)
        if self.model.is_classifier:
            labels = list(map(str, outputs[0].tolist()))
            self.feedback.remember(request_id, labels)
            return {
                "labels": labels,
                "probabilities": outputs[1],
                "classes": self.model.card.signature.classes,
            }
        predictions = outputs[0].ravel()
        self.feedback.remember(request_id, predictions.tolist())
        return {"predictions": predictions}

    async def _v2_infer(self, request: web.Request) -> web.Response:
        return await self._serve(request, "v2_infer", self._v2_body)

    async def _v2_body(self, body: Any, request_id: str) -> dict[str, Any]:
        parsed = self.decoder.v2(body)
        outputs = await self.batcher.predict(parsed.batch)
        first = outputs[0]
        remembered = first.ravel().tolist()
        self.feedback.remember(
            request_id, list(map(str, remembered)) if self.model.is_classifier else remembered
        )
        tensors = []
        for spec, output in zip(self.model.card.signature.outputs, outputs, strict=True):
            if parsed.outputs is not None and spec.name not in parsed.outputs:
                continue
            flat = output.ravel()
            tensors.append(
                {
                    "name": spec.name,
                    "datatype": V2_DATATYPES[spec.dtype],
                    "shape": list(output.shape),
                    "data": flat.tolist() if flat.dtype.kind == "O" else flat,
                }
            )
        return {
            "model_name": self.model.name,
            "id": parsed.id or request_id,
            "parameters": {"request_id": request_id},
            "outputs": tensors,
        }

    async def _feedback(self, request: web.Request) -> web.Response:
        return await self._serve(request, "feedback", self._feedback_body)

    async def _feedback_body(self, body: Any, _: str) -> dict[str, Any]:
        classification = self.model.is_classifier
        pairs = parse_feedback(body, classification=classification)
        passed_on = 0
        if self.canary is not None:
            theirs = [(rid, labels) for rid, labels in pairs if self.canary.answered(rid)]
            pairs = [(rid, labels) for rid, labels in pairs if not self.canary.answered(rid)]
            passed_on = await self._canary_feedback(theirs) if theirs else 0
        matched = [(self.feedback.take(rid, len(labels)), labels) for rid, labels in pairs]
        total = correct = 0
        squared = 0.0
        for predictions, labels in matched:
            total += len(labels)
            for predicted, actual in zip(predictions, labels, strict=True):
                if classification:
                    correct += predicted == actual
                else:
                    squared += (predicted - actual) ** 2
        self.metrics.observe_feedback(total, correct, squared)
        if self.payloads is not None:
            for request_id, labels in pairs:
                self.payloads.log_feedback(request_id, labels)
        return {"accepted": total + passed_on}

    async def _canary_feedback(self, pairs: list[tuple[str, list[Any]]]) -> int:
        assert self.canary is not None
        items = [{"request_id": rid, "labels": labels} for rid, labels in pairs]
        status, text = await self.canary.feedback(items)
        if status != 200:
            raise CanaryUnreachable(f"the canary refused the feedback of its requests: {text}")
        accepted: int = orjson.loads(text)["accepted"]
        return accepted

    async def _serve(self, request: web.Request, endpoint: str, respond: Responder) -> web.Response:
        started = time.perf_counter()
        request_id = self._next_id()
        status, outcome = 200, "ok"
        raw = b""
        forwarding = False
        try:
            async with asyncio.timeout(self._deadline):
                self._check_model(request)
                raw = await self._read_body(request)
                if self._to_canary(request, endpoint):
                    assert self.canary is not None
                    forwarding = True
                    content_type = request.headers.get("Content-Type", "")
                    forwarded = await self.canary.forward(request.path, raw, content_type)
                    forwarding = False
                    if forwarded is not None:
                        if self.draining:
                            forwarded.force_close()
                        return forwarded
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as error:
                    raise InvalidInput(f"the body is not valid JSON: {error}") from error
                payload = await respond(body, request_id)
        except TimeoutError:
            late = DeadlineExceeded(
                f"no answer within the server's deadline of {self.settings.timeout_ms} ms"
                " (spec.server.timeoutMs)"
            )
            status, outcome = late.status, late.outcome
            payload = {"error": late.message}
        except ClientError as error:
            status, outcome = error.status, error.outcome
            payload = {"error": error.message}
        except Exception:
            log.exception("request %s failed on the server side", request_id)
            status, outcome = 500, "error"
            payload = {"error": f"internal server error; see the server log for {request_id}"}
        payload["model_version"] = self.model.version
        payload["request_id"] = request_id
        data = orjson.dumps(payload, option=_DUMP)
        response = self._response(data, status, request_id)
        if forwarding:
            # The canary ran out of the request's time: its failure (it counts its own), not ours.
            self.metrics.observe_side_channel("canary", outcome)
            return response
        self.metrics.observe_request(endpoint, outcome, time.perf_counter() - started)
        if status == 200 and endpoint != "feedback":
            if self.mirror is not None:
                self.mirror.offer(request.path, raw, request_id)
            if self.payloads is not None:
                self.payloads.log_request(endpoint, request_id, raw, data)
        return response

    def _to_canary(self, request: web.Request, endpoint: str) -> bool:
        # A request that names a version asks for that one; feedback has its own path.
        return (
            self.canary is not None
            and endpoint != "feedback"
            and "version" not in request.match_info
            and self.canary.take()
        )

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

    async def _read_body(self, request: web.Request) -> bytes:
        content_type = request.headers.get("Content-Type", "")
        media = content_type.partition(";")[0].strip().lower()
        if media not in _JSON_TYPES and not media.endswith("+json"):
            raise UnsupportedMediaType(
                f"Content-Type {content_type!r} is not supported; send application/json"
            )
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(
                f"the body has {request.content_length} bytes; at most {limit} are accepted"
            )
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as error:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes") from error

    def _response(self, data: bytes, status: int, request_id: str | None = None) -> web.Response:
        headers = (
            self._headers if request_id is None else {**self._headers, "X-Request-ID": request_id}
        )
        response = web.Response(
            body=data, status=status, content_type="application/json", headers=headers
        )
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

    async def _server_metadata(self, _: web.Request) -> web.Response:
        return self._json({"name": "mlops-operator", "version": __version__, "extensions": []})

    async def _model_metadata(self, request: web.Request) -> web.Response:
        try:
            self._check_model(request)
        except ClientError as error:
            return self._json({"error": error.message}, error.status)
        signature = self.model.card.signature

        def tensors(specs: list[Any]) -> list[dict[str, Any]]:
            return [
                {
                    "name": s.name,
                    "datatype": V2_DATATYPES[s.dtype],
                    "shape": [-1 if d is None else d for d in s.shape],
                }
                for s in specs
            ]

        return self._json(
            {
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
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE, **self._headers}
        )
