"""KServe's Python model server on one model, for bench_compare.py (runs in the kserve venv).

``--kind sklearn`` mirrors KServe's sklearnserver (``kserve/python/sklearnserver``): joblib
load, ``get_predict_input`` / ``predict`` / ``get_predict_response``. ``--kind onnx`` is the
minimal custom model class a KServe user writes for an ONNX file: one onnxruntime session,
both outputs (label, probabilities) returned as V2 tensors, as our server returns them.

Run: ``<venv>/bin/python kserve_server.py --kind onnx --model-dir DIR --name iris --port 8080``
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.utils.utils import generate_uuid, get_predict_input, get_predict_response


class SKLearnModel(Model):  # type: ignore[misc]
    """What KServe's sklearnserver does: predict on the decoded V2 input."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self._model = joblib.load(path)
        self.ready = True

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> Any:
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict(instances), self.name)


class OnnxModel(Model):  # type: ignore[misc]
    """A minimal KServe model class for an ONNX classifier.

    KServe's multi-process mode (``--workers 2``) pickles the model into each worker, and an
    onnxruntime session cannot be pickled ("cannot pickle InferenceSession"): the session is
    dropped from the pickle and loaded again in each worker, as a KServe user would do.
    """

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self._path = path
        self._load()
        self.ready = True

    def _load(self) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(self._path), options)
        self._input = self._session.get_inputs()[0].name

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_session"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load()

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> Any:
        features = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
        label, probabilities = self._session.run(None, {self._input: features})
        outputs = []
        for name, datatype, array in (
            ("label", "INT64", label),
            ("probabilities", "FP32", probabilities),
        ):
            output = InferOutput(name=name, shape=list(array.shape), datatype=datatype)
            output.set_data_from_numpy(array, binary_data=False)
            outputs.append(output)
        return InferResponse(
            model_name=self.name, infer_outputs=outputs, response_id=payload.id or generate_uuid()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("sklearn", "onnx"), required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    model: Model
    if args.kind == "sklearn":
        model = SKLearnModel(args.name, args.model_dir / "model.joblib")
    else:
        model = OnnxModel(args.name, args.model_dir / "model.onnx")
    ModelServer(
        http_port=args.port, grpc_port=args.grpc_port, enable_grpc=False, workers=args.workers
    ).start([model])


if __name__ == "__main__":
    main()
