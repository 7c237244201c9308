"""Which Kubernetes client should the operator's handlers use? Measure them on the real API server.

The handlers' calls are: server-side apply of a child (field manager ``mlops-operator``),
create, get, patch of a custom resource's status, and list by label. Each candidate
does each call ``--count`` times with ``--concurrency`` calls in flight (Kopf runs
handlers of different objects concurrently), then ``--count`` whole reconciles
(get the parent, apply a child, patch the parent's status). Printed per client and
call: calls per second, and latency p50 / p95 / p99 in milliseconds.

Candidates:
  kubernetes        the official client (sync, urllib3), called in a thread as Kopf runs sync code
  kubernetes_asyncio its asyncio port (aiohttp)
  lightkube         a typed async client (httpx)
  aiohttp           a thin client: one aiohttp session with the kubeconfig loader's credentials

Usage (against a cluster you may write to; it creates and then deletes a namespace and a CRD):
  eval "$(.venv/bin/mlops cluster env)"   # or any KUBECONFIG
  .venv/bin/python benchmarks/k8s_clients/bench.py [--count 200] [--concurrency 8] [--rounds 2]
Needs `pip install kubernetes kubernetes_asyncio lightkube` besides the operator extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import kubernetes
import kubernetes_asyncio
import lightkube
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import ConfigMap

from mlops_operator.k8s.connection import Authorization, Connection
from mlops_operator.k8s.kubeconfig import Overrides, load

NAMESPACE = "mlops-bench-k8s-clients"
GROUP, VERSION, PLURAL, KIND = "bench.mlops.dev", "v1", "benchobjects", "BenchObject"
MANAGER = "mlops-operator"
PARENTS = 20  # objects whose status is patched; children are spread over them
# A child about the size of the Jobs and Deployments the operator will apply.
PAYLOAD = {"manifest": "x" * 1500}

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "benchobject", "kind": KIND},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def child(name: str, owner: str) -> dict[str, Any]:
    """A ConfigMap standing in for a child object, labelled with its `owner`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": MANAGER, "owner": owner},
        },
        "data": PAYLOAD,
    }


def status(i: int) -> dict[str, Any]:
    """A status patch like the handlers' (observedGeneration and a condition)."""
    condition = {"type": "Ready", "status": "True", "reason": "Bench", "message": f"round {i}"}
    return {"status": {"observedGeneration": i, "conditions": [condition]}}


class Client(Protocol):
    async def apply(self, name: str, owner: str) -> None: ...
    async def create(self, name: str, owner: str) -> None: ...
    async def get(self, name: str) -> None: ...
    async def get_parent(self, parent: int) -> None: ...
    async def patch_status(self, parent: int, i: int) -> None: ...
    async def list_children(self, owner: str) -> None: ...
    async def close(self) -> None: ...


class SyncKubernetes:
    """The official client; every call goes through `asyncio.to_thread`, as Kopf runs sync code."""

    def __init__(self, kubeconfig: str) -> None:
        api = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)

    async def apply(self, name: str, owner: str) -> None:
        await asyncio.to_thread(
            self.core.patch_namespaced_config_map,
            name,
            NAMESPACE,
            child(name, owner),
            field_manager=MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def create(self, name: str, owner: str) -> None:
        await asyncio.to_thread(
            self.core.create_namespaced_config_map, NAMESPACE, child(name, owner)
        )

    async def get(self, name: str) -> None:
        await asyncio.to_thread(self.core.read_namespaced_config_map, name, NAMESPACE)

    async def get_parent(self, parent: int) -> None:
        await asyncio.to_thread(
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            f"p{parent}",
        )

    async def patch_status(self, parent: int, i: int) -> None:
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            f"p{parent}",
            status(i),
            _content_type="application/merge-patch+json",
        )

    async def list_children(self, owner: str) -> None:
        await asyncio.to_thread(
            self.core.list_namespaced_config_map, NAMESPACE, label_selector=f"owner={owner}"
        )

    async def close(self) -> None:
        self.core.api_client.close()


class AsyncKubernetes:
    """kubernetes_asyncio, the generated client on aiohttp."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.core = kubernetes_asyncio.client.CoreV1Api(api)
        self.custom = kubernetes_asyncio.client.CustomObjectsApi(api)

    @classmethod
    async def connect(cls, kubeconfig: str) -> AsyncKubernetes:
        configuration = kubernetes_asyncio.client.Configuration()
        await kubernetes_asyncio.config.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration
        )
        return cls(kubernetes_asyncio.client.ApiClient(configuration))

    async def apply(self, name: str, owner: str) -> None:
        await self.core.patch_namespaced_config_map(
            name,
            NAMESPACE,
            child(name, owner),
            field_manager=MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def create(self, name: str, owner: str) -> None:
        await self.core.create_namespaced_config_map(NAMESPACE, child(name, owner))

    async def get(self, name: str) -> None:
        await self.core.read_namespaced_config_map(name, NAMESPACE)

    async def get_parent(self, parent: int) -> None:
        await self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, f"p{parent}"
        )

    async def patch_status(self, parent: int, i: int) -> None:
        await self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            f"p{parent}",
            status(i),
            _content_type="application/merge-patch+json",
        )

    async def list_children(self, owner: str) -> None:
        await self.core.list_namespaced_config_map(NAMESPACE, label_selector=f"owner={owner}")

    async def close(self) -> None:
        await self.api.close()


BenchObject = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


class Lightkube:
    """lightkube's AsyncClient on httpx."""

    def __init__(self, kubeconfig: str) -> None:
        config = lightkube.KubeConfig.from_file(kubeconfig)
        self.client = lightkube.AsyncClient(config=config, field_manager=MANAGER)

    async def apply(self, name: str, owner: str) -> None:
        await self.client.apply(ConfigMap.from_dict(child(name, owner)), force=True)

    async def create(self, name: str, owner: str) -> None:
        await self.client.create(ConfigMap.from_dict(child(name, owner)))

    async def get(self, name: str) -> None:
        await self.client.get(ConfigMap, name, namespace=NAMESPACE)

    async def get_parent(self, parent: int) -> None:
        await self.client.get(BenchObject, f"p{parent}", namespace=NAMESPACE)

    async def patch_status(self, parent: int, i: int) -> None:
        await self.client.patch(
            BenchObject.Status,
            f"p{parent}",
            status(i),
            namespace=NAMESPACE,
            patch_type=lightkube.types.PatchType.MERGE,
        )

    async def list_children(self, owner: str) -> None:
        async for _ in self.client.list(ConfigMap, namespace=NAMESPACE, labels={"owner": owner}):
            pass

    async def close(self) -> None:
        await self.client.close()


class ThinAiohttp:
    """Plain REST over one aiohttp session with the credentials the kubeconfig loader found."""

    def __init__(self, connection: Connection, authorization: Authorization) -> None:
        self.server = connection.server
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, ssl=connection.ssl_context(authorization.identity)
            ),
            headers=dict(authorization.headers),
            raise_for_status=True,
        )

    async def _call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else None
        async with self.session.request(
            method, self.server + path, data=data, headers=headers
        ) as response:
            return await response.json()

    async def apply(self, name: str, owner: str) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}?fieldManager={MANAGER}&force=true"
        await self._call("PATCH", path, child(name, owner), "application/apply-patch+yaml")

    async def create(self, name: str, owner: str) -> None:
        await self._call("POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", child(name, owner))

    async def get(self, name: str) -> None:
        await self._call("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}")

    async def get_parent(self, parent: int) -> None:
        await self._call(
            "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/p{parent}"
        )

    async def patch_status(self, parent: int, i: int) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/p{parent}/status"
        await self._call("PATCH", path, status(i), "application/merge-patch+json")

    async def list_children(self, owner: str) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps?labelSelector=owner%3D{owner}"
        await self._call("GET", path)

    async def close(self) -> None:
        await self.session.close()


async def make_client(name: str, kubeconfig: str) -> Client:
    """Connect the candidate `name`."""
    if name == "kubernetes":
        return SyncKubernetes(kubeconfig)
    if name == "kubernetes_asyncio":
        return await AsyncKubernetes.connect(kubeconfig)
    if name == "lightkube":
        return Lightkube(kubeconfig)
    connection = Connection.from_target(load(Overrides(kubeconfig=Path(kubeconfig))))
    return ThinAiohttp(connection, await connection.authorization())


CANDIDATES = ("kubernetes", "kubernetes_asyncio", "lightkube", "aiohttp")
CALLS = ("create", "apply", "get", "patch_status", "list", "reconcile")


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU (all threads): the client's own cost


async def drive(call: Callable[[int], Awaitable[None]], count: int, concurrency: int) -> Sample:
    """Run `call(0..count-1)` with at most `concurrency` in flight; time each and the whole."""
    sample = Sample()
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            started = time.perf_counter()
            await call(i)
            sample.latencies.append(time.perf_counter() - started)

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.seconds = time.perf_counter() - started
    sample.cpu_seconds = time.process_time() - cpu_started
    return sample


def calls_of(client: Client, tag: str) -> dict[str, Callable[[int], Awaitable[None]]]:
    """The measured calls; `tag` keeps names unique across clients and rounds."""

    async def reconcile(i: int) -> None:
        await client.get_parent(i % PARENTS)
        await client.apply(f"{tag}-child-{i}", f"{tag}-p{i % PARENTS}")
        await client.patch_status(i % PARENTS, i)

    calls: dict[str, Callable[[int], Awaitable[None]]] = {
        "create": lambda i: client.create(f"{tag}-created-{i}", f"{tag}-p{i % PARENTS}"),
        "apply": lambda i: client.apply(f"{tag}-applied-{i}", f"{tag}-p{i % PARENTS}"),
        "get": lambda i: client.get(f"{tag}-created-{i}"),
        "patch_status": lambda i: client.patch_status(i % PARENTS, i),
        "list": lambda i: client.list_children(f"{tag}-p{i % PARENTS}"),
        "reconcile": reconcile,
    }
    return {call: calls[call] for call in CALLS}


def setup(kubeconfig: str) -> None:
    """Create the namespace, the CRD and the parent objects (with the official client)."""
    api = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    kubernetes.utils.create_from_dict(api, CRD)
    extensions = kubernetes.client.ApiextensionsV1Api(api)
    deadline = time.monotonic() + 60
    while not any(
        c.type == "Established" and c.status == "True"
        for c in extensions.read_custom_resource_definition(
            CRD["metadata"]["name"]
        ).status.conditions
        or []
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark CRD never became Established")
        time.sleep(0.2)
    kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
    custom = kubernetes.client.CustomObjectsApi(api)
    for p in range(PARENTS):
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": f"p{p}"}}
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)


def teardown(kubeconfig: str) -> None:
    """Delete what `setup` created and wait until it is gone (missing objects are fine)."""
    api = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    extensions = kubernetes.client.ApiextensionsV1Api(api)
    crd = CRD["metadata"]["name"]
    for delete, read in (
        (lambda: core.delete_namespace(NAMESPACE), lambda: core.read_namespace(NAMESPACE)),
        (
            lambda: extensions.delete_custom_resource_definition(crd),
            lambda: extensions.read_custom_resource_definition(crd),
        ),
    ):
        deadline = time.monotonic() + 120
        try:
            delete()
            while time.monotonic() < deadline:
                read()
                time.sleep(0.5)
            raise SystemExit(f"{NAMESPACE} or {crd} still exists after 120 s")
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise


def summary(name: str, call: str, samples: list[Sample]) -> str:
    """One table row: calls/s over all rounds, latency percentiles and client CPU per call in ms."""
    latencies = sorted(x for s in samples for x in s.latencies)
    rate = len(latencies) / sum(s.seconds for s in samples)
    cpu = sum(s.cpu_seconds for s in samples) / len(latencies)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"{name:<19}{call:<13}{rate:>9.0f}{q[49] * 1e3:>9.1f}{q[94] * 1e3:>9.1f}"
        f"{q[98] * 1e3:>9.1f}{cpu * 1e3:>9.2f}"
    )


async def bench(args: argparse.Namespace) -> None:
    results: dict[tuple[str, str], list[Sample]] = {}
    for round_ in range(args.rounds):
        # Alternate the order each round so that no client always runs on a warm server.
        order = args.clients if round_ % 2 == 0 else list(reversed(args.clients))
        for name in order:
            client = await make_client(name, args.kubeconfig)
            try:
                for call, fn in calls_of(client, f"{name.replace('_', '-')}-r{round_}").items():
                    sample = await drive(fn, args.count, args.concurrency)
                    results.setdefault((name, call), []).append(sample)
            finally:
                await client.close()
    print(
        f"{'client':<19}{'call':<13}{'calls/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'cpu ms':>9}"
    )
    for name in args.clients:
        for call in CALLS:
            print(summary(name, call, results[(name, call)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--count", type=int, default=200, help="calls per client, call and round")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", nargs="+", choices=CANDIDATES, default=list(CANDIDATES))
    args = parser.parse_args()
    if not args.kubeconfig:
        raise SystemExit("set KUBECONFIG or pass --kubeconfig")
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"kubernetes {kubernetes.__version__}, kubernetes_asyncio "
        f"{kubernetes_asyncio.__version__}, lightkube {metadata.version('lightkube')}, "
        f"aiohttp {aiohttp.__version__}; count={args.count} concurrency={args.concurrency} "
        f"rounds={args.rounds}"
    )
    teardown(args.kubeconfig)
    setup(args.kubeconfig)
    try:
        asyncio.run(bench(args))
    finally:
        teardown(args.kubeconfig)


if __name__ == "__main__":
    main()
