"""The common V2 JSON request's short path decides exactly as the full decoder.

Aspects: the requests real clients send (flat data, with or without ``id`` and the
envelope's names; one input or several, BYTES included) take the short path; a body the
full decoder refuses never does; a body both accept gives the same feeds, dtypes, shapes
and envelope. Hypothesis generates bodies around the valid one (wrong names, datatypes,
shapes, types, out-of-range numbers, nesting, extra keys) and compares both paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_operator.serving.errors import ClientError
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.model import V2_DATATYPES
from mlops_operator.serving.validation import CommonFeeds, RequestDecoder, V2Request
from tests.unit.serving.conftest import ModelDir

pytestmark = pytest.mark.unit

ROW = [5.1, 3.5, 1.4, 0.2]
FLOAT32_MAX = float(np.finfo(np.float32).max)
EDGES = [FLOAT32_MAX, -FLOAT32_MAX, 3.4028235e38, 3.4028236e38, -3.5e38, 1e39, 2**63, 2**128,
         -(2**63), -(2**64), 1.7e308]  # fmt: skip


def _same(common: CommonFeeds, full: V2Request) -> None:
    feeds, rows, envelope = common
    assert rows == full.batch.rows
    assert feeds.keys() == full.batch.feeds.keys()
    for name, array in full.batch.feeds.items():
        assert feeds[name].dtype == array.dtype
        assert feeds[name].shape == array.shape
        np.testing.assert_array_equal(feeds[name], array)
    assert envelope == (full.id, full.model_name, full.model_version)
    # Nothing the short path leaves out: every output, all as JSON.
    assert (full.outputs, full.binary_outputs) == (None, frozenset())


def _decide(decoder: RequestDecoder, body: Any) -> tuple[CommonFeeds | None, V2Request | None]:
    """(the short path's result, the full decoder's result or None when it refuses)."""
    try:
        full: V2Request | None = decoder.full_v2(body)
    except ClientError:
        full = None
    return decoder.common_v2(body), full


@pytest.fixture(scope="module")
def iris(iris_lr: ModelDir) -> RequestDecoder:
    return RequestDecoder(load_model(str(iris_lr.path), threads=1), max_rows=10)


def test_what_clients_send_takes_the_short_path(iris: RequestDecoder) -> None:
    tensor = {"name": "X", "shape": [2, 4], "datatype": "FP32", "data": [*ROW, 6, 3, 5, 2]}
    for body in (
        {"inputs": [tensor]},
        {"id": "a", "inputs": [tensor]},
        {"model_name": "iris", "model_version": "1", "inputs": [tensor]},  # KServe's client
        {"id": None, "inputs": [tensor]},
    ):
        common, full = _decide(iris, body)
        assert common is not None, body
        assert full is not None, body
        _same(common, full)
        assert common[0]["X"].tolist() == np.float32([ROW, [6, 3, 5, 2]]).tolist()


def test_what_it_does_not_cover_goes_to_the_full_decoder(iris: RequestDecoder) -> None:
    tensor = {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ROW}
    accepted_elsewhere = [
        {"inputs": [{**tensor, "data": [ROW]}]},  # nested data
        {"inputs": [tensor], "outputs": [{"name": "label"}]},
        {"inputs": [tensor], "parameters": {}},
        {"inputs": [{**tensor, "parameters": {}}]},
        {"inputs": [{**tensor, "data": [5.1, 3.5, 1.4, 3.4028235e38]}]},  # rounds to max
    ]
    for body in accepted_elsewhere:
        common, full = _decide(iris, body)
        assert (common, full is not None) == (None, True), body
    refused = [
        {"inputs": [{**tensor, "data": [5.1, 3.5, 1.4, 1e39]}]},  # infinity in float32
        {"inputs": [{**tensor, "data": [5.1, 3.5, 1.4, True]}]},
        {"inputs": [{**tensor, "shape": [True, 4]}]},
        {"inputs": [{**tensor, "shape": [11, 4], "data": ROW * 11}]},  # over max_rows
        {"inputs": [tensor, tensor]},
        {"inputs": [tensor], "id": 5},
        {"inputs": [tensor], "model_name": ["iris"]},
    ]
    for body in refused:
        assert _decide(iris, body) == (None, None), body


def test_several_inputs_and_strings(trained_categorical: ModelDir) -> None:
    model = load_model(str(trained_categorical.path), threads=1)
    decoder = RequestDecoder(model, max_rows=10)
    values = {"age": [30.0, 61.0], "income": [40.5, 72.0], "plan": ["pro", "basic"],
              "region": ["north", "east"]}  # fmt: skip
    inputs = [
        {"name": spec.name, "shape": [2, 1], "datatype": V2_DATATYPES[spec.dtype],
         "data": values[spec.name]}
        for spec in reversed(model.card.signature.inputs)  # any order
    ]  # fmt: skip
    common, full = _decide(decoder, {"inputs": inputs})
    assert common is not None
    assert full is not None
    _same(common, full)
    assert common[0]["plan"].tolist() == [["pro"], ["basic"]]
    numbers_for_strings = [{**t, "data": [1, 2]} if t["name"] == "plan" else t for t in inputs]
    for body in ({"inputs": numbers_for_strings}, {"inputs": inputs[:-1]}):
        assert _decide(decoder, body) == (None, None)


scalars = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([*EDGES, 0, -0.0]),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
numbers = st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000))
anything = st.one_of(scalars, st.lists(st.integers(-2, 12), max_size=3))


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request with at most one thing changed: one field, element or key."""
    rows = draw(st.integers(1, 3))
    tensor: dict[str, Any] = {
        "name": "X",
        "shape": [rows, 4],
        "datatype": "FP32",
        "data": draw(st.lists(numbers, min_size=rows * 4, max_size=rows * 4)),
    }
    body: dict[str, Any] = {"inputs": [tensor]}
    for key in draw(st.sets(st.sampled_from(["id", "model_name", "model_version"]))):
        body[key] = draw(st.one_of(st.text(max_size=3), st.none()))
    change = draw(st.sampled_from(["none", "element", "edge", "shape", "field", "tensor key",
                                   "body key", "envelope", "nest", "twice", "length"]))  # fmt: skip
    if change == "edge":  # at float32's and int64's limits, and past them
        tensor["data"][draw(st.integers(0, rows * 4 - 1))] = draw(st.sampled_from(EDGES))
    elif change == "element":
        tensor["data"][draw(st.integers(0, rows * 4 - 1))] = draw(scalars)
    elif change == "shape":
        tensor["shape"][draw(st.integers(0, 1))] = draw(anything)
    elif change == "field":
        tensor[draw(st.sampled_from(["name", "shape", "datatype", "data"]))] = draw(anything)
    elif change == "tensor key":
        tensor[draw(st.sampled_from(["parameters", "extra"]))] = draw(
            st.sampled_from([{}, None, {"binary_data_size": 16}, 1])
        )
    elif change == "body key":
        body[draw(st.sampled_from(["parameters", "outputs", "extra"]))] = draw(
            st.sampled_from([{}, [], [{"name": "label"}], {"binary_data_output": True}, 1])
        )
    elif change == "envelope":
        body[draw(st.sampled_from(["id", "model_name", "model_version"]))] = draw(anything)
    elif change == "nest":
        tensor["data"] = [tensor["data"][i : i + 4] for i in range(0, rows * 4, 4)]
    elif change == "twice":
        body["inputs"] = [tensor, dict(tensor)]
    elif change == "length":
        tensor["data"] = tensor["data"][: draw(st.integers(0, rows * 4 - 1))]
    return body


tensors = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["X", "x", 5, None]),
        "shape": st.lists(st.one_of(st.integers(-1, 12), st.booleans(), st.just("4")), max_size=3),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", 3]),
        "data": st.lists(scalars, max_size=16),
    },
    optional={"parameters": st.sampled_from([{}, None]), "extra": st.integers()},
)
envelope = st.one_of(st.text(max_size=4), st.none(), st.integers())
bodies = st.one_of(
    near_valid(),
    st.fixed_dictionaries(
        {"inputs": st.one_of(st.lists(tensors, max_size=2), st.none(), st.text(max_size=2))},
        optional={"id": envelope, "model_name": envelope, "outputs": st.just([])},
    ),
    scalars,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_the_short_path_never_decides_otherwise(iris: RequestDecoder, body: Any) -> None:
    common, full = _decide(iris, body)
    if common is not None:
        assert full is not None, "the short path accepted a body the full decoder refuses"
        _same(common, full)
