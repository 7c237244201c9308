"""The import contracts (pyproject.toml, `lint-imports`) name every package, and the operator
process stays free of the workloads' stack.

Aspects: every package and top-level module under ``mlops_operator/`` is a layer of a layers
contract or the source of a forbidden contract, so a new package cannot sit outside the
rules; every module a contract names exists (a layer in parentheses is optional to
import-linter, and a moved package would silently drop out); the operator process (runtime,
handlers, k8s, decisions, resources, api, console, the CLI) is forbidden scikit-learn, ONNX and
onnxruntime; and, what the static graph cannot see (a package's ``__init__`` runs on any
import of its modules), importing the operator's entry points and registering every CLI
command in a fresh interpreter loads none of them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "mlops_operator"
ROOT_PACKAGE = "mlops_operator"

OPERATOR_PROCESS = (
    "runtime", "handlers", "k8s", "decisions", "resources", "api", "console",
    "cli.session", "cli.rollout", "cli.reproduce", "cli.status", "cli.views", "cli.console",
)  # fmt: skip
"""What the brief (issue 19) names as the operator process; each must be forbidden the ML stack."""
ML_STACK = ("sklearn", "onnxruntime", "onnx", "skl2onnx")
WORKLOAD_STACK = (*ML_STACK, "pandas", "pyarrow", "duckdb", "fsspec", "grpc", "matplotlib")
"""Installed in the trainer and server images (or only for the demo), not in the operator's."""


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert config["root_package"] == ROOT_PACKAGE
    contracts: list[dict[str, Any]] = config["contracts"]
    return contracts


def _layer_modules(layer: str) -> list[str]:
    # `a | b` are independent siblings, `a : b` siblings; `(a)` is an optional layer.
    return [part.strip().strip("()") for part in re.split(r"[|:]", layer)]


def _constrained() -> set[str]:
    """Modules whose own imports some contract restricts: a layer or a forbidden source."""
    names: set[str] = set()
    for contract in _contracts():
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                names.update(_layer_modules(layer))
        elif contract["type"] == "forbidden":
            names.update(contract["source_modules"])
        elif contract["type"] == "independence":
            names.update(contract["modules"])
    return {name for name in names if "*" not in name}


def _top_level() -> list[str]:
    """Every package and module right under mlops_operator/."""
    found = []
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            found.append(f"{ROOT_PACKAGE}.{path.name}")
        elif path.suffix == ".py" and path.name != "__init__.py":
            found.append(f"{ROOT_PACKAGE}.{path.stem}")
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split(".")[1:])
    return (path / "__init__.py").is_file() or path.with_suffix(".py").is_file()


def test_every_package_is_named_in_a_contract() -> None:
    constrained = _constrained()
    unnamed = [
        module
        for module in _top_level()
        if not any(name == module or name.startswith(f"{module}.") for name in constrained)
    ]
    assert unnamed == [], (
        f"{unnamed}: put each in a layer of a layers contract or make it the source of a"
        " forbidden contract in pyproject.toml [tool.importlinter]"
    )


def test_every_module_a_contract_names_exists() -> None:
    named: set[str] = set()
    for contract in _contracts():
        for layer in contract.get("layers", []):
            named.update(_layer_modules(layer))
        for key in ("source_modules", "forbidden_modules", "modules"):
            named.update(contract.get(key, []))
        for ignored in contract.get("ignore_imports", []):
            named.update(part.strip() for part in ignored.split("->"))
    ours = {n for n in named if n.startswith(f"{ROOT_PACKAGE}.") and "*" not in n}
    assert sorted(n for n in ours if not _exists(n)) == []


def test_the_operator_process_is_forbidden_the_ml_stack() -> None:
    covered: set[str] = set()
    for contract in _contracts():
        if contract["type"] == "forbidden" and set(ML_STACK) <= set(contract["forbidden_modules"]):
            covered.update(contract["source_modules"])
    missing = [p for p in OPERATOR_PROCESS if f"{ROOT_PACKAGE}.{p}" not in covered]
    assert missing == []


def _loaded(statements: str, modules: Sequence[str]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `statements`."""
    code = f"""
import json, sys
{statements}
print(json.dumps(sorted(m for m in {list(modules)!r} if m in sys.modules)))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_the_operator_and_the_whole_cli_load_none_of_the_workload_stack() -> None:
    statements = """
import mlops_operator.runtime.main, mlops_operator.runtime.commands
import mlops_operator.console.app, mlops_operator.crdgen.render
from mlops_operator import cli
try:
    cli.main(["--help"])  # registers every command's module
except SystemExit:
    pass
"""
    assert _loaded(statements, WORKLOAD_STACK) == []


def test_the_cli_parser_loads_no_heavy_library() -> None:
    # `mlops cluster env` answers at once, and every `mlops` process builds the parser first:
    # the API models (pydantic) in it cost each server pod 0.12 CPU-seconds it never used.
    statements = "from mlops_operator.cli.main import build_parser\nbuild_parser()"
    assert _loaded(statements, ("aiohttp", "kopf", "numpy", "pydantic")) == []
