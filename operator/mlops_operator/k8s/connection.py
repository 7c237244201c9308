"""One API server and the credentials for each request to it, kept fresh.

`KubeClient` asks a `Connection` for the headers and client certificate of every request.
Two kinds of credentials feed it:

- the operator's: the `kopf.ConnectionInfo` Kopf's login resolved (`from_kopf`); Kopf logs
  in again when they stop working, and hands the new ones over;
- everyone else's (the CLI, the console run by a person): a `kubeconfig.Target`
  (`from_target`), whose token file is re-read every minute as the kubelet rotates it, and
  whose exec plugin runs again once its credential expires or the API server answers 401,
  as client-go does. Concurrent requests share one run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_operator.k8s import execcredential
from mlops_operator.k8s.kubeconfig import Target

if TYPE_CHECKING:
    import kopf

__all__ = ["Authorization", "Connection"]

_TOKEN_FILE_SECONDS = 60.0
"""How long a token file's content is used before it is read again (client-go's period)."""


@dataclass(frozen=True)
class Authorization:
    """The credentials of one request: headers, and the TLS client certificate (PEM)."""

    headers: tuple[tuple[str, str], ...] = ()
    identity: tuple[bytes, bytes] | None = None


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
    """Where the API server is and who to be there (build one with `from_target` or `from_kopf`)."""

    server: str
    namespace: str | None = None
    """The namespace a command acts in when none is given (the context's, the pod's)."""
    source: str = ""
    proxy_url: str | None = None
    trust_env: bool = True
    tls_server_name: str | None = None
    _ca: bytes | None = None
    _insecure: bool = False
    _fixed_ssl: ssl.SSLContext | None = None
    _static: Authorization = field(default_factory=Authorization)
    _target: Target | None = None
    _credential: execcredential.ExecCredential | None = None
    _file_token: tuple[str, float] | None = None
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
            _ca=target.ca_data,
            _insecure=target.insecure,
            _static=Authorization(tuple(headers), identity),
            _target=target,
        )

    @classmethod
    def from_kopf(cls, info: kopf.ConnectionInfo) -> Connection:
        """A connection with the credentials Kopf's login resolved (the operator's)."""
        return cls(
            server=info.server.rstrip("/"),
            namespace=info.default_namespace,
            source="Kopf's login",
            proxy_url=info.proxy_url,
            trust_env=info.trust_env,
            _fixed_ssl=info.as_ssl_context(),
            _static=Authorization(tuple(info.as_http_headers().items())),
        )

    @property
    def renewable(self) -> bool:
        """Whether asking again may give other credentials (a token file, an exec plugin)."""
        target = self._target
        return target is not None and (target.token_file is not None or target.exec is not None)

    def ssl_context(self, identity: tuple[bytes, bytes] | None) -> ssl.SSLContext:
        """The TLS context for `identity` (the client certificate of `authorization`)."""
        if self._fixed_ssl is not None:
            return self._fixed_ssl
        cadata = self._ca.decode() if self._ca else None
        context = ssl.create_default_context(cadata=cadata)
        if self._insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if identity is not None:
            with _pem_files(identity) as (cert, key):
                context.load_cert_chain(cert, key)
        return context

    async def authorization(self, *, renew: bool = False) -> Authorization:
        """The credentials of the next request; with `renew`, fresh ones (after a 401)."""
        target = self._target
        if target is None or (target.token_file is None and target.exec is None) or target.token:
            return self._with_impersonation(self._static)
        if target.token_file is not None:
            return self._with_impersonation(self._read_token_file(target.token_file, renew))
        assert target.exec is not None
        async with self._lock:
            credential = self._credential
            if credential is None or credential.expired() or renew:
                credential = await execcredential.run(target.exec, target.cluster_info)
                self._credential = credential
        headers: tuple[tuple[str, str], ...] = ()
        if credential.token:
            headers = (("Authorization", f"Bearer {credential.token}"),)
        identity = self._static.identity
        if credential.client_certificate is not None and credential.client_key is not None:
            identity = (credential.client_certificate, credential.client_key)
        return self._with_impersonation(Authorization(headers or self._static.headers, identity))

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
        header = ("Authorization", f"Bearer {cached[0]}")
        return Authorization((header,), self._static.identity)

    def _with_impersonation(self, authorization: Authorization) -> Authorization:
        if self._target is None:
            return authorization
        extra = tuple(self._target.impersonation.headers())
        return Authorization(authorization.headers + extra, authorization.identity)

    def request_options(self) -> dict[str, Any]:
        """Per-request aiohttp options: the name the server's certificate must carry."""
        return {"server_hostname": self.tls_server_name} if self.tls_server_name else {}
