"""Prometheus answers and exposition text become `Sample`s; malformed ones fail with a clear error."""

from __future__ import annotations

import math

import pytest

from mlops_operator.prometheus import PrometheusError, ScrapeError, parse_exposition
from mlops_operator.prometheus.client import PrometheusClient, parse_query_response


def test_vector_answer_keeps_labels_and_values() -> None:
    payload = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"model_version": "2"}, "value": [1700000000.5, "0.25"]},
                {"metric": {}, "value": [1700000000.5, "NaN"]},
            ],
        },
    }
    first, second = parse_query_response(payload)
    assert first.labels == {"model_version": "2"}
    assert first.value == 0.25
    assert first.timestamp == 1700000000.5
    assert math.isnan(second.value)


def test_scalar_answer_is_one_sample() -> None:
    payload = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "+Inf"]}}
    (sample,) = parse_query_response(payload)
    assert sample.value == math.inf
    assert sample.name == ""


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "bad_data"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "instant query"),
        ({"status": "success", "data": {"resultType": "scalar", "result": "x"}}, "number"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_refusals_say_what_was_wrong(payload: object, expected: str) -> None:
    with pytest.raises(PrometheusError, match=expected):
        parse_query_response(payload)


def test_client_wants_an_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        PrometheusClient("prometheus:9090")


def test_exposition_samples_carry_their_full_names() -> None:
    text = (
        "# TYPE mlops_requests counter\n"
        'mlops_requests_total{model="iris",model_version="1",outcome="ok"} 7\n'
        "# TYPE lat histogram\n"
        'lat_bucket{le="0.1"} 3\nlat_bucket{le="+Inf"} 4\nlat_sum 0.5\nlat_count 4\n'
    )
    samples = parse_exposition(text)
    by_name = {(s.name, s.labels.get("le")): s.value for s in samples}
    assert by_name[("mlops_requests_total", None)] == 7
    assert by_name[("lat_bucket", "+Inf")] == 4
    assert by_name[("lat_count", None)] == 4


def test_garbage_is_not_exposition() -> None:
    with pytest.raises(ScrapeError):
        parse_exposition("this is { not metrics\n")


def test_a_refused_exposition_names_its_first_bad_line() -> None:
    text = '# TYPE x counter\nx_total{model="a"} 1\nx_total{model="b"} {m\nx_total 2\n'
    with pytest.raises(ScrapeError, match=r"""\(line 3: 'x_total\{model="b"\} \{m'\)"""):
        parse_exposition(text)
