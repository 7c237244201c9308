"""What the chart and the kustomize overlays render, accepted by the real API server.

Aspects: `helm template` (user roles, both RBAC modes) and `kubectl kustomize` of every overlay
pass a server-side dry-run apply. Objects of the Prometheus Operator's kinds are left out: the
local cluster has no monitoring.coreos.com CRDs. The overlays' namespace becomes the test's
namespace, since a dry-run does not create the Namespace the others would land in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chart.conftest import CHART, OVERLAYS, Helm
from tests.kube import kubectl
from tests.unit.chart.rendered import documents


def _dry_run(kubeconfig: Path, docs: list[dict[str, Any]]) -> str:
    stream = {"apiVersion": "v1", "kind": "List", "items": docs}
    return kubectl(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "--field-manager=chart-dry-run",
        "-f",
        "-",
        stdin=json.dumps(stream),
    ).stdout


def _into(namespace: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    moved = []
    for doc in docs:
        if doc["kind"] == "Namespace":
            continue
        if "namespace" in doc["metadata"]:
            doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        moved.append(doc)
    return moved


@pytest.mark.parametrize(
    "sets",
    [[], ["rbac.scope=Namespaced", "operator.watchNamespaces={NS}"]],
    ids=["cluster-rbac", "namespaced-rbac"],
)
def test_helm_template_passes_server_side_dry_run(
    helm: Helm, kubeconfig: Path, namespace: str, sets: list[str]
) -> None:
    args = [a for s in sets for a in ("--set", s.replace("NS", namespace))]
    rendered = helm("template", "dry", str(CHART), "--namespace", namespace, *args).stdout
    docs = documents(rendered)
    out = _dry_run(kubeconfig, docs)
    assert out.count("serverside-applied (server dry run)") == len(docs), out
    assert "deployment.apps/dry-mlops-operator serverside-applied" in out


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_overlay_passes_server_side_dry_run(
    kubeconfig: Path, namespace: str, overlay: Path
) -> None:
    docs = _into(namespace, documents(kubectl(kubeconfig, "kustomize", str(overlay)).stdout))
    out = _dry_run(kubeconfig, docs)
    assert out.count("serverside-applied (server dry run)") == len(docs), out
