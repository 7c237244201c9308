"""A deliberately slow copy of a trained model: same answers, hundreds of milliseconds each.

The copy adds a branch to the ONNX graph that multiplies 2000×2000 matrices (about 50 GFLOP)
scaled by the input (so onnxruntime cannot fold it away at load time) and adds
zero times its sum to the probabilities: every answer stays bit-for-bit the
same, so the copy passes validation (checksum, signature, parity), and only
its latency gives it away, as a real regression would in a canary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mlops_operator.modelcard import MODEL_CARD_FILE, MODEL_FILE, ModelCard
from mlops_operator.storage import ArtifactStore, sha256_bytes

_SIZE = 2000
_PRODUCTS = 3


def slow_copy(store: Path, key: str, new_key: str) -> ModelCard:
    """Write the slowed model and its card under `new_key`; the new card."""
    source = ArtifactStore(str(store / key))
    card = ModelCard.model_validate_json(source.read_bytes(MODEL_CARD_FILE))
    model = onnx.load_from_string(source.read_bytes(MODEL_FILE))
    graph = model.graph
    feature_input = graph.input[0].name
    probabilities = card.signature.outputs[1].name
    for node in graph.node:
        node.output[:] = [f"{o}_fast" if o == probabilities else o for o in node.output]
    matrix = np.full((_SIZE, _SIZE), 1e-3, dtype=np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(matrix, "slow_matrix"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "slow_zero"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceSum", [feature_input], ["slow_sum"], keepdims=0),
            helper.make_node("Sigmoid", ["slow_sum"], ["slow_scale"]),
            helper.make_node("Mul", ["slow_matrix", "slow_scale"], ["slow_m"]),
            helper.make_node("Identity", ["slow_m"], ["slow_0"]),
            *(
                helper.make_node("MatMul", [f"slow_{i}", "slow_m"], [f"slow_{i + 1}"])
                for i in range(_PRODUCTS)
            ),
            helper.make_node("ReduceSum", [f"slow_{_PRODUCTS}"], ["slow_total"], keepdims=0),
            helper.make_node("Mul", ["slow_total", "slow_zero"], ["slow_nothing"]),
            helper.make_node("Add", [f"{probabilities}_fast", "slow_nothing"], [probabilities]),
        ]
    )
    data = model.SerializeToString()
    sha = sha256_bytes(data)
    slowed = card.model_copy(
        update={
            "artifact": card.artifact.model_copy(update={"sha256": sha, "size_bytes": len(data)})
        }
    )
    target = ArtifactStore(str(store / new_key))
    target.put_bytes(MODEL_FILE, data, sha256=sha)
    target.put_bytes(MODEL_CARD_FILE, slowed.model_dump_json(indent=2).encode())
    for path in (store, *store.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return slowed
