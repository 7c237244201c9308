"""Kopf's configuration at startup: what a fresh `kopf.OperatorSettings` becomes.

Aspects: no log record becomes an Event while explicit events still post;
progress and diff-base in annotations under mlops.dev (never status.kopf), the diff-base
as a digest of the spec;
watch and request timeouts are finite and come from the operator's settings.

And Kopf's login: Kopf is handed exactly what the handlers' client sends (the same
Authorization header or client certificate, the server and its CA, the expiry of an exec
plugin's credential); a kubeconfig Kopf cannot act on (impersonation, tls-server-name) is
refused naming why; the first login reuses the credential the handlers' client already has,
each later one (Kopf's credential expired or was refused) runs the plugin again, unless the
handlers' client replaced the credential first, which Kopf is then handed.
"""

from __future__ import annotations

import base64
import logging
import sys
from pathlib import Path

import kopf
import pytest

from mlops_operator.handlers.bookkeeping import SpecDigestStorage
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.lifecycle import configure_kopf, connection_info, login
from mlops_operator.k8s import Connection, KubeClient
from mlops_operator.k8s import connection as connection_module
from mlops_operator.k8s.kubeconfig import ExecConfig, Impersonation, Target
from mlops_operator.runtime.settings import OperatorSettings


def test_only_explicit_events_are_posted() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.posting.enabled
    assert settings.posting.level > logging.CRITICAL
    assert settings.posting.reporting_component == "mlops-operator"


def test_progress_is_kept_in_annotations_not_in_the_typed_status() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    progress = settings.persistence.progress_storage
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert not isinstance(progress, kopf.StatusProgressStorage)
    assert progress.prefix == "mlops.dev"
    assert isinstance(diffbase, SpecDigestStorage)
    assert diffbase.prefix == "mlops.dev"
    assert settings.persistence.finalizer.startswith("mlops.dev/")


def test_watches_and_requests_time_out() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    server, client = settings.watching.server_timeout, settings.watching.client_timeout
    assert server is not None
    assert client is not None
    assert 0 < server < client
    assert settings.watching.connect_timeout is not None
    assert settings.networking.request_timeout is not None


def test_timeouts_come_from_the_operator_settings() -> None:
    settings = kopf.OperatorSettings()
    ours = OperatorSettings(
        watch_server_timeout=20,
        watch_client_timeout=25,
        watch_inactivity_timeout=5,
        api_request_timeout=7,
        api_connect_timeout=3,
    )
    configure_kopf(settings, ours)
    assert (settings.watching.server_timeout, settings.watching.client_timeout) == (20, 25)
    assert settings.watching.inactivity_timeout == 5
    assert settings.watching.connect_timeout == settings.networking.connect_timeout == 3
    assert settings.networking.request_timeout == 7


_CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"


def _target(ca: bytes | None = _CA, **credentials: object) -> Target:
    return Target(
        server="https://api.example:6443",
        namespace="team-a",
        source="context 'eks' of /home/me/.kube/config",
        ca_data=ca,
        **credentials,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "credentials",
    [{"token": "abc.def"}, {"username": "admin", "password": "s3cret"}],
    ids=["token", "basic"],
)
async def test_kopf_sends_the_header_the_handlers_send(credentials: dict[str, str]) -> None:
    connection = Connection.from_target(_target(**credentials))
    authorization = await connection.authorization()
    info = connection_info(connection, authorization)
    assert info.as_http_headers() == dict(authorization.headers)
    assert (info.server, info.default_namespace) == ("https://api.example:6443", "team-a")
    assert info.ca_data == connection.ca_data
    assert info.expiration is None
    if "username" in credentials:
        assert base64.b64decode(info.as_http_headers()["Authorization"].split()[1]) == (
            b"admin:s3cret"
        )


async def test_kopf_gets_the_client_certificate() -> None:
    connection = Connection.from_target(_target(client_certificate=b"CERT", client_key=b"KEY"))
    info = connection_info(connection, await connection.authorization())
    assert (info.certificate_data, info.private_key_data) == (b"CERT", b"KEY")
    assert info.as_http_headers() == {}


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (
            {"impersonation": Impersonation("system:serviceaccount:mlops:operator")},
            (
                "impersonates 'system:serviceaccount:mlops:operator' (the user's `as`): the"
                " operator's watches (Kopf's) cannot send Impersonate-* headers"
            ),
        ),
        (
            {"tls_server_name": "kubernetes.internal"},
            "sets tls-server-name 'kubernetes.internal'",
        ),
    ],
    ids=["impersonation", "tls-server-name"],
)
async def test_what_kopf_cannot_do_is_refused_saying_why(
    more: dict[str, object], message: str
) -> None:
    connection = Connection.from_target(_target(token="t", **more))
    with pytest.raises(ValueError, match=r"^context 'eks' of /home/me/\.kube/config ") as refused:
        connection_info(connection, await connection.authorization())
    assert message in str(refused.value)


def _counting_plugin(tmp_path: Path) -> ExecConfig:
    """A plugin handing out the token ``run-N`` (N: how many times it ran), valid for an hour."""
    runs = tmp_path / "runs"
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, pathlib\n"
        "from datetime import datetime, timedelta, timezone\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "count = len(runs.read_text().split()) + 1 if runs.exists() else 1\n"
        "runs.write_text('x ' * count)\n"
        "expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential',"
        " 'status': {'token': f'run-{count}', 'expirationTimestamp': expiry}}))\n"
    )
    return ExecConfig(
        api_version="client.authentication.k8s.io/v1",
        command=sys.executable,
        args=(str(script),),
        interactive_mode="Never",
        user="eks",
    )


async def test_kopf_logs_in_as_the_handlers_and_again_with_fresh_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pause before replacing refused fresh credentials has its own test (k8s).
    monkeypatch.setattr(connection_module, "_REFUSED_AGAIN_SECONDS", 0.0)
    # No CA: the client builds its TLS context at once, and the system's trust is a valid one.
    connection = Connection.from_target(_target(ca=None, exec=_counting_plugin(tmp_path)))
    kube = KubeClient()
    await kube.connect(connection)  # as the operator does before Kopf starts: the first run
    memo = OperatorContext.create(OperatorSettings(), kube)
    try:
        first = await login(memo=memo)
        assert first.token == "run-1"  # the handlers' credential, the plugin not run again
        assert first.expiration is not None
        second = await login(memo=memo)  # Kopf asks again: what it holds expired or was refused
        assert second.token == "run-2"
        # The handlers' client was refused first (a 401) and ran the plugin: Kopf gets that.
        renewed = await connection.authorization(refused=await connection.authorization())
        assert renewed.headers == (("Authorization", "Bearer run-3"),)
        third = await login(memo=memo)
        assert third.token == "run-3"
        assert (tmp_path / "runs").read_text().split() == ["x"] * 3
    finally:
        await kube.close()
