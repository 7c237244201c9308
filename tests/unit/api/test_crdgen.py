"""CRD generation: in sync with the models, structural, complete, and the chart's copies.

Aspects: the checked-in crds/ and chart templates equal what the models
generate (the `git diff --exit-code` of this repository); `--check` and
`--write`; `mlops crds` prints the four CRDs; every schema node is structural
(typed, no $ref/anyOf/title/uniqueItems/nullable) and every field has a
description; CRD metadata (names, categories, status and scale subresources,
printer columns, conditions as a list-map); the chart wrapper; what the
schema bridge rewrites and what it refuses.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, Field

from mlops_operator import cli
from mlops_operator.api import KINDS, ModelDeployment
from mlops_operator.crdgen.__main__ import main as crdgen_main
from mlops_operator.crdgen.health import HEALTH_HEADER
from mlops_operator.crdgen.render import (
    CHART_CRD_DIR,
    CRD_DIR,
    HEADER,
    crd_manifest,
    generated_files,
    stale_files,
)
from mlops_operator.crdgen.schema import SchemaError, to_structural

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = {"$ref", "$defs", "oneOf", "allOf", "title", "uniqueItems", "nullable", "const"}


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below ``node``, with its path."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


def _schema(kind: type[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd_manifest(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_checked_in_files_match_the_models() -> None:
    assert stale_files(ROOT) == [], "run `make crds` and commit the result"


def test_check_and_write(tmp_path: Path) -> None:
    assert crdgen_main(["--check", "--root", str(tmp_path)]) == 1
    assert crdgen_main(["--write", "--root", str(tmp_path)]) == 0
    assert crdgen_main(["--check", "--root", str(tmp_path)]) == 0
    leftover = tmp_path / CRD_DIR / "mlops.dev_oldkinds.yaml"
    leftover.write_text(HEADER + "kind: CustomResourceDefinition\n")
    (tmp_path / CRD_DIR / "notes.yaml").write_text("# hand-written, not ours\n")
    assert stale_files(tmp_path) == [CRD_DIR / "mlops.dev_oldkinds.yaml"]
    assert crdgen_main(["--write", "--root", str(tmp_path)]) == 0
    assert not leftover.exists()
    assert (tmp_path / CRD_DIR / "notes.yaml").exists()


def test_mlops_crds_prints_every_crd() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["crds"]) == 0
    text = out.getvalue()
    assert text.startswith(HEADER)
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert [d["spec"]["names"]["kind"] for d in documents] == [k.crd.kind for k in KINDS]


def test_generated_files_start_with_the_header() -> None:
    for path, content in generated_files().items():
        assert content.startswith(HEALTH_HEADER if path.suffix == ".lua" else HEADER), path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.crd.kind)
def test_schema_is_structural_and_documented(kind: type[Any]) -> None:
    for path, node in _nodes(_schema(kind)):
        assert not FORBIDDEN & set(node), f"{path}: {FORBIDDEN & set(node)}"
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
        else:
            assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        if path.count(".") >= 1 and not path.startswith(".metadata"):
            assert node.get("description") or path.endswith(("*", "[*]")), path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.crd.kind)
def test_crd_metadata(kind: type[Any]) -> None:
    crd = crd_manifest(kind)
    names = crd["spec"]["names"]
    assert crd["metadata"]["name"] == f"{names['plural']}.mlops.dev"
    assert names["categories"] == ["mlops"]
    assert len(names["shortNames"]) == 1
    version = crd["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert "status" in version["subresources"]
    assert ("scale" in version["subresources"]) is (kind is ModelDeployment)
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Model" or columns[0] == "Target"
    assert columns[-1] == "Age"
    conditions = _schema(kind)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {"type", "status", "reason"}


def test_model_deployment_scale_paths() -> None:
    scale = crd_manifest(ModelDeployment)["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_chart_copy_is_the_crd_behind_the_two_switches() -> None:
    files = generated_files()
    for path, content in files.items():
        if path.parent != CHART_CRD_DIR:
            continue
        plain = files[CRD_DIR / path.name]
        lines = content.splitlines(keepends=True)
        assert lines[1] == "{{- if .Values.crds.enabled }}\n"
        assert lines[-1] == "{{- end }}\n"
        keep = re.search(
            r"  \{\{- if \.Values\.crds\.keep \}\}\n  annotations:\n"
            r"    helm\.sh/resource-policy: keep\n  \{\{- end \}\}\n",
            content,
        )
        assert keep, path
        unwrapped = (lines[0] + "".join(lines[2:-1])).replace(keep.group(0), "")
        assert unwrapped == plain


class _Inner(BaseModel):
    """Inner object."""

    size: int = Field(gt=0, lt=10, description="A size.")


class _Outer(BaseModel):
    """Outer object."""

    inner: _Inner | None = Field(default=None, description="Optional inner.")
    free: dict[str, Any] = Field(default_factory=dict, description="Anything.")
    typed: dict[str, float] = Field(default_factory=dict, description="Numbers.")


def test_bridge_rewrites() -> None:
    schema = to_structural(_Outer.model_json_schema(by_alias=True))
    inner = schema["properties"]["inner"]
    assert inner["description"] == "Optional inner."
    assert "default" not in inner
    assert "nullable" not in inner
    size = inner["properties"]["size"]
    assert (
        size["minimum"],
        size["exclusiveMinimum"],
        size["maximum"],
        size["exclusiveMaximum"],
    ) == (
        0,
        True,
        10,
        True,
    )
    assert size["description"] == "A size. Range: (0, 10)."
    assert schema["properties"]["free"]["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["properties"]["typed"]["additionalProperties"] == {"type": "number"}


def test_bridge_refuses_unions_and_undocumented_fields() -> None:
    class Union(BaseModel):
        value: int | str = Field(description="Either.")

    class Cat(BaseModel):
        kind: Literal["cat"] = Field(description="Tag.")

    class Dog(BaseModel):
        kind: Literal["dog"] = Field(description="Tag.")

    class Tagged(BaseModel):
        pet: Cat | Dog = Field(discriminator="kind", description="Either.")

    class Undocumented(BaseModel):
        value: int

    with pytest.raises(SchemaError, match=r"\.value: a union other than `X \| None`"):
        to_structural(Union.model_json_schema())
    with pytest.raises(SchemaError, match=r"\.pet: keywords a CRD schema does not support"):
        to_structural(Tagged.model_json_schema())
    with pytest.raises(SchemaError, match=r"\.value: every field needs a description"):
        to_structural(Undocumented.model_json_schema())


def test_docs_list_every_validation_rule() -> None:
    documented = (ROOT / "docs" / "api.md").read_text()
    messages = {
        rule["message"]
        for kind in KINDS
        for _, node in _nodes(_schema(kind))
        for rule in node.get("x-kubernetes-validations", [])
    }
    missing = sorted(m for m in messages if m not in documented)
    assert missing == [], "add these rules to docs/api.md"
