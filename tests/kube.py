"""Test helpers that talk to the real API server.

Changes go through the cluster's own kubectl, as a user makes them. Reads (`get_json`,
`exists`) go straight to the API server over one kept-alive TLS connection per thread:
the suite polls thousands of times, and a kubectl process per poll (a Go binary's start,
a TLS handshake, the API server's authentication of a new connection) was a fifth of the
CPU of a parallel run on two cores. The answer is shaped as ``kubectl get -o json`` shapes
it; arguments the reader does not understand, and credentials it cannot use (an exec
plugin, a token file), go to kubectl instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from mlops_operator.api import KINDS
from mlops_operator.api.metadata import FINALIZER
from mlops_operator.k8s import Connection
from mlops_operator.k8s.kubeconfig import Overrides, load
from mlops_operator.localcluster.binaries import KUBERNETES

T = TypeVar("T")

KUBECTL = KUBERNETES.path("kubectl")

GO_SHORT_LIVED = {"GOGC": "off", "GOMEMLIMIT": "256MiB"}
"""The environment of a Go program the suite runs for a moment (kubectl, helm): its garbage
collector was a quarter of kubectl's CPU (73 ms a call, 55 without), over 1,500 calls a
run. Collection starts only if the heap nears the limit (a long `kubectl wait`)."""


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the cluster's kubectl; raise with its stderr when `check` and it fails."""
    proc = subprocess.run(
        [str(KUBECTL), f"--kubeconfig={kubeconfig}", *args],
        env={**os.environ, **GO_SHORT_LIVED},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


class _Unsupported(Exception):
    """What the reader leaves to kubectl."""


@dataclass(frozen=True)
class _Resource:
    path: str  # /api/v1 or /apis/<group>/<version>
    plural: str
    namespaced: bool
    kind: str
    api_version: str


@dataclass(frozen=True)
class _Query:
    resource: _Resource
    names: tuple[str, ...]
    single: bool  # one object asked for by name: kubectl prints it, not a List
    namespace: str | None  # None: every namespace (-A) or a cluster-scoped resource
    params: dict[str, str]
    managed_fields: bool  # --show-managed-fields


class _Reader:
    """GETs with one kubeconfig's credentials; a kept-alive connection per thread."""

    def __init__(self, kubeconfig: Path) -> None:
        connection = Connection.from_target(load(Overrides(kubeconfig=kubeconfig)))
        if connection.renewable or connection.proxy_url or connection.tls_server_name:
            raise _Unsupported(f"{kubeconfig}: credentials or transport kubectl handles")
        # Static credentials: no plugin runs, the coroutine returns at once. Run on a thread
        # of its own so that a test already inside an event loop can read too.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            authorization = pool.submit(asyncio.run, connection.authorization()).result()
        self._ssl = connection.ssl_context(authorization.identity)
        self._headers = {"Accept": "application/json", **dict(authorization.headers)}
        server = urlsplit(connection.server)
        if server.scheme != "https" or server.hostname is None or server.path not in ("", "/"):
            raise _Unsupported(f"{kubeconfig}: server {connection.server}")
        self._host, self._port = server.hostname, server.port or 443
        self.namespace = connection.namespace or "default"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._resources: dict[str, _Resource] = {}
        self._stale_after = 0.0

    def _connection(self, fresh: bool) -> http.client.HTTPSConnection:
        connection: http.client.HTTPSConnection | None = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPSConnection(
                self._host, self._port, context=self._ssl, timeout=60
            )
            self._local.connection = connection
        return connection

    def get(self, path: str) -> tuple[int, Any]:
        """Status and parsed body of GET `path`; a connection the server closed is reopened."""
        for attempt in (0, 1):
            connection = self._connection(fresh=attempt == 1)
            try:
                connection.request("GET", path, headers=self._headers)
                response = connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError) as error:
                connection.close()
                self._local.connection = None
                if attempt == 1:
                    raise AssertionError(f"Unable to connect to the server: {error}") from error
                continue
            try:
                return response.status, json.loads(body)
            except ValueError:
                return response.status, body.decode(errors="replace")
        raise AssertionError("unreachable")

    def _discover(self) -> dict[str, _Resource]:
        # Core first, then the groups in the API server's order: kubectl's priority for a
        # name two groups share (``events``).
        versions = ["/api/v1"]
        status, groups = self.get("/apis")
        if status != 200:
            raise _Unsupported(f"discovery answered {status}")
        versions += [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups["groups"]]
        found: dict[str, _Resource] = {}
        for path in versions:
            status, listing = self.get(path)
            if status != 200:
                continue  # an aggregated API that is not serving: kubectl skips it too
            group = listing["groupVersion"].rpartition("/")[0]
            for entry in listing["resources"]:
                if "/" in entry["name"] or "get" not in entry.get("verbs", []):
                    continue
                resource = _Resource(
                    path, entry["name"], entry["namespaced"], entry["kind"], listing["groupVersion"]
                )
                aliases = {entry["name"], entry.get("singularName") or "", entry["kind"].lower()}
                aliases |= set(entry.get("shortNames") or [])
                if group:
                    aliases |= {f"{a}.{group}" for a in (entry["name"], entry["kind"].lower())}
                for alias in aliases - {""}:
                    found.setdefault(alias, resource)
        return found

    def resource(self, name: str) -> _Resource:
        """The resource kubectl would take `name` for (discovery again for a new CRD)."""
        with self._lock:
            # Not found: discover again (a CRD installed meanwhile), at most once a second.
            if name.lower() not in self._resources and time.monotonic() > self._stale_after:
                self._resources = self._discover()
                self._stale_after = time.monotonic() + 1
            resource = self._resources.get(name.lower())
        if resource is None:
            raise _Unsupported(f"resource {name!r}")
        return resource

    def query(self, args: tuple[str, ...]) -> _Query:
        """What ``kubectl get <args>`` asks for; _Unsupported for any other flag."""
        namespace: str | None = None
        every = managed_fields = False
        params: dict[str, str] = {}
        words: list[str] = []
        flags = {"-n": "namespace", "--namespace": "namespace", "-l": "labelSelector",
                 "--selector": "labelSelector", "--field-selector": "fieldSelector"}  # fmt: skip
        rest = iter(args)
        for arg in rest:
            flag, equals, value = arg.partition("=")
            if arg in ("-A", "--all-namespaces"):
                every = True
            elif arg == "--show-managed-fields":
                managed_fields = True
            elif flag in flags:
                value = value if equals else next(rest, "")
                if flags[flag] == "namespace":
                    namespace = value
                else:
                    params[flags[flag]] = value
            elif arg.startswith("-"):
                raise _Unsupported(arg)
            else:
                words.append(arg)
        if not words or any("," in w for w in words):
            raise _Unsupported(" ".join(words))
        if all("/" in w for w in words):
            pairs = [w.split("/", 1) for w in words]
            if len({kind for kind, _ in pairs}) != 1:
                raise _Unsupported(" ".join(words))
            kind, names, single = pairs[0][0], tuple(n for _, n in pairs), len(pairs) == 1
        elif any("/" in w for w in words):
            raise _Unsupported(" ".join(words))
        else:
            kind, names, single = words[0], tuple(words[1:]), len(words) == 2
        if names and (every or params):
            raise _Unsupported("names with a selector or -A")
        resource = self.resource(kind)
        namespace = None if every or not resource.namespaced else namespace or self.namespace
        return _Query(resource, names, single, namespace, params, managed_fields)


def _url(query: _Query, name: str | None = None) -> str:
    resource = query.resource
    where = f"/namespaces/{query.namespace}" if query.namespace else ""
    path = f"{resource.path}{where}/{resource.plural}" + (f"/{name}" if name else "")
    return path + (f"?{urlencode(query.params)}" if query.params else "")


def _refusal(query: _Query, status: int, body: Any) -> str:
    if isinstance(body, dict) and body.get("kind") == "Status":
        return f"Error from server ({body.get('reason') or status}): {body.get('message', '')}"
    return f"the server answered {status} for {query.resource.plural}: {body}"


_READERS: dict[tuple[Path, int, int], _Reader | None] = {}
_READERS_LOCK = threading.Lock()


def _reader(kubeconfig: Path) -> _Reader | None:
    """The reader for `kubeconfig` as its file is now (None: kubectl's to read)."""
    try:
        stat = Path(kubeconfig).stat()
        key = (Path(kubeconfig), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None
    with _READERS_LOCK:
        if key not in _READERS:
            try:
                _READERS[key] = _Reader(key[0])
            except (_Unsupported, ValueError, OSError):
                _READERS[key] = None
        return _READERS[key]


def _read(kubeconfig: Path, args: tuple[str, ...]) -> Iterator[tuple[int, Any, _Query]]:
    reader = _reader(kubeconfig)
    if reader is None:
        raise _Unsupported(str(kubeconfig))
    query = reader.query(args)
    for name in query.names or (None,):
        status, body = reader.get(_url(query, name))
        yield status, body, query


def _shown(query: _Query, item: dict[str, Any]) -> dict[str, Any]:
    """`item` as kubectl prints it: with its kind (a list's items carry none in the API's
    answer), without managedFields unless asked for them."""
    metadata = item.get("metadata") or {}
    if not query.managed_fields:
        metadata = {k: v for k, v in metadata.items() if k != "managedFields"}
    resource = query.resource
    return {"apiVersion": resource.api_version, "kind": resource.kind, **item, "metadata": metadata}


def get_json(kubeconfig: Path, *args: str) -> Any:
    """``kubectl get <args> -o json``, parsed: what the API server answers, shaped as
    kubectl shapes it (an object asked for by name; else a List); raises as kubectl
    fails (a refusal, an object not found)."""
    try:
        items: list[dict[str, Any]] = []
        single: Any = None
        for status, body, query in _read(kubeconfig, args):
            if status != 200:
                raise AssertionError(f"kubectl get {' '.join(args)} failed: "
                                     f"{_refusal(query, status, body)}")  # fmt: skip
            if query.names:
                items.append(_shown(query, body))
                single = items[0] if query.single else None
            else:
                items += [_shown(query, i) for i in body.get("items") or []]
    except _Unsupported:
        return json.loads(kubectl(kubeconfig, "get", *args, "-o", "json").stdout)
    if single is not None:
        return single
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def find_json(kubeconfig: Path, *args: str) -> Any | None:
    """`get_json`, or None where kubectl get fails (not there yet, refused, unreachable)."""
    try:
        return get_json(kubeconfig, *args)
    except AssertionError:
        return None


def exists(kubeconfig: Path, *args: str) -> bool:
    """Whether ``kubectl get <args>`` succeeds: every object named is there and readable."""
    try:
        return all(status == 200 for status, _, _ in _read(kubeconfig, args))
    except _Unsupported:
        return kubectl(kubeconfig, "get", *args, check=False).returncode == 0
    except AssertionError:  # the server unreachable: kubectl fails too
        return False


def gone(kubeconfig: Path, *args: str) -> bool:
    """Whether every object ``kubectl get <args>`` names is NotFound: a refusal, an error or
    an API server away for a moment is not "gone"."""
    try:
        answers = [(status, query) for status, _, query in _read(kubeconfig, args)]
    except _Unsupported:
        refused = kubectl(kubeconfig, "get", *args, check=False)
        return refused.returncode != 0 and "(NotFound)" in refused.stderr
    except AssertionError:
        return False
    assert all(query.names for _, query in answers), f"gone() needs names: {args}"
    return all(status == 404 for status, _ in answers)


def _with_finalizer(kubeconfig: Path, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """The namespace's mlops.dev objects that carry the operator's finalizer (none while the
    CRDs are not installed: this asks the reader only, never kubectl)."""
    found = []
    for kind in KINDS:
        try:
            answers = list(_read(kubeconfig, (kind.crd.name, "-n", namespace)))
        except (_Unsupported, AssertionError):
            continue  # no such CRD yet, or the API server away: nothing to release here
        for status, body, _ in answers:
            for item in body.get("items", []) if status == 200 else []:
                if FINALIZER in (item["metadata"].get("finalizers") or []):
                    found.append((kind.crd.name, item))
    return found


def delete_namespace(kubeconfig: Path, name: str) -> None:
    """Delete namespace `name` without waiting for it to go, first letting go of what no
    operator will: the operator's finalizer on objects whose operator the test stopped,
    killed or uninstalled. Left, each such object holds its namespace Terminating for good,
    and the namespace controller's retries on a dozen of those cost the API server a tenth
    of a CPU for the rest of the run.

    The objects are deleted first: an operator still running (a pod `helm uninstall` did
    not wait for) puts its finalizer back on a live object, never on one being deleted. The
    finalizer goes by a JSON patch that holds only at the resourceVersion read, so nothing
    another writer changed meanwhile is overwritten (a conflict leaves that object as is)."""
    held = _with_finalizer(kubeconfig, name)
    if held:
        kinds = ",".join(sorted({resource for resource, _ in held}))
        kubectl(kubeconfig, "-n", name, "delete", kinds, "--all", "--wait=false", check=False)
    for resource, item in _with_finalizer(kubeconfig, name):
        metadata = item["metadata"]
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": metadata["resourceVersion"]},
            {"op": "remove", "path": f"/metadata/finalizers/{metadata['finalizers'].index(FINALIZER)}"},
        ]  # fmt: skip
        kubectl(kubeconfig, "-n", name, "patch", resource, metadata["name"], "--type=json",
                "-p", json.dumps(patch), check=False)  # fmt: skip
    kubectl(kubeconfig, "delete", "namespace", name, "--wait=false", check=False)


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def wait_established(kubeconfig: Path, *names: str, timeout: float = 60) -> None:
    """Wait until every CRD in `names` (``crd/<name>`` or ``<name>``) is Established.

    Polled, not ``kubectl wait``: kubectl fails at once ("accessor error: <nil>") while a
    new CRD has no conditions yet, a moment that lasts longer on a busy API server.
    """
    wanted = [name.removeprefix("crd/") for name in names]

    def ready() -> bool:
        found = get_json(kubeconfig, "crd", *wanted)
        crds = found["items"] if found.get("kind") == "List" else [found]
        return len(crds) == len(wanted) and all(_established(c) for c in crds)

    wait_for(ready, timeout=timeout, what=f"CRDs {', '.join(wanted)} to be Established")


def wait_for(
    probe: Callable[[], T | None], timeout: float = 120, interval: float = 0.25, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what or probe}; last: {last!r}"
    )
