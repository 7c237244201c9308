"""A CRD change reaches the cluster through `helm upgrade`: the chart's CRDs are templates.

On a control plane of its own (the session's CRDs are shared by every test, and Helm would
refuse to adopt them), an "old" release of the chart is installed: this chart with
TrainingJob's ``spec.ttlSecondsAfterFinished`` removed from its CRD, as a release from before
that field would have it. Asserted: the old CRD refuses a TrainingJob that sets the field
(server-side field validation names it); a TrainingJob made under the old CRD stays through
the upgrade; after `helm upgrade` to this chart, the CRD in the cluster has the field, a new
TrainingJob keeps it and the old one accepts it as a change (its immutability rule allows
it); the CRD stays the release's (Helm's ownership annotations) and keeps its keep policy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from tests.integration.chart.conftest import CHART, Helm
from tests.kube import get_json, kubectl, wait_for

FIELD = "ttlSecondsAfterFinished"
CRD = "trainingjobs.mlops.dev"


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The admin kubeconfig of a control plane of this module's own, without CRDs."""
    cluster = LocalCluster(tmp_path_factory.mktemp("crd-upgrade"), with_node=False)
    try:
        cluster.up()
        yield cluster.layout.admin_kubeconfig
    finally:
        cluster.down()


def _old_chart(into: Path) -> Path:
    """This chart as an earlier release: version 0.0.1, TrainingJob's CRD without FIELD."""
    chart = into / "mlops-operator"
    shutil.copytree(CHART, chart)
    crd = chart / "templates" / "crds" / "mlops.dev_trainingjobs.yaml"
    lines = crd.read_text().splitlines(keepends=True)
    (start,) = [i for i, line in enumerate(lines) if line.strip() == f"{FIELD}:"]
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while len(lines[end]) - len(lines[end].lstrip()) > indent:
        end += 1
    crd.write_text("".join(lines[:start] + lines[end:]))
    meta = chart / "Chart.yaml"
    meta.write_text(meta.read_text().replace("\nversion: 0.1.0\n", "\nversion: 0.0.1\n"))
    return chart


def _training_job(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "modelName": "iris",
            "dataset": {"uri": "sklearn://iris"},
            "target": "target",
            "estimator": {"name": "LogisticRegression"},
            "suspend": True,
            **extra,
        },
    }


def _apply(config: Path, doc: dict[str, Any], check: bool = True) -> Any:
    return kubectl(
        config, "apply", "--server-side", "--field-manager=test", "-f", "-",
        stdin=json.dumps(doc), check=check,
    )  # fmt: skip


def _schema_has_field(config: Path) -> bool:
    crd = get_json(config, "crd", CRD)
    (version,) = crd["spec"]["versions"]
    return FIELD in version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def test_a_crd_change_is_upgraded_through_the_chart(
    helm: Helm, control_plane: Path, tmp_path: Path
) -> None:
    config = control_plane
    old = _old_chart(tmp_path)
    # No --wait: this control plane has no node, so the operator's pod stays Pending.
    helm("install", "mlops", str(old), "-n", "mlops-system", "--create-namespace",
         kubeconfig=config)  # fmt: skip
    kubectl(config, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD}")
    assert not _schema_has_field(config)

    refused = _apply(config, _training_job("refused", **{FIELD: 60}), check=False)
    assert refused.returncode != 0
    assert f".spec.{FIELD}: field not declared in schema" in refused.stderr, refused.stderr
    _apply(config, _training_job("before"))
    before = get_json(config, "trainingjob", "before", "-n", "default")

    helm("upgrade", "mlops", str(CHART), "-n", "mlops-system", "--reuse-values",
         kubeconfig=config)  # fmt: skip
    wait_for(lambda: _schema_has_field(config), timeout=60, what=f"the CRD to gain {FIELD}")
    kubectl(config, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{CRD}")

    _apply(config, _training_job("after", **{FIELD: 60}))
    assert get_json(config, "trainingjob", "after", "-n", "default")["spec"][FIELD] == 60
    kept = get_json(config, "trainingjob", "before", "-n", "default")
    assert kept["metadata"]["uid"] == before["metadata"]["uid"]
    _apply(config, _training_job("before", **{FIELD: 120}))
    assert get_json(config, "trainingjob", "before", "-n", "default")["spec"][FIELD] == 120

    annotations = get_json(config, "crd", CRD)["metadata"]["annotations"]
    assert annotations["meta.helm.sh/release-name"] == "mlops"
    assert annotations["meta.helm.sh/release-namespace"] == "mlops-system"
    assert annotations["helm.sh/resource-policy"] == "keep"
    history = helm("history", "mlops", "-n", "mlops-system", "-o", "json", kubeconfig=config)
    assert [r["chart"] for r in json.loads(history.stdout)] == [
        "mlops-operator-0.0.1",
        "mlops-operator-0.1.0",
    ]
