"""PromQL builders: scoping, escaping, the count queries and the statistic queries' shape.

That the statistic queries compute the same numbers as `measure` is checked on a real
Prometheus (tests/integration/driftpolicy/test_prometheus_agreement.py).
"""

from __future__ import annotations

import pytest

from mlops_operator.api.durations import parse_duration, promql_duration
from mlops_operator.drift import promql
from mlops_operator.realized import VERSION_GAUGES

SCOPE = promql.Scope(model="iris", namespace="team-a", model_version="3")


def test_scope_matches_model_namespace_and_version() -> None:
    assert SCOPE.matchers() == '{model="iris",namespace="team-a",model_version="3"}'
    assert promql.Scope(model="iris").matchers('bin="0"') == '{model="iris",bin="0"}'


def test_label_values_are_escaped() -> None:
    assert promql.Scope(model='a"b\\c').matchers() == '{model="a\\"b\\\\c"}'


def test_count_queries() -> None:
    assert promql.feature_bins(SCOPE, "5m") == (
        "sum by (model_version, feature, bin) (increase(mlops_feature_bin_total"
        '{model="iris",namespace="team-a",model_version="3"}[5m]))'
    )
    assert "max_over_time(mlops_prediction_reference_proportion" in promql.prediction_reference(
        SCOPE, "5m"
    )


def test_watched_features_become_one_anchored_regex_with_literals() -> None:
    query = promql.feature_bins(promql.Scope(model="m"), "5m", ["petal.width", "a"])
    assert 'feature=~"a|petal\\\\.width"' in query


def test_psi_query_floors_both_shares_at_the_documented_epsilon() -> None:
    query = promql.feature_psi(SCOPE, "10m")
    assert query.count("clamp_min(") == 4
    assert query.count(", 0.0001)") == 4
    assert query.startswith("sum by (model_version, feature) (")
    assert "ln(" in query


def test_the_realized_query_reads_every_evaluator_gauge_as_it_stands() -> None:
    query = promql.realized(SCOPE)
    assert query.startswith('max by (__name__, model_version) ({model="iris",')
    assert 'namespace="team-a",model_version="3",__name__=~"' in query
    for name in VERSION_GAUGES.values():
        assert name in query
    assert "increase(" not in query


def test_custom_query_gets_the_window() -> None:
    assert promql.custom("rate(x[$window]) + rate(y[$window])", "2m") == (
        "rate(x[2m]) + rate(y[2m])"
    )


def test_durations_parse_like_the_api_and_print_for_promql() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1.5h") == 5400
    assert parse_duration("250ms") == 0.25
    assert promql_duration(90) == "90000ms"


@pytest.mark.parametrize("bad", ["", "5", "5d", "m5", "5m "])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="expected numbers with units"):
        parse_duration(bad)
