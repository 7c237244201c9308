"""Exec credential plugins: how EKS, GKE, AKS and OIDC kubeconfigs hand out credentials.

A user entry with ``exec`` names a program (``aws eks get-token``,
``gke-gcloud-auth-plugin``, ``kubelogin get-token`` …) that prints an ``ExecCredential``
(``client.authentication.k8s.io/v1`` or ``v1beta1``) whose status holds a bearer token or a
client certificate and key, and optionally when they expire. As client-go does, the program
runs with the kubeconfig's args and env on top of ours, with ``KUBERNETES_EXEC_INFO`` (the
request: its version, whether it may talk to the user, and with ``provideClusterInfo`` the
cluster), with the terminal's stdin only when its ``interactiveMode`` allows and there is a
terminal, and its stderr shown to the user (where plugins print their prompts and errors).
The result is kept until its ``expirationTimestamp`` and run again after that, or when the
API server answers 401 (`connection.Connection`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops_operator.k8s.kubeconfig import ExecConfig

__all__ = ["CredentialError", "ExecCredential", "ExecPluginError", "parse", "run"]

_TIMEOUT = 300.0
"""Long enough for a person to finish a browser login a plugin opened (kubelogin)."""


class CredentialError(RuntimeError):
    """Credentials the kubeconfig names could not be had (a token file, a plugin)."""


class ExecPluginError(CredentialError):
    """The plugin could not run, failed, or printed something that is not an ExecCredential."""


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin handed out: a token or a client certificate, until `expires` (or for good)."""

    token: str | None = None
    client_certificate: bytes | None = None
    client_key: bytes | None = None
    expires: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        """Whether it must be asked for again."""
        if self.expires is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires


def _timestamp(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as error:
        raise ExecPluginError(f"{what} {value!r} is not an RFC 3339 time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse(output: str, config: ExecConfig) -> ExecCredential:
    """The credential in a plugin's stdout `output`; ExecPluginError saying what is wrong."""
    what = f"exec plugin {config.command!r} (user {config.user})"
    try:
        document = json.loads(output)
    except ValueError as error:
        raise ExecPluginError(f"{what} printed no JSON ExecCredential: {error}") from error
    if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
        raise ExecPluginError(f"{what} printed no ExecCredential (kind must be ExecCredential)")
    if document.get("apiVersion") != config.api_version:
        raise ExecPluginError(
            f"{what} answered apiVersion {document.get('apiVersion')!r}; the kubeconfig asked"
            f" for {config.api_version}"
        )
    status = document.get("status")
    if not isinstance(status, dict):
        raise ExecPluginError(f"{what}: the ExecCredential has no status")
    token = status.get("token") or None
    certificate = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if (certificate is None) != (key is None):
        missing = "clientKeyData" if key is None else "clientCertificateData"
        raise ExecPluginError(f"{what}: status.{missing} is missing (a certificate needs its key)")
    if token is None and certificate is None:
        raise ExecPluginError(
            f"{what}: status has neither token nor clientCertificateData and clientKeyData"
        )
    expires = status.get("expirationTimestamp")
    return ExecCredential(
        token=str(token) if token else None,
        client_certificate=str(certificate).encode() if certificate else None,
        client_key=str(key).encode() if key else None,
        expires=_timestamp(expires, f"{what}: status.expirationTimestamp") if expires else None,
    )


def _interactive(config: ExecConfig) -> bool:
    terminal = sys.stdin is not None and sys.stdin.isatty()
    if config.interactive_mode == "Always" and not terminal:
        raise ExecPluginError(
            f"exec plugin {config.command!r} (user {config.user}) needs a terminal"
            " (interactiveMode: Always), and stdin is not one"
        )
    return config.interactive_mode != "Never" and terminal


def _exec_info(config: ExecConfig, cluster: dict[str, Any], interactive: bool) -> str:
    spec: dict[str, Any] = {"interactive": interactive}
    if config.provide_cluster_info:
        spec["cluster"] = cluster
    return json.dumps({"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec})


async def run(config: ExecConfig, cluster: dict[str, Any]) -> ExecCredential:
    """Run the plugin once; its credential, or ExecPluginError with what went wrong."""
    interactive = _interactive(config)
    env = {**os.environ, **dict(config.env)}
    env["KUBERNETES_EXEC_INFO"] = _exec_info(config, cluster, interactive)
    what = f"exec plugin {config.command!r} (user {config.user})"
    try:
        process = await asyncio.create_subprocess_exec(
            config.command,
            *config.args,
            env=env,
            stdin=None if interactive else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            # The plugin's prompts and errors go to the person, as kubectl shows them.
            stderr=None,
        )
    except OSError as error:
        hint = f"; {config.install_hint.strip()}" if config.install_hint else ""
        raise ExecPluginError(f"{what} cannot run: {error.strerror or error}{hint}") from error
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), _TIMEOUT)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise ExecPluginError(f"{what} gave no answer in {_TIMEOUT:.0f} s") from error
    if process.returncode != 0:
        raise ExecPluginError(f"{what} failed with exit code {process.returncode}")
    credential = parse(stdout.decode(errors="replace"), config)
    if credential.expired():
        # Used as it is, every request (and every login of Kopf's) would run the plugin again.
        raise ExecPluginError(
            f"{what} handed out a credential that had expired already (expirationTimestamp"
            f" {credential.expires:%Y-%m-%dT%H:%M:%SZ}): is this machine's clock or the"
            " plugin's cache wrong?"
        )
    return credential
