"""A small asyncio client of the Kubernetes API for the local node.

The local node is infrastructure, not the operator: it talks to the API server
with its own client certificate (``system:node:<name>``) by URL path (pods of one
node by field selector, ``pods/status`` by strategic merge, bindings, leases) and
re-lists its watches as client-go's reflector does, which `mlops_operator.k8s.KubeClient`
(by kind, server-side apply) does not, so it keeps this session of its own. Its
refusals are the one `mlops_operator.k8s.ApiError`, as everywhere else.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Self

import aiohttp

from mlops_operator.k8s.errors import ApiError, error_from

__all__ = ["ApiError", "KubeApi"]

Json = dict[str, Any]


def _refusal(status: int, body: str) -> ApiError:
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = body
    return error_from(status, payload)


class KubeApi:
    """An authenticated session with one API server."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path) -> None:
        self._server = server.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(ca))
        self._ssl.load_cert_chain(str(cert), str(key))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=20)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The underlying HTTP session (only inside ``async with``)."""
        if self._session is None:
            raise RuntimeError("KubeApi used outside `async with`")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Json:
        """One API call; the decoded JSON answer, or ApiError."""
        data = json.dumps(body) if body is not None else None
        async with self.session.request(
            method,
            self._server + path,
            data=data,
            params=params,
            headers={"Content-Type": content_type, "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise _refusal(resp.status, text)
            result: Json = json.loads(text) if text else {}
            return result

    async def get(self, path: str) -> Json:
        """GET an object."""
        return await self.request("GET", path)

    async def get_or_none(self, path: str) -> Json | None:
        """GET an object, or None when it does not exist."""
        try:
            return await self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, path: str, body: Mapping[str, Any]) -> Json:
        """POST a new object to a collection."""
        return await self.request("POST", path, body)

    async def merge_patch(self, path: str, patch: Mapping[str, Any]) -> Json:
        """A JSON merge patch."""
        return await self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    async def strategic_patch(self, path: str, patch: Mapping[str, Any]) -> Json:
        """A strategic merge patch (lists such as conditions merge by key)."""
        return await self.request(
            "PATCH", path, patch, content_type="application/strategic-merge-patch+json"
        )

    async def delete(self, path: str, grace_seconds: int | None = None) -> None:
        """DELETE an object; a missing one is not an error."""
        body = {"gracePeriodSeconds": grace_seconds} if grace_seconds is not None else None
        try:
            await self.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[tuple[str, Json]]:
        """List, then stream changes: yields (event type, object) forever.

        Each list is replayed as ADDED events followed by one ``SYNC`` event
        carrying the listing (so a consumer can drop what vanished meanwhile).
        When the watch ends (timeout, or 410 Gone for an expired
        resourceVersion) it starts over with a fresh list, as client-go's
        reflector does.
        """
        while True:
            listing = await self.request("GET", path, params=params)
            for item in listing.get("items", []):
                yield "ADDED", item
            yield "SYNC", listing
            query = {
                **(params or {}),
                "watch": "1",
                "resourceVersion": listing["metadata"]["resourceVersion"],
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "300",
            }
            async with self.session.get(
                self._server + path,
                params=query,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=330),
            ) as resp:
                if resp.status >= 300:
                    raise _refusal(resp.status, await resp.text())
                async for line in resp.content:
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        break
                    if event["type"] != "BOOKMARK":
                        yield event["type"], event["object"]
