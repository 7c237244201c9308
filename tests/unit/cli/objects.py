"""Real-shaped objects of the four kinds for plugin tests: the Argo CD health test data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["load"]

_HEALTH = Path(__file__).resolve().parents[3] / "manifests" / "argocd" / "health" / "mlops.dev"


def load(kind: str, case: str) -> dict[str, Any]:
    """The test object `case` of `kind` (e.g. ``load("ModelVersion", "validated")``)."""
    doc: dict[str, Any] = yaml.safe_load((_HEALTH / kind / "testdata" / f"{case}.yaml").read_text())
    return doc
