"""`helm install`, `helm upgrade` and `helm uninstall` on the local cluster, with the operator
running as a pod under the chart's ServiceAccount and RBAC.

Aspects: the release installs into its own namespace; the operator pod runs on the local node
as the chart's ServiceAccount, passes its probes (Ready) and, with only the chart's RBAC, trains
a TrainingJob of the one namespace it watches into a ModelVersion (whose lineage `kubectl mlops
lineage` prints); the service account may not read
Secrets; the user roles (named after the release) aggregate into view/edit, nobody but the operator
may write status and only an approver holds the governance verbs (approve, rollback); `helm upgrade`
to namespaced RBAC
replaces the pod (Recreate) and the new one trains another version; `helm uninstall` removes the
operator, its RBAC and the user roles and keeps every mlops object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.chart.conftest import CHART, Helm
from tests.kube import KUBECTL, delete_namespace, get_json, kubectl, wait_for
from tests.unit.chart.rendered import REPO

EXAMPLE = REPO / "manifests" / "examples" / "iris" / "trainingjob.yaml"

# The chart's user roles (mlops-viewer, -editor, -approver) are cluster-wide with fixed
# names: tests that install the chart take turns on one worker.
pytestmark = pytest.mark.xdist_group("chart-install")


@pytest.fixture
def watched(kubeconfig: Path) -> Iterator[str]:
    """The namespace the operator watches, under the restricted Pod Security Standard."""
    name = f"chart-w-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "namespace", name)
    kubectl(kubeconfig, "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    yield name
    delete_namespace(kubeconfig, name)


@pytest.fixture
def release(helm: Helm, kubeconfig: Path, crds: list[Path], namespace: str) -> Iterator[str]:
    """The release name; uninstalled afterwards whatever the test did."""
    kubectl(
        kubeconfig, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    name = f"mlops-operator-{namespace}"  # contains the chart name: the full name is the release
    yield name
    helm("uninstall", name, "-n", namespace, "--wait", kubeconfig=kubeconfig, check=False)


def _operator_pod(kubeconfig: Path, namespace: str) -> dict[str, Any] | None:
    pods = get_json(
        kubeconfig, "pods", "-n", namespace, "-l", "app.kubernetes.io/component=operator"
    )
    ready = [
        p
        for p in pods["items"]
        if p["metadata"].get("deletionTimestamp") is None
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    ]
    return ready[0] if len(ready) == 1 and len(pods["items"]) == 1 else None


def _trained(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any] | None:
    """The TrainingJob once it succeeded (failing the wait at once if it failed)."""
    job = get_json(kubeconfig, "trainingjob", name, "-n", namespace)
    status = job.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    succeeded = conditions.get("Succeeded") or {}
    if succeeded.get("status") == "False":
        raise AssertionError(f"TrainingJob {name} failed: {succeeded}")
    return job if succeeded.get("status") == "True" and status.get("modelVersion") else None


def _lineage(kubeconfig: Path, namespace: str, version: str) -> list[str]:
    """`kubectl mlops lineage` of a ModelVersion, through kubectl's plugin mechanism."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "KUBECTL": str(KUBECTL),
        "KUBECONFIG": str(kubeconfig),
    }
    answer = subprocess.run(
        [str(KUBECTL), "mlops", "lineage", version, "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.splitlines()


def _apply_training_job(kubeconfig: Path, namespace: str, name: str | None = None) -> str:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = namespace
    doc["metadata"]["name"] = name or doc["metadata"]["name"]
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))
    return str(doc["metadata"]["name"])


def _can(kubeconfig: Path, user: str, verb: str, resource: str, namespace: str) -> bool:
    """`kubectl auth can-i`; `resource` may end in `/status` for the status subresource."""
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    answer = kubectl(
        kubeconfig,
        "auth",
        "can-i",
        verb,
        resource,
        *extra,
        "-n",
        namespace,
        f"--as={user}",
        check=False,
    )
    return answer.stdout.strip() == "yes"


def test_install_upgrade_uninstall(
    helm: Helm, kubeconfig: Path, namespace: str, watched: str, release: str
) -> None:
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--set",
        "crds.enabled=false",  # the session's CRDs are shared with other tests
        "--set",
        f"operator.watchNamespaces={{{watched}}}",
        "--set",
        "operator.logFormat=text",
        "--wait",
        "--timeout",
        "3m",
        kubeconfig=kubeconfig,
    )
    pod = wait_for(
        lambda: _operator_pod(kubeconfig, namespace), timeout=180, what="a Ready operator pod"
    )
    account = f"system:serviceaccount:{namespace}:{release}"
    assert pod["spec"]["serviceAccountName"] == release
    assert pod["spec"]["nodeName"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0

    name = _apply_training_job(kubeconfig, watched)
    job = wait_for(
        lambda: _trained(kubeconfig, watched, name),
        timeout=600,
        what="the operator pod to train the TrainingJob into a ModelVersion",
    )
    version = get_json(kubeconfig, "modelversion", job["status"]["modelVersion"], "-n", watched)
    assert version["spec"]["lineage"]["trainingJob"] == name
    tree = _lineage(kubeconfig, watched, version["metadata"]["name"])
    assert tree[0].startswith("dataset sklearn://iris  sha256:")
    assert tree[1].startswith(f"└─ TrainingJob {name}  Succeeded  LogisticRegression seed=42")
    assert tree[2].startswith(f"   └─ ModelVersion {version['metadata']['name']}  v1  accuracy=")

    assert not _can(kubeconfig, account, "get", "secrets", watched)
    assert not _can(kubeconfig, account, "list", "secrets", namespace)
    assert _can(kubeconfig, account, "create", "jobs.batch", watched)

    editor, approver = f"editor-{namespace}", f"approver-{namespace}"
    kubectl(
        kubeconfig,
        "create",
        "rolebinding",
        "edit",
        "-n",
        watched,
        "--clusterrole=edit",
        f"--user={editor}",
    )
    kubectl(
        kubeconfig,
        "create",
        "rolebinding",
        "approve",
        "-n",
        watched,
        f"--clusterrole={release}-approver",
        f"--user={approver}",
    )
    wait_for(
        lambda: _can(kubeconfig, editor, "create", "modeldeployments.mlops.dev", watched),
        what=f"{release}-editor aggregated into edit",
    )
    assert _can(kubeconfig, editor, "get", "modelversions.mlops.dev", watched)
    assert not _can(kubeconfig, editor, "patch", "modelversions.mlops.dev/status", watched)
    assert not _can(kubeconfig, editor, "approve", "modelversions.mlops.dev", watched)
    assert not _can(kubeconfig, approver, "patch", "modelversions.mlops.dev/status", watched)
    assert not _can(kubeconfig, approver, "patch", "modeldeployments.mlops.dev/status", watched)
    assert _can(kubeconfig, approver, "approve", "modelversions.mlops.dev", watched)
    assert _can(kubeconfig, approver, "rollback", "modeldeployments.mlops.dev", watched)
    assert not _can(kubeconfig, approver, "delete", "modelversions.mlops.dev", watched)

    old_uid = pod["metadata"]["uid"]
    helm(
        "upgrade",
        release,
        str(CHART),
        "-n",
        namespace,
        "--reuse-values",
        "--set",
        "rbac.scope=Namespaced",
        "--set",
        "operator.logLevel=DEBUG",
        "--wait",
        "--timeout",
        "3m",
        kubeconfig=kubeconfig,
    )
    pod = wait_for(
        lambda: (
            (p := _operator_pod(kubeconfig, namespace)) and p["metadata"]["uid"] != old_uid and p
        ),
        timeout=180,
        what="the upgraded operator pod",
    )
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["MLOPS_LOG_LEVEL"] == "DEBUG"
    assert _can(kubeconfig, account, "create", "jobs.batch", watched)
    assert not _can(kubeconfig, account, "create", "jobs.batch", namespace)
    second = _apply_training_job(kubeconfig, watched, name="iris-after-upgrade")
    second_job = wait_for(
        lambda: _trained(kubeconfig, watched, second),
        timeout=600,
        what="the upgraded operator (namespaced RBAC) to train a new TrainingJob",
    )
    assert second_job["status"]["modelVersion"] != job["status"]["modelVersion"]

    helm("uninstall", release, "-n", namespace, "--wait", kubeconfig=kubeconfig)
    assert kubectl(
        kubeconfig, "get", "deployment", release, "-n", namespace, check=False
    ).returncode
    assert kubectl(kubeconfig, "get", "clusterrole", release, check=False).returncode
    for role in ("viewer", "editor", "approver"):
        assert kubectl(
            kubeconfig, "get", "clusterrole", f"{release}-{role}", check=False
        ).returncode
    assert (
        get_json(kubeconfig, "trainingjob", name, "-n", watched)["metadata"]["uid"]
        == job["metadata"]["uid"]
    )
