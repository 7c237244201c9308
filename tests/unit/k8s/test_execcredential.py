"""Exec credential plugins run as kubectl runs them, and their credentials are kept until they expire.

Aspects: a real plugin (a script) gets its args, its env on top of ours, and
``KUBERNETES_EXEC_INFO`` (with the cluster when ``provideClusterInfo``, not interactive without
a terminal); its token is used until ``expirationTimestamp``, then it runs again, and again when
asked to renew (after a 401); a certificate from it becomes the TLS identity; impersonation
headers ride along; a token file is re-read on renewal; every way a plugin can fail is one
clear sentence (cannot run, with the install hint; exit status; not an ExecCredential; wrong
version; no credential; a certificate without its key; a bad timestamp; Always without a
terminal).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.k8s.connection import Connection
from mlops_operator.k8s.execcredential import ExecPluginError, parse, run
from mlops_operator.k8s.kubeconfig import ExecConfig, Impersonation, Target

pytestmark = pytest.mark.unit

V1 = "client.authentication.k8s.io/v1"


def _plugin(tmp_path: Path, status: dict[str, Any], *, exit_code: int = 0) -> Path:
    """A plugin that records each run (its args, env and exec info) and prints `status`."""
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, os, sys\n"
        f"log = {str(tmp_path / 'runs.jsonl')!r}\n"
        "with open(log, 'a') as f:\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'profile': os.environ.get('PROFILE'),"
        " 'info': json.loads(os.environ['KUBERNETES_EXEC_INFO'])}) + '\\n')\n"
        f"print(json.dumps({{'apiVersion': {V1!r}, 'kind': 'ExecCredential',"
        f" 'status': {status!r}}}))\n"
        f"sys.exit({exit_code})\n"
    )
    return script


def _runs(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "runs.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _config(script: Path | str, **more: Any) -> ExecConfig:
    return ExecConfig(
        api_version=V1,
        command=sys.executable,
        args=(str(script), "--region", "eu"),
        env=(("PROFILE", "prod"),),
        interactive_mode="IfAvailable",
        user="eks-admin",
        **more,
    )


async def test_a_plugin_runs_with_its_args_env_and_exec_info(tmp_path: Path) -> None:
    script = _plugin(tmp_path, {"token": "t-1"})
    cluster = {"server": "https://c:6443", "insecure-skip-tls-verify": False}
    credential = await run(_config(script, provide_cluster_info=True), cluster)
    assert credential.token == "t-1"
    assert credential.expires is None
    assert not credential.expired()
    (seen,) = _runs(tmp_path)
    assert seen["args"] == ["--region", "eu"]
    assert seen["profile"] == "prod"
    assert seen["info"] == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        # pytest's stdin is not a terminal: the plugin is told it may not prompt.
        "spec": {"interactive": False, "cluster": cluster},
    }
    await run(_config(script), cluster)
    assert "cluster" not in _runs(tmp_path)[1]["info"]["spec"]


def _target(config: ExecConfig, **more: Any) -> Target:
    return Target(server="https://c:6443", namespace="default", source="test", exec=config, **more)


@pytest.mark.parametrize("expired", [False, True])
async def test_the_token_is_kept_until_it_expires_then_asked_for_again(
    tmp_path: Path, expired: bool
) -> None:
    expiry = datetime.now(UTC) + timedelta(hours=-1 if expired else 1)
    script = _plugin(tmp_path, {"token": "t", "expirationTimestamp": expiry.isoformat()})
    impersonation = Impersonation("alice", ("approvers",))
    connection = Connection.from_target(_target(_config(script), impersonation=impersonation))
    assert connection.renewable
    first = await connection.authorization()
    assert first.headers == (
        ("Authorization", "Bearer t"),
        ("Impersonate-User", "alice"),
        ("Impersonate-Group", "approvers"),
    )
    await connection.authorization()
    # Valid: kept; expired: asked for again on the next request.
    assert len(_runs(tmp_path)) == (2 if expired else 1)
    await connection.authorization(renew=True)  # a 401: asked again whatever the expiry says
    assert len(_runs(tmp_path)) == (3 if expired else 2)


async def test_a_certificate_from_the_plugin_is_the_tls_identity(tmp_path: Path) -> None:
    script = _plugin(tmp_path, {"clientCertificateData": "CERT", "clientKeyData": "KEY"})
    connection = Connection.from_target(_target(_config(script)))
    authorization = await connection.authorization()
    assert authorization.identity == (b"CERT", b"KEY")
    assert authorization.headers == ()


async def test_a_token_file_is_read_again_on_renewal(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    connection = Connection.from_target(
        Target(server="https://c", namespace="default", source="test", token_file=token)
    )
    assert (await connection.authorization()).headers == (("Authorization", "Bearer first"),)
    token.write_text("rotated\n")
    assert (await connection.authorization(renew=True)).headers == (
        ("Authorization", "Bearer rotated"),
    )


async def test_a_plugin_that_cannot_run_or_fails_says_so(tmp_path: Path) -> None:
    missing = ExecConfig(
        api_version=V1,
        command=str(tmp_path / "aws"),
        interactive_mode="Never",
        install_hint="Install the AWS CLI: https://aws.amazon.com/cli/",
        user="eks",
    )
    with pytest.raises(ExecPluginError, match=r"cannot run: .*; Install the AWS CLI"):
        await run(missing, {})
    failing = _plugin(tmp_path, {"token": "x"}, exit_code=3)
    with pytest.raises(ExecPluginError, match="failed with exit code 3"):
        await run(_config(failing), {})
    always = ExecConfig(api_version=V1, command="true", interactive_mode="Always", user="u")
    with pytest.raises(ExecPluginError, match=r"needs a terminal \(interactiveMode: Always\)"):
        await run(always, {})


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("not json", "printed no JSON ExecCredential"),
        (json.dumps({"kind": "Secret"}), "kind must be ExecCredential"),
        (
            json.dumps(
                {"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1"}
            ),
            (
                "answered apiVersion 'client.authentication.k8s.io/v1beta1'; the kubeconfig asked"
                " for client.authentication.k8s.io/v1"
            ),
        ),
        (
            json.dumps({"kind": "ExecCredential", "apiVersion": V1}),
            "the ExecCredential has no status",
        ),
        (
            json.dumps({"kind": "ExecCredential", "apiVersion": V1, "status": {}}),
            "status has neither token nor clientCertificateData and clientKeyData",
        ),
        (
            json.dumps(
                {
                    "kind": "ExecCredential",
                    "apiVersion": V1,
                    "status": {"clientCertificateData": "C"},
                }
            ),
            "status.clientKeyData is missing",
        ),
        (
            json.dumps(
                {
                    "kind": "ExecCredential",
                    "apiVersion": V1,
                    "status": {"token": "t", "expirationTimestamp": "tomorrow"},
                }
            ),
            "status.expirationTimestamp 'tomorrow' is not an RFC 3339 time",
        ),
    ],
)
def test_what_is_not_a_credential_is_refused_saying_why(output: str, message: str) -> None:
    config = ExecConfig(api_version=V1, command="get-token", user="u")
    with pytest.raises(ExecPluginError) as caught:
        parse(output, config)
    assert message in str(caught.value)
    assert "exec plugin 'get-token' (user u)" in str(caught.value)


def test_an_expiry_without_a_zone_is_utc_and_z_is_understood() -> None:
    config = ExecConfig(api_version=V1, command="get-token", user="u")

    def expiry(stamp: str) -> datetime | None:
        body = {"token": "t", "expirationTimestamp": stamp}
        document = {"kind": "ExecCredential", "apiVersion": V1, "status": body}
        return parse(json.dumps(document), config).expires

    assert expiry("2030-01-02T03:04:05Z") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert expiry("2030-01-02T03:04:05") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
