"""The local node: this cluster's kubelet, as one asyncio process.

It registers the Node (real capacity of the machine), renews its Lease, runs
every pod bound to it through a ``PodWorker``, forwards the API server to the
pods (the API server listens on loopback; pods reach it on the bridge), and
provisions PersistentVolumes for claims of the ``local`` StorageClass: each an ext4
image of the claim's size, loop-mounted (see :mod:`.diskimages`), or a plain
directory where the machine cannot do that.

Run by ``mlops cluster up`` as ``python -m mlops_operator.localcluster.node``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import functools
import logging
import os
import platform
import re
import shutil
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp

import mlops_operator
from mlops_operator.localcluster import diskimages, network
from mlops_operator.localcluster.kubeapi import ApiError, KubeApi
from mlops_operator.localcluster.pod import NodeContext, PodWorker
from mlops_operator.localcluster.podspec import parse_quantity

__all__ = ["APISERVER_PROXY_PORT", "PROVISIONER", "NodeAgent", "main"]

Json = dict[str, Any]
log = logging.getLogger("mlops.localnode")

APISERVER_PROXY_PORT = 6443
PROVISIONER = "mlops.dev/local-node"
_LEASE_SECONDS = 40
_RENEW_SECONDS = 10


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _memory_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _capacity(data_root: Path) -> Json:
    disk = shutil.disk_usage(data_root)
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{_memory_bytes() // 1024}Ki",
        "ephemeral-storage": f"{disk.total // 1024}Ki",
        "pods": "110",
    }


def _python_environment() -> Json:
    """What of the host every container needs: the project's Python environment.

    ``keep``: the interpreter, the venv and the package source, which containers
    reach at their own paths whatever volumes they mount. ``masks``: directories
    on the way to them that the pods' users cannot enter (``/root`` is 0700); the
    launcher covers those with a tmpfs and binds back only what is kept.
    """
    keep = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(mlops_operator.__file__).resolve().parent.parent,
    }
    masks = {
        ancestor
        for path in keep
        for ancestor in path.parents
        if ancestor != Path("/") and not ancestor.stat().st_mode & stat.S_IXOTH
    }
    # Only the outermost: a tmpfs over /root already hides /root/.pyenv.
    outermost = {m for m in masks if not any(other in m.parents for other in masks)}
    return {"keep": sorted(map(str, keep)), "masks": sorted(map(str, outermost))}


class NodeAgent:
    """The node's control loops."""

    def __init__(
        self,
        name: str,
        api: KubeApi,
        provisioner_api: KubeApi,
        probes: aiohttp.ClientSession,
        data_root: Path,
        apiserver_port: int,
        service_cidr: str,
        kubelet_version: str,
    ) -> None:
        self.name = name
        self.kubelet_version = kubelet_version
        self.api = api
        self.provisioner_api = provisioner_api
        self.data_root = data_root
        self.volumes_root = data_root / "volumes"
        # Why claims get plain directories on this machine; None: ext4 images (set by `run`).
        self.volumes_unenforced: str | None = None
        self.apiserver_port = apiserver_port
        self.capacity = _capacity(data_root)
        self.context = NodeContext(
            api=api,
            probes=probes,
            node_name=name,
            data_root=data_root,
            ipam=network.Ipam(data_root / "ipam.json"),
            service_cidr=service_cidr,
            capacity=self.capacity,
            environment=_python_environment(),
        )
        self.workers: dict[str, PodWorker] = {}

    async def run(self) -> None:
        """Register, then run every loop until cancelled."""
        await asyncio.to_thread(network.ensure_bridge)
        await self._register()
        await self._prepare_volumes()
        proxy = await asyncio.start_server(self._proxy, network.GATEWAY, APISERVER_PROXY_PORT)
        loops = [
            self._lease_loop(),
            self._status_loop(),
            self._pods_loop(),
            self._claims_loop(),
            self._volumes_loop(),
        ]
        async with proxy:
            await asyncio.gather(*loops)

    # -- the Node and its Lease --------------------------------------------------------------

    def _node_status(self) -> Json:
        now = _now()
        conditions = [
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for kind, value, reason, message in (
                (
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "local node has sufficient memory",
                ),
                (
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "local node has no disk pressure",
                ),
                (
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "local node has sufficient PID",
                ),
                ("Ready", "True", "KubeletReady", "local node is posting ready status"),
            )
        ]
        return {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": network.GATEWAY},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": Path("/etc/machine-id").read_text().strip()
                if Path("/etc/machine-id").exists()
                else self.name,
                "systemUUID": self.name,
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "mlops-operator local node",
                "containerRuntimeVersion": f"mlops-local://{mlops_operator.__version__}",
                "kubeletVersion": self.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                    platform.machine(), platform.machine()
                ),
            },
        }

    async def _register(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": self._node_status()["nodeInfo"]["architecture"],
                    "node.kubernetes.io/instance-type": "mlops-local",
                },
            },
            "spec": {"podCIDR": str(network.POD_CIDR), "podCIDRs": [str(network.POD_CIDR)]},
        }
        try:
            await self.api.create("/api/v1/nodes", node)
        except ApiError as exc:
            if exc.status != 409:
                raise
        await self.api.merge_patch(
            f"/api/v1/nodes/{self.name}/status", {"status": self._node_status()}
        )
        log.info("node %s registered: %s", self.name, self.capacity)

    async def _lease_loop(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        while True:
            spec = {
                "holderIdentity": self.name,
                "leaseDurationSeconds": _LEASE_SECONDS,
                "renewTime": _now(),
            }
            try:
                if await self.api.get_or_none(path) is None:
                    node = await self.api.get(f"/api/v1/nodes/{self.name}")
                    owner = {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.name,
                        "uid": node["metadata"]["uid"],
                    }
                    await self.api.create(
                        path.rsplit("/", 1)[0],
                        {
                            "apiVersion": "coordination.k8s.io/v1",
                            "kind": "Lease",
                            "metadata": {"name": self.name, "ownerReferences": [owner]},
                            "spec": spec,
                        },
                    )
                else:
                    await self.api.merge_patch(path, {"spec": spec})
            except (ApiError, OSError) as exc:
                log.warning("lease renewal failed: %s", exc)
            await asyncio.sleep(_RENEW_SECONDS)

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            try:
                await self.api.strategic_patch(
                    f"/api/v1/nodes/{self.name}/status",
                    {"status": {"conditions": self._node_status()["conditions"]}},
                )
            except (ApiError, OSError) as exc:
                log.warning("node status update failed: %s", exc)

    # -- pods -------------------------------------------------------------------------------

    async def _pods_loop(self) -> None:
        params = {"fieldSelector": f"spec.nodeName={self.name}"}
        async for kind, obj in self.api.watch("/api/v1/pods", params):
            if kind == "SYNC":
                present = {item["metadata"]["uid"] for item in obj.get("items", [])}
                for uid in set(self.workers) - present:
                    self.workers.pop(uid).forget()
                continue
            uid = obj["metadata"]["uid"]
            if kind == "DELETED":
                worker = self.workers.pop(uid, None)
                if worker:
                    worker.forget()
            elif uid in self.workers:
                self.workers[uid].observe(obj)
            else:
                worker = PodWorker(self.context, obj)
                worker.observe(obj)
                self.workers[uid] = worker
                worker.start()
                assert worker.task is not None
                worker.task.add_done_callback(functools.partial(self._done, uid))

    def scrape_targets(self) -> list[Json]:
        """Prometheus HTTP service discovery: running pods annotated for scraping."""
        targets = []
        for worker in self.workers.values():
            pod = worker.pod
            annotations = pod["metadata"].get("annotations", {})
            if annotations.get("prometheus.io/scrape") != "true" or worker.network is None:
                continue
            if worker.phase != "Running" or "prometheus.io/port" not in annotations:
                continue
            labels = {_label_name(k): v for k, v in pod["metadata"].get("labels", {}).items()}
            labels |= {
                "namespace": worker.namespace,
                "pod": worker.name,
                "__metrics_path__": annotations.get("prometheus.io/path", "/metrics"),
            }
            address = f"{worker.network.ip}:{annotations['prometheus.io/port']}"
            targets.append({"targets": [address], "labels": labels})
        return targets

    def _done(self, uid: str, _task: object) -> None:
        worker = self.workers.get(uid)
        if worker is not None and worker.task is not None and worker.task.done():
            self.workers.pop(uid, None)

    # -- the API server, as pods see it ---------------------------------------------------

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.apiserver_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    # -- local PersistentVolumes ------------------------------------------------------------

    async def _prepare_volumes(self) -> None:
        """Decide how volumes are backed here; mount the images of existing volumes.

        Before any pod starts: a pod must never bind an image's bare mount point. An
        image no PersistentVolume names any more (one deleted by hand) is removed.
        """
        reason = await asyncio.to_thread(diskimages.unavailable_reason, self.volumes_root)
        self.volumes_unenforced = reason
        if reason is None:
            log.info("volumes: ext4 images of each claim's size, loop-mounted")
        else:
            log.warning("volumes: plain directories, capacity NOT enforced: %s", reason)
        volumes = await self.provisioner_api.get("/api/v1/persistentvolumes")
        named = set()
        for pv in volumes.get("items", []):
            annotations = pv["metadata"].get("annotations", {})
            if annotations.get(diskimages.BACKING_ANNOTATION) != diskimages.EXT4_IMAGE:
                continue
            path = Path(pv["spec"]["hostPath"]["path"])
            named.add(diskimages.image_of(path))
            if pv.get("status", {}).get("phase") == "Released":
                continue  # reclaimed by the claims loop
            try:
                await asyncio.to_thread(diskimages.ensure_mounted, path)
            except (diskimages.DiskImageError, OSError) as exc:
                log.warning("volume %s cannot be mounted: %s", pv["metadata"]["name"], exc)
        for image in set(self.volumes_root.glob("*.ext4")) - named:
            try:
                await asyncio.to_thread(diskimages.remove, image.with_suffix(""))
                log.info("removed %s: no PersistentVolume names it", image)
            except (diskimages.DiskImageError, OSError) as exc:
                log.warning("%s, which no PersistentVolume names, stays: %s", image, exc)

    async def _claims_loop(self) -> None:
        api = self.provisioner_api
        async for kind, claim in api.watch("/api/v1/persistentvolumeclaims"):
            if kind not in ("ADDED", "MODIFIED"):
                continue
            try:
                await self._provision(claim)
            except (ApiError, OSError, diskimages.DiskImageError) as exc:
                log.warning("provisioning %s failed: %s", claim["metadata"]["name"], exc)

    async def _provision(self, claim: Json) -> None:
        meta, spec = claim["metadata"], claim["spec"]
        annotations = meta.get("annotations", {})
        wanted = annotations.get("volume.kubernetes.io/storage-provisioner") or annotations.get(
            "volume.beta.kubernetes.io/storage-provisioner"
        )
        if wanted != PROVISIONER or spec.get("volumeName") or meta.get("deletionTimestamp"):
            return
        name = f"pvc-{meta['uid']}"
        directory = self.volumes_root / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        requested = spec["resources"]["requests"]["storage"]
        annotations = {"pv.kubernetes.io/provisioned-by": PROVISIONER}
        if self.volumes_unenforced is None:
            size = diskimages.volume_bytes(requested)
            await asyncio.to_thread(diskimages.create, directory, size)
            annotations[diskimages.BACKING_ANNOTATION] = diskimages.EXT4_IMAGE
            # What the claim asked for, unless the image had to be rounded up.
            capacity = requested if size == parse_quantity(requested) else f"{size >> 20}Mi"
        else:
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o777)
            annotations[diskimages.BACKING_ANNOTATION] = diskimages.DIRECTORY
            annotations[diskimages.FALLBACK_ANNOTATION] = (
                f"capacity not enforced: {self.volumes_unenforced}"
            )
            capacity = requested
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "capacity": {"storage": capacity},
                "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.get("storageClassName", "local"),
                "hostPath": {"path": str(directory), "type": "DirectoryOrCreate"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                "volumeMode": "Filesystem",
            },
        }
        try:
            await self.provisioner_api.create("/api/v1/persistentvolumes", volume)
            log.info("provisioned %s for %s/%s", name, meta["namespace"], meta["name"])
        except ApiError as exc:
            if exc.status != 409:
                raise

    async def _volumes_loop(self) -> None:
        """Delete released volumes of ours (reclaim policy Delete) and their data."""
        async for kind, pv in self.provisioner_api.watch("/api/v1/persistentvolumes"):
            if kind not in ("ADDED", "MODIFIED") or pv.get("status", {}).get("phase") != "Released":
                continue
            annotations = pv["metadata"].get("annotations", {})
            if annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if pv["metadata"].get("deletionTimestamp"):
                continue  # reclaimed already, going away
            name = pv["metadata"]["name"]
            try:
                await asyncio.to_thread(diskimages.remove, Path(pv["spec"]["hostPath"]["path"]))
                await self.provisioner_api.delete(f"/api/v1/persistentvolumes/{name}")
                log.info("reclaimed %s", name)
            except (ApiError, OSError, diskimages.DiskImageError) as exc:
                log.warning("reclaiming %s failed: %s", name, exc)


def _label_name(key: str) -> str:
    # What Prometheus's labelmap makes of a Kubernetes label key.
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


async def _serve(args: argparse.Namespace) -> None:
    pki = Path(args.pki)
    server = f"https://127.0.0.1:{args.apiserver_port}"
    node_api = KubeApi(server, pki / "ca.crt", pki / "node.crt", pki / "node.key")
    provisioner_api = KubeApi(
        server, pki / "ca.crt", pki / "provisioner.crt", pki / "provisioner.key"
    )
    probes = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
    async with node_api, provisioner_api, probes:
        agent = NodeAgent(
            args.name,
            node_api,
            provisioner_api,
            probes,
            Path(args.data_root),
            args.apiserver_port,
            args.service_cidr,
            args.kubelet_version,
        )
        from aiohttp import web

        app = web.Application()

        async def healthz(_request: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def scrape_targets(_request: web.Request) -> web.Response:
            return web.json_response(agent.scrape_targets())

        app.router.add_get("/healthz", healthz)
        app.router.add_get("/sd/pods", scrape_targets)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.health_port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        main_task = asyncio.create_task(agent.run())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([main_task, stopper], return_when=asyncio.FIRST_COMPLETED)
        if main_task in done:
            main_task.result()
        main_task.cancel()
        # Stopping the node stops its pods' processes, as a stopped container runtime would.
        for worker in list(agent.workers.values()):
            worker.shutdown()
        tasks = [w.task for w in agent.workers.values() if w.task]
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        # Its pods stopped, the node leaves nothing mounted or attached behind.
        unmounted = await asyncio.to_thread(diskimages.unmount_all, agent.volumes_root)
        log.info("unmounted %d volume(s)", len(unmounted))
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the local node process."""
    parser = argparse.ArgumentParser(description="The local cluster's node agent.")
    parser.add_argument("--name", default="local-0")
    parser.add_argument("--pki", required=True)
    parser.add_argument("--apiserver-port", type=int, required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--service-cidr", required=True)
    parser.add_argument("--health-port", type=int, required=True)
    parser.add_argument("--kubelet-version", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    Path(args.data_root).mkdir(parents=True, exist_ok=True)
    # Pods of a previous run of this node have no processes left: start them afresh. Only
    # this node's: every `mlops-*` namespace on the machine took other clusters' pods too.
    network.remove_pod_namespaces()
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
