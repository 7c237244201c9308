"""Instructions per call of each piece of the V2 request path, ours beside the floor's.

``bench_instructions.py`` says what a whole request costs; this says where it goes. Each
piece (issuing the request id, decoding the body, running the model, the batcher's lone
path, writing the answer, the response object, counting the request) is called ``--calls``
times in one process under ``valgrind --tool=callgrind``, between calls of a marker
(``os.getppid``) that callgrind dumps its counters before (``--dump-before``): each
segment's total divided by the calls is one call's cost, whatever the machine's load. The
floor's own steps (``floor_server.py``: ``np.asarray`` of the data, one ``orjson.dumps`` of
the answer, ``web.Response``) are measured the same way, and so are both whole handlers,
called on a request whose body aiohttp has read already (a lone request: ours answers it
without waiting). What the handlers do not hold (aiohttp's request handling and response
writing, the loop) is the difference between ``bench_instructions.py``'s figures and theirs.

Needs valgrind (installed here when missing and run as root).

Run: ``.venv/bin/python benchmarks/serving/bench_pieces.py [--calls 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import floor_server
from tools import ensure_debian_package

from mlops_operator.serving.app import InferenceServer
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.settings import ServingSettings
from mlops_operator.trainer.run import train
from mlops_operator.trainer.settings import TrainerSettings

BODY = orjson.dumps(
    {
        "inputs": [
            {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
        ]
    }
)
PIECES = [
    ("nothing (the loop's own cost)", "both"),
    ("orjson.loads of the body", "both"),
    ("request id (ids.issue)", "ours"),
    ("V2 decoding, short path (decoder.common_v2)", "ours"),
    ("V2 decoding, full decoder (decoder.full_v2)", "ours"),
    ("floor: np.asarray(data).reshape(shape)", "floor"),
    ("model.run (onnxruntime, one row)", "both"),
    ("batcher, lone request (run + kept for counting)", "ours"),
    ("answer JSON (template render)", "ours"),
    ("floor: orjson.dumps of the answer", "floor"),
    ("response object (_response)", "ours"),
    ("floor: web.Response", "floor"),
    ("request counted (observe_request)", "ours"),
    ("the V2 handler, whole (its body already read)", "ours"),
    ("floor: its handler, whole (its body already read)", "floor"),
]


def pieces(model_dir: Path, labels: Path) -> list[Callable[[], Any]]:
    """The pieces, in ``PIECES``' order, ready to call."""
    model = load_model(str(model_dir), threads=1)
    # As at full speed: iris runs on the loop (under callgrind its one-row call looks slow
    # enough for a thread), and kept calls are counted at 256 rows, not by the timer.
    settings = ServingSettings(
        model_dir=str(model_dir), labels_uri=str(labels), observe_delay_ms=3_600_000,
        offload_inference=False,
    )  # fmt: skip
    server = InferenceServer(model, settings)
    server.batcher.start()
    body = orjson.loads(BODY)
    request_id = server.ids.issue()
    parsed = server.decoder.full_v2(body)
    outputs = model.run(parsed.batch.feeds)
    batcher = server.batcher
    tensor = body["inputs"][0]

    def next_turn() -> None:
        # What the loop's next turn would do: clear the turn's mark, count at 256 rows.
        batcher._clear_turn()
        if batcher._observe_soon:
            batcher.observe_now()

    def alone() -> None:
        if not isinstance(batcher.submit(parsed.batch, request_id), list):
            raise RuntimeError(  # noqa: TRY004 - a path not taken, not a wrong type
                "the request was queued: not the lone path this piece measures"
            )
        next_turn()

    ours_handler, ours_request = _handler(server.application())
    floor_handler, floor_request = _handler(
        floor_server.application(model_dir / "model.onnx", "iris")
    )

    def handled(handler: Any, request: web.Request) -> None:
        step = handler(request)
        try:
            step.send(None)
        except StopIteration:
            pass  # answered without waiting: a lone request whose body had arrived
        else:
            raise RuntimeError("the handler waited: not the path this piece measures")

    def ours_whole() -> None:
        handled(ours_handler, ours_request)
        next_turn()

    def floor_answer() -> bytes:
        return orjson.dumps(
            {"model_name": "iris", "outputs": [
                {"name": n, "shape": list(r.shape), "datatype": "FP32", "data": r.ravel()}
                for n, r in zip(model.output_names, outputs, strict=True)]},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )  # fmt: skip

    return [
        lambda: None,
        lambda: orjson.loads(BODY),
        server.ids.issue,
        lambda: server.decoder.common_v2(body),
        lambda: server.decoder.full_v2(body),
        lambda: np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"]),
        lambda: model.run(parsed.batch.feeds),
        alone,
        lambda: server._v2_template.render(None, request_id, outputs),
        floor_answer,
        lambda: server._response(b"x" * 200, 200, request_id),
        lambda: web.Response(body=b"x" * 200, content_type="application/json"),
        lambda: server.metrics.observe_request("v2_infer", "ok", 0.0001),
        ours_whole,
        lambda: handled(floor_handler, floor_request),
    ]


def _handler(app: web.Application) -> tuple[Any, web.Request]:
    """The V2 infer handler of ``app`` and a request for it whose body was read already (the
    common case: the body arrives with the headers)."""
    path = "/v2/models/iris/infer"
    resource = next(r for r in app.router.resources() if r.canonical == path)
    handler = next(iter(resource)).handler
    headers = {"Content-Type": "application/json", "Content-Length": str(len(BODY))}
    request = make_mocked_request("POST", path, headers=headers, app=app)
    request._read_bytes = BODY  # what aiohttp keeps once it has read the body
    return handler, request


async def run_pieces(model_dir: Path, labels: Path, calls: int) -> None:
    """Each piece ``calls`` times between two markers (run under callgrind by ``main``)."""
    for piece in pieces(model_dir, labels):
        for _ in range(50):  # warm up: caches, first-call paths
            piece()
        os.getppid()
        for _ in range(calls):
            piece()
        os.getppid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--run", nargs=2, metavar=("MODEL_DIR", "LABELS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        asyncio.run(run_pieces(Path(args.run[0]), Path(args.run[1]), args.calls))
        return
    ensure_debian_package("valgrind", "valgrind")
    with tempfile.TemporaryDirectory() as root:
        model_dir = Path(root) / "iris"
        train(TrainerSettings(dataset_uri="sklearn://iris", target="target",
                              estimator="LogisticRegression", model_name="iris", output_dir=model_dir))  # fmt: skip
        out = Path(root) / "callgrind.pieces"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-before=os_getppid",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--calls", str(args.calls),
             "--run", str(model_dir), str(Path(root) / "labels")],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Dumps in order: the start and the first warm-up, then per piece its calls and the
        # next warm-up; the last holds the exit.
        dumps = sorted(out.parent.glob(f"{out.name}.*"), key=lambda p: int(p.suffix[1:]))
        totals = [int(re.search(r"^totals: (\d+)", d.read_text(), re.MULTILINE)[1]) for d in dumps]  # type: ignore[index]
        measured = totals[1::2]
        print(f"# instructions per call, {args.calls} calls each (callgrind); iris, one FP32 row")
        print("| piece | side | instructions per call |")
        print("|---|---|---:|")
        for (name, side), total in zip(PIECES, measured, strict=False):
            print(f"| {name} | {side} | {total / args.calls:,.0f} |")


if __name__ == "__main__":
    main()
