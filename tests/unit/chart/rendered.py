"""Reading rendered manifests: documents by kind, and what is wrong with a set of RBAC rules."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["BASE", "REPO", "by_kind", "documents", "rbac_problems"]

REPO = Path(__file__).resolve().parents[3]
BASE = REPO / "manifests" / "base" / "mlops-operator.yaml"

# Verbs that let a holder grant itself more than it has.
_ESCALATING_VERBS = {"escalate", "bind", "impersonate"}


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a YAML stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The documents of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def rbac_problems(role: dict[str, Any]) -> list[str]:
    """What is too broad in a Role or ClusterRole: wildcards, Secrets cluster-wide, escalation."""
    name = f"{role['kind']} {role['metadata']['name']}"
    problems = []
    for index, rule in enumerate(role.get("rules") or []):
        where = f"{name} rule {index}"
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            if any("*" in value for value in rule.get(field) or []):
                problems.append(f"{where}: wildcard in {field}: {rule[field]}")
        if rule.get("nonResourceURLs"):
            problems.append(f"{where}: nonResourceURLs are not needed by the operator")
        # Creating a Secret reads none (the request-id keys of spec.feedback); any other verb does.
        reads = set(rule.get("verbs") or []) - {"create"}
        if "secrets" in (rule.get("resources") or []) and role["kind"] == "ClusterRole" and reads:
            problems.append(f"{where}: Secrets in a ClusterRole (cluster-wide Secret access)")
        if set(rule.get("verbs") or []) & _ESCALATING_VERBS:
            problems.append(f"{where}: escalating verbs {sorted(rule['verbs'])}")
    return problems
