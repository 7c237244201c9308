"""The CLI reaches the real API server through kubeconfigs as platform engineers write them.

Aspects, each as the API server sees it (ServiceAccount tokens from TokenRequest, RBAC deciding):

- an exec credential plugin (a script printing an ExecCredential with a fresh token of a
  ServiceAccount) logs `mlops history` in; a certificate from a plugin works too; the plugin
  runs again once its ``expirationTimestamp`` has passed (runs counted in a file), and after a
  401 when the token it gave was refused; a new certificate from it is a new TLS identity;
- ``--context`` picks a context among several in one file: the one whose user has no rights
  gets the API server's 403 as one line (no traceback), the other succeeds; through ``kubectl
  mlops --context …`` too (flags before the command);
- ``--as`` / ``--as-group``: the admin acting as a restricted user is refused by RBAC, acting
  as the promoter (or as a member of the promoters' group) succeeds, and the change is
  recorded under the impersonated name (the API server's SelfSubjectReview);
- ``KUBECONFIG`` with two files: a context in one names a user only the other defines, and a
  relative CA path is read beside the file that names it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.metadata import REQUESTED_BY_ANNOTATION
from mlops_operator.api.resource import API_VERSION
from mlops_operator.k8s import Connection, KubeClient
from mlops_operator.k8s.kubeconfig import Overrides, load
from mlops_operator.localcluster.pki import ClientIdentity, ensure_client_cert
from tests.integration.execplugins import exec_user, plugin, runs
from tests.integration.operator.conftest import MLOPS
from tests.kube import KUBECTL, delete_namespace, get_json, kubectl
from tests.unit.cli.objects import load as load_object


@dataclass
class Cluster:
    """The test's namespace on the real API server, its ServiceAccounts and kubeconfig parts."""

    admin: Path
    namespace: str
    cluster: dict[str, Any]
    """The admin kubeconfig's cluster entry (server, CA path)."""
    folder: Path

    def token(self, account: str) -> str:
        """A TokenRequest token of `account` (an hour)."""
        return kubectl(
            self.admin, "create", "token", account, "-n", self.namespace, "--duration=1h"
        ).stdout.strip()

    def kubeconfig(self, name: str, users: dict[str, dict[str, Any]], current: str) -> Path:
        """A kubeconfig with one context per user (named after it), in the namespace."""
        path = self.folder / name
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [self.cluster],
                    "users": [{"name": user, "user": body} for user, body in users.items()],
                    "contexts": [
                        {
                            "name": user,
                            "context": {
                                "cluster": self.cluster["name"],
                                "user": user,
                                "namespace": self.namespace,
                            },
                        }
                        for user in users
                    ],
                    "current-context": current,
                }
            )
        )
        return path


def _mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MLOPS), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _succeeded(answer: subprocess.CompletedProcess[str]) -> str:
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout


def _refused(answer: subprocess.CompletedProcess[str]) -> str:
    assert answer.returncode == 1, answer.stdout + answer.stderr
    assert "Traceback" not in answer.stderr, answer.stderr
    (line,) = answer.stderr.strip().splitlines()
    return line


@pytest.fixture
def cluster(kubeconfig: Path, crds: list[Path], tmp_path: Path) -> Iterator[Cluster]:
    """A namespace with the ModelDeployment `churn` (a history entry in its status), the
    ServiceAccounts `reader` (may read it), `promoter` (may read and patch it) and `nobody`, and
    the users `promoter@<ns>` and group `promoters@<ns>` bound like the promoter."""
    namespace = f"kc-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", namespace)
    try:
        mdep = load_object("ModelDeployment", "available")
        status = mdep.pop("status")
        status["history"] = [
            {"version": 4, "time": "2026-11-26T10:00:00Z", "action": "Deploy",
             "reason": "FirstVersion", "message": "churn-v4 serves", "actor": "mlops-operator"},
        ]  # fmt: skip
        mdep["metadata"] = {"name": "churn", "namespace": namespace}
        kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(mdep))
        kubectl(kubeconfig, "patch", "mdep", "churn", "-n", namespace, "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip
        for account in ("reader", "promoter", "nobody"):
            kubectl(kubeconfig, "create", "serviceaccount", account, "-n", namespace)
        kubectl(kubeconfig, "create", "role", "reader", "-n", namespace,
                "--verb=get,list", "--resource=modeldeployments.mlops.dev")  # fmt: skip
        kubectl(kubeconfig, "create", "role", "promoter", "-n", namespace,
                "--verb=get,list,patch", "--resource=modeldeployments.mlops.dev")  # fmt: skip
        kubectl(kubeconfig, "create", "rolebinding", "reader", "-n", namespace, "--role=reader",
                f"--serviceaccount={namespace}:reader")  # fmt: skip
        kubectl(kubeconfig, "create", "rolebinding", "promoter", "-n", namespace,
                "--role=promoter", f"--serviceaccount={namespace}:promoter",
                f"--user=promoter@{namespace}", f"--group=promoters@{namespace}")  # fmt: skip
        admin = yaml.safe_load(kubeconfig.read_text())
        yield Cluster(kubeconfig, namespace, admin["clusters"][0], tmp_path)
    finally:
        delete_namespace(kubeconfig, namespace)


def _plugin(cluster: Cluster, *, first_token: str | None = None, lifetime: float = 3600) -> Path:
    """An exec plugin: asks the API server (as the admin) for a token of `reader`, and prints
    it with an expiry `lifetime` seconds away (the first run prints `first_token` instead,
    when given)."""
    command = [str(KUBECTL), "--kubeconfig", str(cluster.admin), "create", "token", "reader",
               "-n", cluster.namespace, "--duration=1h"]  # fmt: skip
    return plugin(
        cluster.folder / "get-token.py",
        f"""import subprocess
token = subprocess.run({command!r}, capture_output=True, text=True, check=True).stdout.strip()
if count == 0 and {first_token!r} is not None:
    token = {first_token!r}
valid_until = now + timedelta(seconds={lifetime!r})
status = {{"token": token, "expirationTimestamp": valid_until.isoformat()}}
""",
    )


def _expiries(script: Path) -> list[datetime]:
    return [run.valid_until for run in runs(script) if run.valid_until is not None]


def test_an_exec_plugin_logs_the_cli_in(cluster: Cluster) -> None:
    script = _plugin(cluster)
    config = cluster.kubeconfig("exec", {"eks": exec_user(script)}, "eks")
    table = _succeeded(_mlops("history", "churn", "--kubeconfig", str(config)))
    assert "FirstVersion" in table
    assert "churn-v4 serves" in table
    assert len(runs(script)) == 1
    # The reader may read, not change: the 403 is the API server's, about the plugin's identity.
    refusal = _refused(_mlops("promote", "churn", "--to", "4", "--kubeconfig", str(config)))
    assert refusal.startswith("mlops promote: error: 403 Forbidden:")
    assert f"system:serviceaccount:{cluster.namespace}:reader" in refusal
    assert 'cannot patch resource "modeldeployments"' in refusal


def test_a_refused_token_makes_the_plugin_run_again(cluster: Cluster) -> None:
    script = _plugin(cluster, first_token="revoked-or-expired-token")
    config = cluster.kubeconfig("exec", {"eks": exec_user(script)}, "eks")
    _succeeded(_mlops("history", "churn", "--kubeconfig", str(config)))
    # The first token got a 401; the plugin ran again and the request went through.
    assert len(runs(script)) == 2


def test_a_client_certificate_from_an_exec_plugin(cluster: Cluster) -> None:
    admin = yaml.safe_load(cluster.admin.read_text())["users"][0]["user"]
    certificate = Path(admin["client-certificate"]).read_text()
    key = Path(admin["client-key"]).read_text()
    status = {"clientCertificateData": certificate, "clientKeyData": key}
    script = plugin(cluster.folder / "get-cert.py", f"status = {status!r}")
    config = cluster.kubeconfig("cert", {"admin": exec_user(script)}, "admin")
    answer = _succeeded(_mlops("status", "--kubeconfig", str(config), "-o", "json"))
    assert [row["model"] for row in json.loads(answer)["models"]] == ["churn"]
    # The certificate's identity (the cluster admin) may change it too.
    promoted = _succeeded(_mlops("promote", "churn", "--to", "4", "--kubeconfig", str(config)))
    assert "version 4 requested by" in promoted
    assert "serviceaccount" not in promoted


async def test_the_plugin_runs_again_once_its_credential_expired(cluster: Cluster) -> None:
    script = _plugin(cluster, lifetime=20.0)
    config = cluster.kubeconfig("exec", {"eks": exec_user(script)}, "eks")
    kube = KubeClient(field_manager="mlops-test")
    await kube.connect(Connection.from_target(load(Overrides(kubeconfig=config))))
    try:
        for _ in range(3):
            await kube.get(API_VERSION, "ModelDeployment", "churn", cluster.namespace)
        (expiry,) = _expiries(script)  # one credential, used while valid
        assert datetime.now(UTC) < expiry, "the requests outlasted the credential: cannot tell"
        # Wait for what is asserted: the moment the credential the plugin gave has expired.
        await asyncio.sleep((expiry - datetime.now(UTC)).total_seconds() + 0.1)
        await kube.get(API_VERSION, "ModelDeployment", "churn", cluster.namespace)
        assert len(runs(script)) == 2
    finally:
        await kube.close()


async def test_a_new_certificate_from_the_plugin_is_a_new_identity(cluster: Cluster) -> None:
    # Two client certificates signed by the cluster's CA: one per run of the plugin.
    pki = cluster.folder / "pki"
    pki.mkdir()
    ca = Path(cluster.cluster["cluster"]["certificate-authority"])
    for part in ("crt", "key"):
        shutil.copy(ca.with_suffix(f".{part}"), pki / f"ca.{part}")
    ns = cluster.namespace
    pairs = [
        ensure_client_cert(pki, ClientIdentity(stem, f"{stem}@{ns}"))
        for stem in ("first", "second")
    ]
    credentials = [
        {"clientCertificateData": cert.read_text(), "clientKeyData": key.read_text()}
        for cert, key in pairs
    ]
    script = plugin(
        cluster.folder / "get-cert.py",
        f"""valid_until = now + timedelta(seconds=10)
status = {{**{credentials!r}[min(count, 1)], "expirationTimestamp": valid_until.isoformat()}}
""",
    )
    config = cluster.kubeconfig("rotating", {"rotating": exec_user(script)}, "rotating")
    kube = KubeClient(field_manager="mlops-test")
    await kube.connect(Connection.from_target(load(Overrides(kubeconfig=config))))

    try:
        assert await kube.whoami() == f"first@{ns}"
        (expiry,) = _expiries(script)
        await asyncio.sleep((expiry - datetime.now(UTC)).total_seconds() + 0.1)
        # The expired certificate is replaced, and the TLS connection with it.
        assert await kube.whoami() == f"second@{ns}"
        assert len(runs(script)) == 2
    finally:
        await kube.close()


def test_context_picks_the_identity(cluster: Cluster) -> None:
    users = {
        "nobody": {"token": cluster.token("nobody")},
        "reader": {"token": cluster.token("reader")},
    }
    config = cluster.kubeconfig("two-contexts", users, current="nobody")
    env = {"KUBECONFIG": str(config)}
    refusal = _refused(_mlops("history", "churn", env=env))
    assert refusal.startswith("mlops history: error: 403 Forbidden:")
    assert f"system:serviceaccount:{cluster.namespace}:nobody" in refusal
    assert "FirstVersion" in _succeeded(_mlops("history", "churn", "--context", "reader", env=env))
    # Before the command, as `kubectl mlops --context …` passes it.
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    plugin = subprocess.run(
        [str(KUBECTL), "mlops", "--context", "reader", "lineage", "churn-v4"],
        env={**os.environ, **env, "PATH": path},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # The reader may read ModelDeployments only: the API server's 403 on ModelVersions.
    assert plugin.returncode == 1
    assert 'cannot get resource "modelversions"' in plugin.stderr
    assert f"system:serviceaccount:{cluster.namespace}:reader" in plugin.stderr


def test_as_impersonates_a_user_and_groups(cluster: Cluster) -> None:
    ns = cluster.namespace
    admin = ("--kubeconfig", str(cluster.admin), "-n", ns)
    refusal = _refused(_mlops("promote", "churn", "--to", "4", *admin, "--as", f"editor@{ns}"))
    assert refusal.startswith("mlops promote: error: 403 Forbidden:")
    assert f'User "editor@{ns}" cannot get resource "modeldeployments"' in refusal
    assert f"version 4 requested by promoter@{ns}" in _succeeded(
        _mlops("promote", "churn", "--to", "4", *admin, "--as", f"promoter@{ns}")
    )
    annotations = get_json(cluster.admin, "mdep", "churn", "-n", ns)["metadata"]["annotations"]
    assert annotations[REQUESTED_BY_ANNOTATION] == f"promoter@{ns}"
    # A user with no binding of their own, in the promoters' group; flags before the command.
    member = ("--as", f"someone@{ns}", "--as-group", f"promoters@{ns}")
    assert f"promotion Auto, requested by someone@{ns}" in _succeeded(
        _mlops(*member, "promote", "churn", "--auto", *admin)
    )


def test_kubeconfig_files_merge(cluster: Cluster) -> None:
    team = cluster.folder / "team"
    team.mkdir()
    shutil.copy(cluster.cluster["cluster"]["certificate-authority"], team / "cluster-ca.crt")
    cluster_entry = {
        "name": "shared",
        "cluster": {
            "server": cluster.cluster["cluster"]["server"],
            "certificate-authority": "cluster-ca.crt",  # beside this file, not the cwd
        },
    }
    first = team / "clusters.yaml"
    first.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster_entry],
                "contexts": [
                    {
                        "name": "team",
                        "context": {
                            "cluster": "shared",
                            "user": "reader",
                            "namespace": cluster.namespace,
                        },
                    },
                ],
                "current-context": "team",
            }
        )
    )
    second = cluster.folder / "users.yaml"
    second.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [{"name": "reader", "user": {"token": cluster.token("reader")}}],
                "current-context": "ignored-the-first-file-set-one",
            }
        )
    )
    env = {"KUBECONFIG": f"{first}{os.pathsep}{second}"}
    assert "FirstVersion" in _succeeded(_mlops("history", "churn", env=env))
    # Alone, neither file is a usable kubeconfig: the loader names what is missing.
    alone = _refused(_mlops("history", "churn", env={"KUBECONFIG": str(first)}))
    assert "context 'team' names user 'reader', which is not in" in alone
