"""One catalogue per concept that crosses a boundary, and every side derived from it agrees.

Aspects: the estimator enum of every CRD that names an estimator equals the
trainer's allow-list, each class is the task the catalogue says, and the docs
list exactly those; the duration pattern and the parser accept exactly the same
strings, and every duration field of the CRDs carries the pattern; every label
and annotation key the package spells is in the metadata catalogue, and the docs
list the catalogue.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import is_classifier, is_regressor

from mlops_operator.api import metadata
from mlops_operator.api.durations import DURATION_PATTERN, parse_duration
from mlops_operator.api.estimators import CATALOGUE, CLASSIFIERS, ESTIMATOR_NAMES, REGRESSORS
from mlops_operator.trainer.estimators import ESTIMATORS

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "operator" / "mlops_operator"


def _crd_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / f"mlops.dev_{plural}.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, child in (node.get("properties") or {}).items():
            yield from _walk(child, f"{path}.{key}")
        if "items" in node:
            yield from _walk(node["items"], f"{path}[]")


def _estimator_enums() -> dict[str, list[str]]:
    found = {}
    for plural in ("trainingjobs", "driftpolicies", "modelversions"):
        for path, node in _walk(_crd_schema(plural)):
            if path.endswith((".estimator.name", "lineage.estimator")):
                found[f"{plural}{path}"] = node["enum"]
    return found


def test_the_crd_estimator_enum_equals_the_trainer_allow_list() -> None:
    enums = _estimator_enums()

    assert set(enums) == {
        "trainingjobs.spec.estimator.name",
        "driftpolicies.spec.retrain.template.estimator.name",
        "modelversions.spec.lineage.estimator",
    }
    for where, enum in enums.items():
        assert sorted(enum) == sorted(ESTIMATORS), where
    assert list(ESTIMATOR_NAMES) == [entry.name for entry in CATALOGUE]


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.name)
def test_each_catalogued_class_is_the_task_the_catalogue_says(entry: Any) -> None:
    estimator = ESTIMATORS[entry.name].factory(**dict(entry.fixed))
    assert type(estimator).__name__ == entry.name
    if entry.task == "classification":
        # The trainer reports probabilities (ROC AUC, log loss, parity): every classifier has them.
        assert is_classifier(estimator)
        assert hasattr(estimator, "predict_proba")
    else:
        assert is_regressor(estimator)
    assert dict(ESTIMATORS[entry.name].fixed) == dict(entry.fixed)


def test_the_task_rule_and_the_docs_use_the_catalogue() -> None:
    rules = [
        rule["rule"]
        for _, node in _walk(_crd_schema("trainingjobs"))
        for rule in node.get("x-kubernetes-validations", [])
        if "self.task == 'classification'" in rule["rule"]
    ]
    assert len(rules) == 1
    listed = re.findall(r"\[(.*?)\]", rules[0])
    assert [sorted(re.findall(r"'(\w+)'", part)) for part in listed] == [
        sorted(CLASSIFIERS),
        sorted(REGRESSORS),
    ]
    training = (ROOT / "docs" / "training.md").read_text()
    table = re.search(
        r"\| classification \| regression \|\n\|---\|---\|\n\| (.*) \| (.*) \|", training
    )
    assert table is not None, "docs/training.md has no estimator table"
    assert [c.strip() for c in table.group(1).split(",")] == list(CLASSIFIERS)
    assert [r.strip() for r in table.group(2).split(",")] == list(REGRESSORS)
    api = (ROOT / "docs" / "api.md").read_text()
    assert "allowed scikit-learn classes" not in api  # a count there goes stale; it links instead


_TOKENS = st.sampled_from(
    ["0", "1", "15", "1.5", ".5", "5.", "ms", "s", "m", "h", "us", "d", " ", "-"]
)


@given(st.lists(_TOKENS, max_size=8).map("".join))
def test_the_duration_pattern_and_the_parser_accept_the_same_strings(text: str) -> None:
    matches = re.fullmatch(DURATION_PATTERN.strip("^$"), text) is not None
    try:
        parse_duration(text)
        parses = True
    except ValueError:
        parses = False
    assert matches == parses, text


def test_every_duration_field_carries_the_pattern() -> None:
    fields = []
    for plural in ("trainingjobs", "modeldeployments", "driftpolicies", "modelversions"):
        for path, node in _walk(_crd_schema(plural)):
            if node.get("format") == "duration":
                assert node.get("pattern") == DURATION_PATTERN, f"{plural}{path}"
                fields.append(f"{plural}{path}")
    assert "driftpolicies.spec.interval" in fields
    assert "modeldeployments.spec.rollout.analysis.interval" in fields


_KEY = re.compile(r"(mlops\.dev|prometheus\.io)/[a-z][a-z0-9-]*")


def test_no_label_or_annotation_key_is_spelled_outside_the_catalogue() -> None:
    strays = []
    for path in PACKAGE.rglob("*.py"):
        # The local cluster is a system of its own, with node-level keys of its own.
        if path.is_relative_to(PACKAGE / "localcluster") or path == PACKAGE / "api" / "metadata.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _KEY.fullmatch(node.value)
            ):
                strays.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert strays == []


def test_the_docs_list_every_catalogued_key() -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    missing = [k.key for k in metadata.CATALOGUE if f"`{k.key}`" not in api]
    assert missing == []
