"""The operator's Kubernetes client: plain REST over one aiohttp session.

Why this and not a client library: measured on the real API server
(``benchmarks/k8s_clients/bench.py``, figures in ``benchmarks/RESULTS.md``), a thin
client on aiohttp did 1.35–1.9× the reconciles per second (get the parent, apply a
child, patch the parent's status) of the official ``kubernetes`` client (sync, in a
thread, as Kopf runs sync code), ``kubernetes_asyncio`` and ``lightkube``, for 30–40 %
of their CPU, and led on each single call (server-side apply, create, get, status
patch, list) but one list run within noise. The libraries spend their time building
typed models from every response (and the sync client a thread hop per call); the
handlers already hold pydantic models of our kinds and build children as plain
dicts, so those models buy nothing. It adds no dependency: Kopf already brings
aiohttp. The credentials come from a `connection.Connection` made from what the kubeconfig
loader (`kubeconfig`) found, exec plugins and impersonation included: the operator's, the
CLI's and the console's alike, so every process reaches the API server through this client.

Writes to children go through server-side apply with the field manager
``mlops-operator`` and ``force=true``: the operator owns the fields it sets,
other managers (an HPA scaling replicas, a user's label) keep theirs, and
re-applying after a crash at any line is safe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from mlops_operator.k8s.connection import Authorization, Connection
from mlops_operator.k8s.errors import ApiError, NotFound, error_from
from mlops_operator.k8s.execcredential import CredentialError

__all__ = ["FIELD_MANAGER", "KubeClient", "ResourceType"]

FIELD_MANAGER = "mlops-operator"

_JSON = "application/json"
_APPLY = "application/apply-patch+yaml"  # JSON is YAML, so the body stays JSON
_MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the API: its group-version, plural name and scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of object `name`, or of the collection (all namespaces when None)."""
        path = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        elif self.namespaced and name:
            raise ValueError(f"{self.kind} {name!r} is namespaced: a namespace is needed")
        path += f"/{self.plural}"
        return f"{path}/{quote(name, safe='')}" if name else path


def _decoded(text: str) -> Any:
    """An answer's JSON, or its text when it is none: e.g. discovery of a group the server
    does not serve answers "404 page not found" as plain text, not as a Status."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _identity(manifest: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    try:
        meta = manifest["metadata"]
        return manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace")
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"a manifest needs apiVersion, kind and metadata.name; missing {exc}"
        ) from exc


class KubeClient:
    """Apply, create, get, patch (status), list and watch, as one `Connection` says.

    `connect` gives it a `Connection`, which keeps the credentials of each request fresh.
    Kinds are resolved through the API's discovery once per group-version and cached.
    """

    def __init__(
        self,
        *,
        field_manager: str = FIELD_MANAGER,
        page_size: int = 500,
        connections: int = 32,
        request_timeout: float = 60,
        connect_timeout: float = 30,
    ) -> None:
        self.field_manager = field_manager
        self.timeout = aiohttp.ClientTimeout(total=request_timeout, connect=connect_timeout)
        # HTTP/1.1 has one request in flight per connection; without a bound a burst opens
        # hundreds of TLS connections (a handshake and ~0.3 MiB of buffers each).
        self.connections = connections
        # Lists are read in pages, so a big namespace never arrives as one huge response.
        self.page_size = page_size
        self._server = ""
        self._session: aiohttp.ClientSession | None = None
        self._connection: Connection | None = None
        self._identity: tuple[bytes, bytes] | None = None
        self._retired: aiohttp.ClientSession | None = None
        self._connected = asyncio.Event()
        self._types: dict[tuple[str, str], ResourceType] = {}

    async def connect(self, connection: Connection) -> None:
        """Make every request through `connection` from now on (its credentials are asked for
        at once, so an exec plugin that cannot run fails here, not at the first request)."""
        authorization = await connection.authorization()
        previous = self._session
        self._connection = connection
        self._server = connection.server
        self._session = self._new_session(connection, authorization.identity)
        self._identity = authorization.identity
        self._connected.set()
        if previous is not None:
            await previous.close()

    @property
    def connection(self) -> Connection:
        """The connection given to `connect` (whose credentials other clients may share)."""
        if self._connection is None:
            raise RuntimeError("the Kubernetes client is not connected")
        return self._connection

    def _new_session(
        self, connection: Connection, identity: tuple[bytes, bytes] | None
    ) -> aiohttp.ClientSession:
        ssl_context = connection.ssl_context(identity)
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connections, ssl=ssl_context),
            headers={"User-Agent": FIELD_MANAGER},
            proxy=connection.proxy_url,
            trust_env=connection.trust_env,
            timeout=self.timeout,
        )

    async def _authorised(
        self, *, refused: Authorization | None = None
    ) -> tuple[aiohttp.ClientSession, Authorization]:
        """The session and credentials for the next request (others than `refused`); a new
        session when the client certificate changed (an exec plugin handed out another one)."""
        await self._connected.wait()
        if self._session is None or self._connection is None:
            raise RuntimeError("the Kubernetes client was closed")
        authorization = await self._connection.authorization(refused=refused)
        if authorization.identity != self._identity:
            # Requests and watches in flight keep the previous session until the next change
            # (a certificate lives minutes at least); only the one before that is closed.
            if self._retired is not None:
                await self._retired.close()
            self._retired = self._session
            self._session = self._new_session(self._connection, authorization.identity)
            self._identity = authorization.identity
        return self._session, authorization

    async def close(self) -> None:
        """Close the session (at the operator's exit)."""
        if self._retired is not None:
            await self._retired.close()
            self._retired = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._connected.clear()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = _JSON,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = [("Content-Type", content_type)] if body is not None else []
        response, text, used = await self._send(method, path, query, data, headers)
        assert self._connection is not None
        if response.status == 401 and self._connection.renewable:
            # An expired or revoked token: ask for a fresh one once, as client-go does.
            response, text, _ = await self._send(method, path, query, data, headers, used)
        payload = _decoded(text)
        if response.status >= 400:
            raise error_from(response.status, payload, response.headers.get("Retry-After"))
        if isinstance(payload, str):
            raise ApiError(response.status, "InvalidResponse", f"{path} answered {text[:200]!r}")
        return payload

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        data: str | None,
        headers: list[tuple[str, str]],
        refused: Authorization | None = None,
    ) -> tuple[aiohttp.ClientResponse, str, Authorization]:
        """The response and its text, and the credentials it was sent with."""
        session, authorization = await self._authorised(refused=refused)
        assert self._connection is not None
        url = self._server + path + (f"?{urlencode(query)}" if query else "")
        async with session.request(
            method,
            url,
            data=data,
            headers=[*headers, *authorization.headers],
            **self._connection.request_options(),
        ) as response:
            return response, await response.text(), authorization

    async def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """Where `kind` of `api_version` lives, from the API's discovery (cached)."""
        key = (api_version, kind)
        if key not in self._types:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = await self._request("GET", prefix)
            for entry in listing.get("resources", []):
                if "/" not in entry["name"]:  # skip subresources such as pods/status
                    found = ResourceType(
                        api_version, entry["kind"], entry["name"], entry["namespaced"]
                    )
                    self._types[(api_version, found.kind)] = found
            if key not in self._types:
                raise ApiError(404, "NotFound", f"the API serves no kind {kind} in {api_version}")
        return self._types[key]

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply `manifest` as this operator's field manager; the object as stored."""
        api_version, kind, name, namespace = _identity(manifest)
        rtype = await self.resource_type(api_version, kind)
        query = {"fieldManager": self.field_manager, "force": "true"}
        path = rtype.path(namespace, name)
        result: dict[str, Any] = await self._request(
            "PATCH", path, query=query, body=manifest, content_type=_APPLY
        )
        return result

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create `manifest` (`errors.Conflict` if it exists); the object as stored."""
        api_version, kind, _, namespace = _identity(manifest)
        rtype = await self.resource_type(api_version, kind)
        query = {"fieldManager": self.field_manager}
        result: dict[str, Any] = await self._request(
            "POST", rtype.path(namespace), query=query, body=manifest
        )
        return result

    async def review(self, api_version: str, kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Ask the API server a question such as a ``SelfSubjectAccessReview``; its answer.

        A review is never stored, so it has no name and no field manager (the API
        server refuses both on one).
        """
        rtype = await self.resource_type(api_version, kind)
        body = {"apiVersion": api_version, "kind": kind, "spec": dict(spec)}
        result: dict[str, Any] = await self._request("POST", rtype.path(), body=body)
        return result

    async def whoami(self) -> str:
        """The user name the API server authenticates these credentials as (a SelfSubjectReview,
        which every authenticated identity may ask; `errors.Unauthorized` if none)."""
        # A review is never stored; `create` wants a name on every manifest all the same.
        review = await self.create(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "SelfSubjectReview",
                "metadata": {"name": "whoami"},
            }
        )
        return str(review.get("status", {}).get("userInfo", {}).get("username") or "unknown")

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        """The object (`errors.NotFound` if there is none)."""
        rtype = await self.resource_type(api_version, kind)
        result: dict[str, Any] = await self._request("GET", rtype.path(namespace, name))
        return result

    async def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        status: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Merge `status` into the object's status subresource; the object as stored."""
        rtype = await self.resource_type(api_version, kind)
        path = rtype.path(namespace, name) + "/status"
        result: dict[str, Any] = await self._request(
            "PATCH", path, body={"status": status}, content_type=_MERGE
        )
        return result

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """JSON-merge-patch the object (or its `subresource`, e.g. ``status``); the object as stored.

        A ``metadata.resourceVersion`` in `patch` makes it conditional: `errors.Conflict`
        if the object changed since that version was read (optimistic concurrency).
        """
        rtype = await self.resource_type(api_version, kind)
        path = rtype.path(namespace, name) + (f"/{subresource}" if subresource else "")
        result: dict[str, Any] = await self._request(
            "PATCH",
            path,
            query={"fieldManager": self.field_manager},
            body=patch,
            content_type=_MERGE,
        )
        return result

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Delete the object (children by `propagation`); False when it did not exist.

        With `uid`, only the object of that uid: `errors.Conflict` when the name now
        belongs to another one (deleted and created again since it was read).
        """
        rtype = await self.resource_type(api_version, kind)
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self._request("DELETE", rtype.path(namespace, name), body=body)
        except NotFound:
            return False
        return True

    async def snapshot(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """`list`, and the resourceVersion of the collection to `watch` from."""
        rtype = await self.resource_type(api_version, kind)
        query = {"limit": str(self.page_size)}
        if labels:
            query["labelSelector"] = ",".join(f"{k}={v}" for k, v in labels.items())
        items: list[dict[str, Any]] = []
        while True:
            page = await self._request("GET", rtype.path(namespace), query=query)
            items.extend(page.get("items", []))
            metadata = page.get("metadata", {})
            token = metadata.get("continue")
            if not token:
                return items, str(metadata.get("resourceVersion", ""))
            query["continue"] = token

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """The objects of `kind` (in `namespace`, or everywhere when None) matching `labels`."""
        items, _ = await self.snapshot(api_version, kind, namespace, labels=labels)
        return items

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """The changes of `kind` after `resource_version`, as the API server's watch events.

        Each event is ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": …}``;
        the iteration ends when the server closes the watch (after `timeout_seconds`).
        An ``ERROR`` event carrying a 410 Status means `resource_version` is too old:
        list again. Bookmarks are asked for, so a quiet collection still moves the
        version on and a re-opened watch rarely needs that.
        """
        rtype = await self.resource_type(api_version, kind)
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        url = self._server + rtype.path(namespace) + f"?{urlencode(query)}"
        # The session's total timeout is for requests; a watch lasts as long as the server
        # keeps it, and is declared dead only when it stays silent past the bookmarks.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        session, authorization = await self._authorised()
        assert self._connection is not None
        async with session.get(
            url,
            timeout=timeout,
            headers=list(authorization.headers),
            **self._connection.request_options(),
        ) as response:
            if response.status >= 400:
                payload = _decoded(await response.text())
                raise error_from(response.status, payload, response.headers.get("Retry-After"))
            pending = b""
            # One event per line; lines are split by hand because an object may be larger
            # than the stream reader's line limit.
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        event: dict[str, Any] = json.loads(line)
                        yield event

    async def readiness_problem(self, wait_seconds: float = 5.0) -> str | None:
        """None when the API server answers ``GET /readyz`` with 200 within `wait_seconds`, else why not.

        ``/readyz`` fails while the API server cannot reach etcd too, so this covers a lost
        store as well as a lost server. Every authenticated identity may read it (the
        built-in ``system:public-info-viewer`` role), so no RBAC rule is needed.
        """
        if self._session is None or not self._connected.is_set():
            return "not logged in to the API server yet"
        url = self._server + "/readyz"
        try:
            session, authorization = await self._authorised()
            async with session.get(
                url,
                timeout=aiohttp.ClientTimeout(total=wait_seconds),
                headers=list(authorization.headers),
            ) as response:
                if response.status == 200:
                    return None
                detail = " ".join((await response.text()).split())[-300:]
                return f"GET {url} answered {response.status}: {detail}"
        except (aiohttp.ClientError, TimeoutError, CredentialError) as error:
            return f"GET {url} failed: {error!r}"
