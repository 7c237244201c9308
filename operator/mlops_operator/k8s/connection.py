"""One API server and the credentials for each request to it, kept fresh.

`KubeClient` asks a `Connection` for the headers and client certificate of every request.
It is made from what the kubeconfig loader found (`from_target`), for every process alike:
the operator, the CLI and the console. A token file is re-read every minute as the kubelet
rotates it; an exec plugin runs again once its credential expires, or when the API server
refused it (401), as client-go does. Concurrent requests share one run, and so do the
clients sharing one `Connection`: the operator's handlers, its Lease renewals and Kopf, whose
login hook is handed the same credentials (`mlops_operator.handlers.lifecycle`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_operator.k8s import execcredential
from mlops_operator.k8s.kubeconfig import Impersonation, Target

__all__ = ["Authorization", "Connection"]

_TOKEN_FILE_SECONDS = 60.0
"""How long a token file's content is used before it is read again (client-go's period)."""

_REFUSED_AGAIN_SECONDS = 10.0
"""How long after a refusal made an exec plugin run, a refusal of what it gave may make it run
again. Kopf asks for credentials again at each refusal: a plugin whose fresh credentials the
API server refuses as well (an account of another cluster) would otherwise run as fast as it
answers, for as long as the operator runs, and a cloud's token service would throttle it."""


@dataclass(frozen=True)
class Authorization:
    """The credentials of one request: headers, and the TLS client certificate (PEM)."""

    headers: tuple[tuple[str, str], ...] = ()
    identity: tuple[bytes, bytes] | None = None
    expires: datetime | None = None
    """When an exec plugin's credential stops being valid (None: not known to expire)."""
    issue: int = 0
    """Which run of the exec plugin (or read of the token file) gave it: what a client says was
    refused is replaced only if it is still the current one (`Connection.authorization`)."""


@contextlib.contextmanager
def _pem_files(identity: tuple[bytes, bytes]) -> Iterator[tuple[str, str]]:
    # Python's ssl loads a certificate chain from files only; they live for a moment (0600).
    with (
        tempfile.NamedTemporaryFile(buffering=0) as cert,
        tempfile.NamedTemporaryFile(buffering=0) as key,
    ):
        cert.write(identity[0])
        key.write(identity[1])
        yield cert.name, key.name


@dataclass
class Connection:
    """Where the API server is and who to be there (build one with `from_target`)."""

    server: str
    namespace: str | None = None
    """The namespace a command acts in when none is given (the context's, the pod's)."""
    source: str = ""
    proxy_url: str | None = None
    trust_env: bool = True
    tls_server_name: str | None = None
    ca_data: bytes | None = None
    """The CA bundle (PEM) the server's certificate must chain to; None: the system's."""
    insecure: bool = False
    _static: Authorization = field(default_factory=Authorization)
    _target: Target | None = None
    _credential: execcredential.ExecCredential | None = None
    _file_token: tuple[str, float] | None = None
    _issue: int = 0
    _renewed_at: float | None = None
    """When a refusal made the plugin run for the current credential (None: it did not)."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def from_target(cls, target: Target) -> Connection:
        """A connection with what the kubeconfig loader found."""
        headers: list[tuple[str, str]] = []
        if target.token:
            headers.append(("Authorization", f"Bearer {target.token}"))
        elif target.username is not None and target.password is not None:
            basic = base64.b64encode(f"{target.username}:{target.password}".encode()).decode()
            headers.append(("Authorization", f"Basic {basic}"))
        identity = None
        if target.client_certificate is not None and target.client_key is not None:
            identity = (target.client_certificate, target.client_key)
        return cls(
            server=target.server.rstrip("/"),
            namespace=target.namespace,
            source=target.source,
            proxy_url=target.proxy_url,
            tls_server_name=target.tls_server_name,
            ca_data=target.ca_data,
            insecure=target.insecure,
            _static=Authorization(tuple(headers), identity),
            _target=target,
        )

    @property
    def impersonation(self) -> Impersonation:
        """Who the requests act as (``Impersonate-*`` headers), if not the credentials' own."""
        return self._target.impersonation if self._target is not None else Impersonation()

    @property
    def renewable(self) -> bool:
        """Whether asking again may give other credentials (a token file, an exec plugin)."""
        target = self._target
        return target is not None and (target.token_file is not None or target.exec is not None)

    def ssl_context(self, identity: tuple[bytes, bytes] | None) -> ssl.SSLContext:
        """The TLS context for `identity` (the client certificate of `authorization`)."""
        cadata = self.ca_data.decode() if self.ca_data else None
        context = ssl.create_default_context(cadata=cadata)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if identity is not None:
            with _pem_files(identity) as (cert, key):
                context.load_cert_chain(cert, key)
        return context

    async def authorization(self, *, refused: Authorization | None = None) -> Authorization:
        """The credentials of the next request.

        `refused`: credentials the API server did not accept (a 401), or that a client stopped
        using (Kopf logs in again): they are replaced by fresh ones, unless another request
        replaced them meanwhile, so a burst of 401s runs the plugin once. Fresh credentials
        refused in turn are replaced no sooner than `_REFUSED_AGAIN_SECONDS` after them.
        """
        target = self._target
        if target is None or (target.token_file is None and target.exec is None) or target.token:
            return self._with_impersonation(self._static)
        stale = refused is not None and refused.issue == self._issue
        if target.token_file is not None:
            return self._with_impersonation(self._read_token_file(target.token_file, stale))
        assert target.exec is not None
        async with self._lock:
            credential = self._credential
            # Checked again under the lock: a request that waited for it finds the new issue.
            stale = refused is not None and refused.issue == self._issue
            if credential is None or credential.expired() or stale:
                if stale and self._renewed_at is not None:
                    wait = self._renewed_at + _REFUSED_AGAIN_SECONDS - time.monotonic()
                    await asyncio.sleep(max(0.0, wait))
                credential = await execcredential.run(target.exec, target.cluster_info)
                self._credential = credential
                self._issue += 1
                self._renewed_at = time.monotonic() if stale else None
        headers: tuple[tuple[str, str], ...] = ()
        if credential.token:
            headers = (("Authorization", f"Bearer {credential.token}"),)
        identity = self._static.identity
        if credential.client_certificate is not None and credential.client_key is not None:
            identity = (credential.client_certificate, credential.client_key)
        return self._with_impersonation(
            Authorization(
                headers or self._static.headers, identity, credential.expires, self._issue
            )
        )

    def _read_token_file(self, path: Path, renew: bool) -> Authorization:
        now = time.monotonic()
        cached = self._file_token
        if cached is None or renew or now - cached[1] >= _TOKEN_FILE_SECONDS:
            try:
                cached = (path.read_text().strip(), now)
            except OSError as error:
                raise execcredential.CredentialError(
                    f"token file {path} cannot be read: {error}"
                ) from error
            self._file_token = cached
            self._issue += 1
        header = ("Authorization", f"Bearer {cached[0]}")
        return Authorization((header,), self._static.identity, issue=self._issue)

    def _with_impersonation(self, authorization: Authorization) -> Authorization:
        extra = tuple(self.impersonation.headers())
        return replace(authorization, headers=authorization.headers + extra)

    def request_options(self) -> dict[str, Any]:
        """Per-request aiohttp options: the name the server's certificate must carry."""
        return {"server_hostname": self.tls_server_name} if self.tls_server_name else {}
