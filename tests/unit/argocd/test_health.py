"""The Argo CD health checks (manifests/argocd/health) run in Lua 5.1, as Argo CD runs them.

Aspects: every kind has a script and test cases in upstream Argo CD's layout
(``<group>/<Kind>/health.lua``, ``health_test.yaml``, ``testdata/``); each test object is a
valid object of its kind (the pydantic models accept it, status included); each script returns
the expected status and message for each object; every status Argo CD knows that a kind can
reach is covered; the argocd-cm kustomization ships exactly these scripts; the scripts are
generated from one source (`crdgen/health.py`, checked in sync by the CRDs' test), share its
prelude, and name only condition types and reasons the controllers set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from mlops_operator.api import GROUP, KINDS
from mlops_operator.api.conditions import ConditionType, Reason
from mlops_operator.crdgen.health import HEALTH_HEADER

REPO = Path(__file__).resolve().parents[3]
ARGOCD = REPO / "manifests" / "argocd"
HEALTH = ARGOCD / "health" / GROUP
MODELS = {kind.crd.kind: kind for kind in KINDS}
# Suspended: a person or spec.suspend holds the object; ModelDeployments have no such state.
EXPECTED_STATES = {
    "TrainingJob": {"Healthy", "Progressing", "Degraded", "Suspended"},
    "ModelVersion": {"Healthy", "Progressing", "Degraded", "Suspended"},
    "ModelDeployment": {"Healthy", "Progressing", "Degraded"},
    "DriftPolicy": {"Healthy", "Progressing", "Degraded", "Suspended"},
}


def _cases() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for kind in sorted(MODELS):
        spec = yaml.safe_load((HEALTH / kind / "health_test.yaml").read_text())
        found.extend((kind, case) for case in spec["tests"])
    return found


def health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run `kind`'s health.lua on `obj` the way Argo CD does (the object as the global `obj`)."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((HEALTH / kind / "health.lua").read_text())
    return dict(result.items())


def test_every_kind_has_a_script_and_cases_in_argo_cds_layout() -> None:
    assert sorted(p.name for p in HEALTH.iterdir()) == sorted(MODELS)
    for kind in MODELS:
        assert (HEALTH / kind / "health.lua").is_file()
        assert (HEALTH / kind / "health_test.yaml").is_file()


@pytest.mark.parametrize(
    ("kind", "case"), _cases(), ids=lambda v: v if isinstance(v, str) else v["inputPath"]
)
def test_the_script_returns_the_expected_health(kind: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((HEALTH / kind / case["inputPath"]).read_text())
    assert obj["kind"] == kind
    # A real object of the kind: what the API (and so the operator) would produce.
    MODELS[kind].model_validate(obj)
    assert health(kind, obj) == case["healthStatus"]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_the_cases_cover_every_state_of_the_kind(kind: str) -> None:
    states = {case["healthStatus"]["status"] for k, case in _cases() if k == kind}
    assert states == EXPECTED_STATES[kind]


def test_a_condition_without_message_still_gives_a_message() -> None:
    obj = yaml.safe_load((HEALTH / "ModelVersion" / "testdata" / "validated.yaml").read_text())
    for condition in obj["status"]["conditions"]:
        del condition["message"]
    assert health("ModelVersion", obj) == {"status": "Healthy", "message": "Validated: "}


def test_the_argocd_cm_kustomization_ships_every_script() -> None:
    kustomization = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == "argocd-cm"
    files = dict(entry.split("=", 1) for entry in generator["files"])
    assert files == {
        f"resource.customizations.health.{GROUP}_{kind}": f"health/{GROUP}/{kind}/health.lua"
        for kind in MODELS
    }


def test_the_scripts_are_generated_and_share_one_prelude() -> None:
    scripts = {kind: (HEALTH / kind / "health.lua").read_text() for kind in MODELS}
    prelude = (
        "if obj.status == nil then\n  return hs\nend\n"
        "local generation = obj.metadata.generation or 0\n"
    )
    for kind, text in scripts.items():
        assert text.startswith(HEALTH_HEADER), kind
        assert text.count(prelude) == 1, kind


def test_the_scripts_name_only_the_controllers_condition_types_and_reasons() -> None:
    for kind in MODELS:
        text = (HEALTH / kind / "health.lua").read_text()
        types = re.findall(r'conditions\["([A-Za-z]+)"\]', text)
        reasons = re.findall(r'reason [~=]= "([A-Za-z]+)"', text)
        assert types, kind
        assert set(types) <= {t.value for t in ConditionType}, kind
        assert set(reasons) <= {r.value for r in Reason}, kind
