"""A namespace governed as the chart governs it: admission policies, user roles, and the operator
running under the chart's ServiceAccount and RBAC.

The chart's own templates are rendered (``helm template``) and applied, scoped to the test's
namespace: the admission policies' bindings select it by name (the chart scopes them to
``operator.watchNamespaces``), so tests running beside it on the shared cluster, and their
operators running with the admin's credentials, are not affected. The cluster-scoped objects
carry the release name, which is the namespace's; the user roles, whose names the chart fixes,
are renamed with the same suffix. The operator logs in with a token of its ServiceAccount, so
every status write is the ServiceAccount's, which the policies admit, and every rule it uses is
the chart's. People are impersonated (``kubectl --as``): an editor (bound to the built-in
``edit``, into which the chart's editor role aggregates) and an approver (bound to its approver role), a
ServiceAccount so that the ``mlops`` CLI can also log in as them with a token.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.chart.conftest import CHART, Helm, helm, helm_binary
from tests.integration.operator.conftest import (
    MLOPS,
    MLOPS_KINDS,
    RunningOperator,
    crds,
    start_operator,
)
from tests.kube import delete_namespace, find_json, get_json, kubectl, wait_for
from tests.unit.chart.rendered import documents

__all__ = ["CLAIM", "Governed", "crds", "governed", "helm", "helm_binary"]

CLAIM = "mlops-artifacts"
_TEMPLATES = (
    "templates/serviceaccount.yaml",
    "templates/rbac/operator.yaml",
    "templates/rbac/users.yaml",
    "templates/admission/policies.yaml",
)


@dataclass
class Governed:
    """The governed namespace, its people, and how the operator logs in."""

    namespace: str
    kubeconfig: Path
    operator_kubeconfig: Path
    approver_kubeconfig: Path
    editor: str
    approver: str
    release: str
    approver_role: str
    """The chart's approver ClusterRole (named after the release)."""

    def as_user(
        self, user: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl as `user` (impersonated by the admin), in the namespace; never raises."""
        return kubectl(
            self.kubeconfig, f"--as={user}", "-n", self.namespace, *args, stdin=stdin, check=False
        )

    def refused(self, user: str, *args: str, stdin: str | None = None) -> str:
        """The API server's refusal of `user`'s request (which must be refused)."""
        answer = self.as_user(user, *args, stdin=stdin)
        assert answer.returncode != 0, f"{user} was allowed: kubectl {' '.join(args)}"
        return answer.stderr

    def allowed(self, user: str, *args: str, stdin: str | None = None) -> str:
        """`user`'s request, which must be admitted; its output."""
        answer = self.as_user(user, *args, stdin=stdin)
        assert answer.returncode == 0, answer.stderr
        return answer.stdout

    def mlops(self, *args: str) -> str:
        """The ``mlops`` CLI logged in as the approver (a token of their ServiceAccount)."""
        answer = subprocess.run(
            [str(MLOPS), *args, "-n", self.namespace],
            env={**os.environ, "KUBECONFIG": str(self.approver_kubeconfig)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert answer.returncode == 0, answer.stdout + answer.stderr
        return answer.stdout

    def get(self, kind: str, name: str, *flags: str) -> dict[str, Any]:
        """The object as the admin reads it (`flags`: kubectl get's)."""
        found: dict[str, Any] = get_json(self.kubeconfig, kind, name, "-n", self.namespace, *flags)
        return found

    def phase(self, name: str) -> str | None:
        """A ModelVersion's phase; None while it has none, or does not exist yet."""
        found = find_json(self.kubeconfig, "modelversion", name, "-n", self.namespace)
        if found is None:
            return None
        phase = (found.get("status") or {}).get("phase")
        return str(phase) if phase else None

    def store(self) -> Path:
        """The host directory behind the namespace's artifact claim (created when missing)."""
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": self.namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
        kubectl(self.kubeconfig, "apply", "-f", "-", stdin=json.dumps(claim))

        def bound() -> str | None:
            found = self.get("pvc", CLAIM)
            return (
                found["spec"].get("volumeName") if found["status"].get("phase") == "Bound" else None
            )

        volume = wait_for(bound, timeout=60, what="the artifact claim to bind")
        return Path(get_json(self.kubeconfig, "pv", volume)["spec"]["hostPath"]["path"])

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        """The Events about one object."""
        listing = get_json(self.kubeconfig, "events", "-n", self.namespace)["items"]
        return [
            e
            for e in listing
            if e["involvedObject"].get("kind") == kind and e["involvedObject"].get("name") == name
        ]


def _cluster_scoped(doc: dict[str, Any]) -> bool:
    return doc["kind"] in (
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    )


def _token_kubeconfig(admin: Path, namespace: str, account: str, path: Path) -> Path:
    token = kubectl(
        admin, "create", "token", account, "-n", namespace, "--duration=2h"
    ).stdout.strip()
    config = yaml.safe_load(admin.read_text())
    cluster = config["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {
                            "cluster": cluster["name"],
                            "user": account,
                            "namespace": namespace,
                        },
                    }
                ],
                "current-context": account,
            }
        )
    )
    return path


@pytest.fixture
def governed(kubeconfig: Path, crds: list[Path], helm: Helm, tmp_path: Path) -> Iterator[Governed]:
    """A restricted namespace under the chart's policies, roles and operator RBAC."""
    namespace = f"gov-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    kubectl(
        kubeconfig, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    shown = [arg for template in _TEMPLATES for arg in ("--show-only", template)]
    rendered = helm(
        "template", namespace, str(CHART), "-n", namespace,
        "--set", "crds.enabled=false", "--set", "rbac.scope=Namespaced",
        "--set", f"operator.watchNamespaces={{{namespace}}}", *shown,
    ).stdout  # fmt: skip
    # The release is named after the namespace, and so are its cluster-wide objects: parallel
    # tests never share one.
    docs = documents(rendered)
    (approver_role,) = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-approver")
    ]
    cluster_scoped = [d for d in docs if _cluster_scoped(d)]
    try:
        kubectl(
            kubeconfig,
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"kind": "List", "apiVersion": "v1", "items": docs}),
        )
        editor, approver = f"editor@{namespace}", f"system:serviceaccount:{namespace}:approver"
        kubectl(kubeconfig, "create", "serviceaccount", "approver", "-n", namespace)
        kubectl(kubeconfig, "create", "rolebinding", "editors", "-n", namespace,
                "--clusterrole=edit", f"--user={editor}")  # fmt: skip
        kubectl(kubeconfig, "create", "rolebinding", "approvers", "-n", namespace,
                f"--clusterrole={approver_role}",
                f"--serviceaccount={namespace}:approver")  # fmt: skip
        wait_for(
            lambda: kubectl(
                kubeconfig, "auth", "can-i", "create", "modeldeployments.mlops.dev",
                "-n", namespace, f"--as={editor}", check=False,
            ).stdout.strip() == "yes",
            timeout=60,
            what="the editor role to aggregate into edit",
        )  # fmt: skip
        (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
        operator_config = _token_kubeconfig(
            kubeconfig, namespace, account, tmp_path / "operator.kubeconfig"
        )
        approver_config = _token_kubeconfig(
            kubeconfig, namespace, "approver", tmp_path / "approver.kubeconfig"
        )
        yield Governed(
            namespace,
            kubeconfig,
            operator_config,
            approver_config,
            editor,
            approver,
            namespace,
            approver_role,
        )
    finally:
        for doc in cluster_scoped:
            kubectl(kubeconfig, "delete", doc["kind"], doc["metadata"]["name"],
                    "--ignore-not-found", check=False)  # fmt: skip
        delete_namespace(kubeconfig, namespace)


@pytest.fixture
def governed_operator(governed: Governed, tmp_path: Path) -> Iterator[RunningOperator]:
    """The operator for the governed namespace, logged in as the chart's ServiceAccount.

    Retired like `operator_for_test`: the namespace's objects are deleted (by the admin)
    while it runs, so it releases its finalizers, then it is stopped.
    """
    running = start_operator(
        governed.operator_kubeconfig, governed.namespace, tmp_path / "operator.log"
    )
    try:
        yield running
    finally:
        if running.process.poll() is None:
            kubectl(
                governed.kubeconfig, "delete", MLOPS_KINDS, "--all", "-n", governed.namespace,
                "--wait=true", "--timeout=30s", check=False, timeout=60,
            )  # fmt: skip
            running.stop()
