"""The floor: the least a Python server must do to answer a V2 request with onnxruntime.

aiohttp on uvloop, orjson, one process, one onnxruntime session with one thread: parse the
body, take the first input's ``data`` as a float32 ``[rows, n]`` array, run the model, answer
every output as a V2 tensor. No validation, no metrics, no batching, no ids. Our server is
judged by its ratio to this figure measured in the same run (bench_compare.py).

Run: ``.venv/bin/python benchmarks/serving/floor_server.py --model-dir DIR --port 8080``
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np
import onnxruntime
import orjson
import uvloop
from aiohttp import web


def application(model: Path, name: str) -> web.Application:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), options)
    input_name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]

    async def infer(request: web.Request) -> web.Response:
        tensor = orjson.loads(await request.read())["inputs"][0]
        features = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        results = session.run(outputs, {input_name: features})
        body = {
            "model_name": name,
            "outputs": [
                {"name": n, "shape": list(r.shape), "datatype": "FP32", "data": r.ravel()}
                for n, r in zip(outputs, results, strict=True)
            ],
        }
        return web.Response(
            body=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            content_type="application/json",
        )

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"ready": True})

    app = web.Application()
    app.router.add_post(f"/v2/models/{name}/infer", infer)
    app.router.add_get(f"/v2/models/{name}/ready", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = application(args.model_dir / "model.onnx", args.name)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
