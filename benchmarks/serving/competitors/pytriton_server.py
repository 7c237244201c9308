"""Triton through PyTriton serving an ONNX classifier, for bench_compare.py (pytriton venv).

The inference callable runs the ONNX model in onnxruntime; Triton's dynamic batcher (on by
default in PyTriton) merges concurrent requests up to ``max_batch_size`` (256, our server's
micro-batch cap; PyTriton's default is 4). Every port listens on 127.0.0.1.

Run: ``<venv>/bin/python pytriton_server.py --model-dir DIR --name iris --port 8000 ...``
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    args = parser.parse_args()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(args.model_dir / "model.onnx"), options)
    source = session.get_inputs()[0]
    classes = session.get_outputs()[1].shape[1]

    @batch  # type: ignore[misc]
    def infer(**inputs: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
        label, probabilities = session.run(None, {source.name: inputs[source.name]})
        return {"label": label.reshape(-1, 1), "probabilities": probabilities}

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        metrics_address="127.0.0.1",
        metrics_port=args.metrics_port,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name=args.name,
            infer_func=infer,
            inputs=[Tensor(name=source.name, dtype=np.float32, shape=(source.shape[1],))],
            outputs=[
                Tensor(name="label", dtype=np.int64, shape=(1,)),
                Tensor(name="probabilities", dtype=np.float32, shape=(classes,)),
            ],
            config=ModelConfig(max_batch_size=256),
        )
        triton.serve()


if __name__ == "__main__":
    main()
