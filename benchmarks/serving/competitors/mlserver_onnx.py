"""A minimal MLServer model class for an ONNX classifier, for bench_compare.py.

Runs in the mlserver venv (``implementation: mlserver_onnx.OnnxModel`` in model-settings.json,
this folder on PYTHONPATH). One onnxruntime session; both outputs (label, probabilities)
returned as V2 tensors, as our server returns them.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxModel(MLModel):  # type: ignore[misc]
    """Loads ``parameters.uri`` into onnxruntime and answers V2 requests with it."""

    async def load(self) -> bool:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        uri = await get_model_uri(self._settings)
        self._session = onnxruntime.InferenceSession(uri, options)
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        label, probabilities = self._session.run(None, {self._input: features})
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output("label", label),
                NumpyCodec.encode_output("probabilities", probabilities),
            ],
        )
