"""Exec credential plugins run as kubectl runs them, and their credentials are kept until they expire.

Aspects: a real plugin (a script) gets its args, its env on top of ours, and
``KUBERNETES_EXEC_INFO`` (with the cluster when ``provideClusterInfo``, not interactive without
a terminal); its token is used until ``expirationTimestamp``, then it runs again, and again when
the credential it gave is refused (after a 401), but once for a burst of refusals and not at all
for credentials already replaced, and no sooner than a pause after a refusal of what a
refusal brought (a plugin whose every credential is refused); a certificate from it becomes the TLS identity; impersonation
headers ride along; a token file is re-read when refused; every way a plugin can fail is one
clear sentence (cannot run, with the install hint; exit status; not an ExecCredential; wrong
version; no credential; a certificate without its key; a bad timestamp; a credential expired
when handed out; Always without a terminal).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.k8s import connection as connection_module
from mlops_operator.k8s.connection import Connection
from mlops_operator.k8s.execcredential import ExecPluginError, parse, run
from mlops_operator.k8s.kubeconfig import ExecConfig, Impersonation, Target

pytestmark = pytest.mark.unit

V1 = "client.authentication.k8s.io/v1"


def _plugin(
    tmp_path: Path, status: dict[str, Any], *, exit_code: int = 0, lifetime: float | None = None
) -> Path:
    """A plugin that records each run (its args, env and exec info) and prints `status`; with
    `lifetime`, the credential expires that many seconds after the run."""
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, os, sys\n"
        "from datetime import datetime, timedelta, timezone\n"
        f"log = {str(tmp_path / 'runs.jsonl')!r}\n"
        "with open(log, 'a') as f:\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'profile': os.environ.get('PROFILE'),"
        " 'info': json.loads(os.environ['KUBERNETES_EXEC_INFO'])}) + '\\n')\n"
        f"status = {status!r}\n"
        f"if {lifetime!r} is not None:\n"
        f"    expiry = datetime.now(timezone.utc) + timedelta(seconds={lifetime!r})\n"
        "    status['expirationTimestamp'] = expiry.isoformat()\n"
        f"print(json.dumps({{'apiVersion': {V1!r}, 'kind': 'ExecCredential',"
        " 'status': status}))\n"
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


async def test_the_token_is_kept_until_it_expires_then_asked_for_again(tmp_path: Path) -> None:
    script = _plugin(tmp_path, {"token": "t"}, lifetime=2.0)
    impersonation = Impersonation("alice", ("approvers",))
    connection = Connection.from_target(_target(_config(script), impersonation=impersonation))
    assert connection.renewable
    first = await connection.authorization()
    assert first.headers == (
        ("Authorization", "Bearer t"),
        ("Impersonate-User", "alice"),
        ("Impersonate-Group", "approvers"),
    )
    assert first.expires is not None
    assert await connection.authorization() == first  # valid: kept
    assert len(_runs(tmp_path)) == 1
    # Wait for what is asserted: the moment the credential has expired.
    await asyncio.sleep((first.expires - datetime.now(UTC)).total_seconds() + 0.05)
    second = await connection.authorization()
    assert len(_runs(tmp_path)) == 2
    assert second.issue == first.issue + 1
    assert second.expires is not None
    assert second.expires > first.expires


async def test_refused_credentials_are_replaced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "_REFUSED_AGAIN_SECONDS", 0.0)  # its own test
    script = _plugin(tmp_path, {"token": "t"})
    connection = Connection.from_target(_target(_config(script)))
    first = await connection.authorization()
    # A burst of 401s for the same credential (requests in flight, Kopf's login): one run.
    burst = await asyncio.gather(*(connection.authorization(refused=first) for _ in range(5)))
    assert len(_runs(tmp_path)) == 2
    assert {answer.issue for answer in burst} == {first.issue + 1}
    # Refusing credentials that were replaced already asks for nothing new.
    assert await connection.authorization(refused=first) == burst[0]
    assert len(_runs(tmp_path)) == 2
    await connection.authorization(refused=burst[0])
    assert len(_runs(tmp_path)) == 3


async def test_fresh_credentials_refused_again_wait_before_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "_REFUSED_AGAIN_SECONDS", 1.0)
    script = _plugin(tmp_path, {"token": "t"})
    connection = Connection.from_target(_target(_config(script)))
    first = await connection.authorization()
    fresh = await connection.authorization(refused=first)  # a first refusal: no pause
    ran = time.monotonic()
    again = await connection.authorization(refused=fresh)  # what it brought, refused too
    assert time.monotonic() - ran >= 1.0
    assert again.issue == first.issue + 2
    assert len(_runs(tmp_path)) == 3


async def test_a_certificate_from_the_plugin_is_the_tls_identity(tmp_path: Path) -> None:
    script = _plugin(tmp_path, {"clientCertificateData": "CERT", "clientKeyData": "KEY"})
    connection = Connection.from_target(_target(_config(script)))
    authorization = await connection.authorization()
    assert authorization.identity == (b"CERT", b"KEY")
    assert authorization.headers == ()


async def test_a_token_file_is_read_again_when_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    connection = Connection.from_target(
        Target(server="https://c", namespace="default", source="test", token_file=token)
    )
    first = await connection.authorization()
    assert first.headers == (("Authorization", "Bearer first"),)
    token.write_text("rotated\n")
    assert (await connection.authorization(refused=first)).headers == (
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
    expired = _plugin(tmp_path, {"token": "x"}, lifetime=-3600)
    with pytest.raises(ExecPluginError, match="handed out a credential that had expired already"):
        await run(_config(expired), {})
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
