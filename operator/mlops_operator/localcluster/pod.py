"""One pod on the local node, from binding to deletion.

A ``PodWorker`` owns a pod's sandbox (network namespace, volumes), its
containers' processes (started through the launcher), their probes and
restarts, and the pod's status. It publishes status only when it changes, and
finishes a deletion the way the kubelet does: SIGTERM, the grace period,
SIGKILL, clean-up, then the final delete of the pod object.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from mlops_operator.localcluster.images import NOT_RUNNABLE_REASON, LocalImage, resolve_image
from mlops_operator.localcluster.kubeapi import ApiError, KubeApi
from mlops_operator.localcluster.network import GATEWAY, Ipam, PodNetwork
from mlops_operator.localcluster.podspec import (
    ContainerState,
    EnvSources,
    UnresolvableEnv,
    container_env,
    pod_phase,
)
from mlops_operator.localcluster.volumes import (
    TOKEN_SECONDS,
    PreparedVolume,
    VolumeNotReady,
    prepare_volumes,
    refresh_tokens,
)

__all__ = ["NodeContext", "PodWorker"]

Json = dict[str, Any]
log = logging.getLogger("mlops.localnode")

_BACKOFF_START = 2.0
_BACKOFF_CAP = 60.0
_TERMINATION_MESSAGE_LIMIT = 4096
_DNS_SERVICE_IP = "10.96.0.10"
_FIRST_READY_RETRY = 0.2


def subpath(root: Path, sub: str) -> Path:
    """`sub` inside the volume at `root`, created when missing as the kubelet creates it.

    Each missing level gets the volume root's mode and group (with ``fsGroup`` the root is
    the pod's group's, group-writable and setgid, as the kubelet leaves a volume it gave
    to that group), so the pod may write it whoever created the levels above. A path that
    leaves the volume is refused, as the kubelet refuses it.
    """
    if not sub:
        return root
    parts = Path(sub).parts
    if Path(sub).is_absolute() or ".." in parts:
        raise ValueError(f"subPath {sub!r} must be a relative path inside the volume")
    stat = root.stat()
    current = root
    for part in parts:
        current = current / part
        if not current.exists():
            current.mkdir()
            os.chown(current, -1, stat.st_gid)
            current.chmod(stat.st_mode & 0o7777)
    return current


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class NodeContext:
    """What every pod worker shares: the node's identity, API session and places."""

    api: KubeApi
    # Probes get a session of their own: waiting behind the API session's watches and
    # status writes for a connection would make a probe time out on a busy node.
    probes: aiohttp.ClientSession
    node_name: str
    data_root: Path
    ipam: Ipam
    service_cidr: str
    capacity: Json
    environment: Json
    api_service_host: str = "10.96.0.1"


@dataclass
class _Container:
    spec: Json
    image: LocalImage
    state: ContainerState
    init: bool = False
    process: asyncio.subprocess.Process | None = None
    readiness_ok: bool = False
    stop_requested: bool = field(default=False)


class PodWorker:
    """Runs one pod; ``observe`` feeds it new versions of the pod object."""

    def __init__(self, node: NodeContext, pod: Json) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir = node.data_root / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.network: PodNetwork | None = None
        self.containers: dict[str, _Container] = {}
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.start_time: str | None = pod.get("status", {}).get("startTime")
        self._published: Json | None = None
        self._publish_lock = asyncio.Lock()
        self._deleting = asyncio.Event()
        self._node_stopping = False
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        """The pod's API path."""
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"

    def start(self) -> None:
        """Run the pod in the background."""
        self.task = asyncio.create_task(self._main(), name=f"pod {self.namespace}/{self.name}")

    def observe(self, pod: Json) -> None:
        """A newer version of the pod object arrived."""
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()

    def forget(self) -> None:
        """The pod object is gone from the API: stop everything."""
        self._deleting.set()

    def shutdown(self) -> None:
        """The node is stopping: stop the pod's processes but leave the pod object alone."""
        self._node_stopping = True
        self._deleting.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def _main(self) -> None:
        try:
            # A pod that already finished (seen again after a node restart) is not re-run.
            if self.pod.get("status", {}).get("phase") not in ("Succeeded", "Failed") and (
                await self._admit()
            ):
                await self._run()
        except Exception as exc:
            log.exception("pod %s/%s: node error", self.namespace, self.name)
            self.phase, self.reason, self.message = "Failed", "NodeError", str(exc)
            await self._publish()
        finally:
            await self._stop_all(self._grace())
            await asyncio.to_thread(self._teardown)
        await self._deleting.wait()
        if not self._node_stopping:
            await self._finalize_deletion()

    async def _admit(self) -> bool:
        spec = self.pod["spec"]
        unrunnable = []
        for init, key in ((True, "initContainers"), (False, "containers")):
            for c in spec.get(key, []):
                # A built image may need mounting: buildah runs outside the event loop.
                image = await asyncio.to_thread(resolve_image, c["image"])
                state = ContainerState(c["name"])
                previous = next(
                    (
                        s
                        for s in self.pod.get("status", {}).get("containerStatuses", [])
                        if s["name"] == c["name"]
                    ),
                    None,
                )
                if previous:
                    state.restart_count = int(previous.get("restartCount", 0))
                if image is None:
                    unrunnable.append(c["image"])
                    state.waiting_reason = NOT_RUNNABLE_REASON
                    state.waiting_message = (
                        f'image "{c["image"]}" cannot run on the local node, which runs only '
                        "the project's own images (mlops-operator/operator, trainer, server, python)"
                    )
                    image = LocalImage("", ())
                self.containers[c["name"]] = _Container(c, image, state, init=init)
        if not unrunnable:
            return True
        self.reason = NOT_RUNNABLE_REASON
        self.message = f"images not runnable on the local node: {', '.join(unrunnable)}"
        # A pod that would restart forever waits, like ErrImagePull; any other fails at once.
        self.phase = "Pending" if spec.get("restartPolicy", "Always") == "Always" else "Failed"
        await self._publish()
        return False

    async def _run(self) -> None:
        self.start_time = self.start_time or _now()
        self.network = await asyncio.to_thread(
            PodNetwork.create, self.uid, self.node.ipam, self.node.service_cidr
        )
        self._write_etc()
        await self._publish()
        volumes = await self._until_ready(self._volumes)
        if volumes is None:
            return
        for container in (c for c in self.containers.values() if c.init):
            if not await self._run_init(container, volumes):
                return
        workers = [
            asyncio.create_task(self._supervise(c, volumes))
            for c in self.containers.values()
            if not c.init
        ]
        refresher = asyncio.create_task(self._refresh_tokens())
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        waiter: asyncio.Future[Any] = asyncio.gather(*workers)
        deleting: asyncio.Future[Any] = asyncio.ensure_future(self._deleting.wait())
        try:
            done, _ = await asyncio.wait(
                [waiter, deleting],
                timeout=float(deadline) if deadline else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                self.phase, self.reason = "Failed", "DeadlineExceeded"
                self.message = (
                    f"Pod was active on the node longer than the specified deadline ({deadline}s)"
                )
        finally:
            deleting.cancel()
            refresher.cancel()
            for worker in workers:
                worker.cancel()
            await self._stop_all(self._grace())
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        await self._publish()

    async def _until_ready(self, step: Any, container: _Container | None = None) -> Any:
        """Retry a preparation step that waits on other objects, until it works or the pod goes;
        the waiting reason is the container's, or every container's for a step of the pod."""
        delay = 1.0
        while not self._deleting.is_set():
            try:
                return await step()
            except (VolumeNotReady, UnresolvableEnv) as exc:
                reason = (
                    "CreateContainerConfigError"
                    if isinstance(exc, UnresolvableEnv)
                    else "ContainerCreating"
                )
                for c in [container] if container else self.containers.values():
                    c.state.waiting_reason, c.state.waiting_message = reason, str(exc)
                await self._publish()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._deleting.wait(), delay)
                delay = min(delay * 2, 10.0)
        return None

    async def _volumes(self) -> dict[str, PreparedVolume]:
        assert self.network is not None
        return await prepare_volumes(self.node.api, self.pod, self.dir, self.network.ip, GATEWAY)

    async def _refresh_tokens(self) -> None:
        assert self.network is not None
        while True:
            await asyncio.sleep(TOKEN_SECONDS * 0.8)
            try:
                await refresh_tokens(self.node.api, self.pod, self.dir, self.network.ip, GATEWAY)
            except (ApiError, aiohttp.ClientError, VolumeNotReady) as exc:
                log.warning("pod %s/%s: token refresh failed: %s", self.namespace, self.name, exc)

    async def _run_init(self, container: _Container, volumes: dict[str, PreparedVolume]) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff = _BACKOFF_START
        while not self._deleting.is_set():
            code = await self._run_once(container, volumes)
            if code == 0:
                return True
            if code is None:  # the pod is going
                return False
            if policy == "Never":
                self.phase, self.reason = "Failed", "InitContainerFailed"
                await self._publish()
                return False
            await self._back_off(container, backoff)
            backoff = min(backoff * 2, _BACKOFF_CAP)
        return False

    async def _supervise(self, container: _Container, volumes: dict[str, PreparedVolume]) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff = _BACKOFF_START
        while not self._deleting.is_set():
            started = asyncio.get_running_loop().time()
            code = await self._run_once(container, volumes)
            if code is None or self._deleting.is_set():
                return
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return
            if asyncio.get_running_loop().time() - started > 60:
                backoff = _BACKOFF_START
            await self._back_off(container, backoff)
            backoff = min(backoff * 2, _BACKOFF_CAP)

    async def _back_off(self, container: _Container, delay: float) -> None:
        state = container.state
        state.last_terminated = {
            "exitCode": state.exit_code,
            "reason": state.reason,
            "startedAt": state.started_at,
            "finishedAt": state.finished_at,
            # As the kubelet keeps it: why the container ended survives its restart.
            **({"message": state.message} if state.message else {}),
        }
        state.waiting_reason = "CrashLoopBackOff"
        state.waiting_message = f"back-off {delay:.0f}s restarting failed container={state.name}"
        await self._publish()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._deleting.wait(), delay)
        state.restart_count += 1

    # -- one container run -------------------------------------------------------------------

    def _identity(self, container: _Container) -> tuple[int, int | None, list[int]]:
        pod_ctx = self.pod["spec"].get("securityContext", {})
        ctx = container.spec.get("securityContext", {})
        uid = ctx.get("runAsUser", pod_ctx.get("runAsUser", container.image.user))
        gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
        groups = list(pod_ctx.get("supplementalGroups", []))
        if "fsGroup" in pod_ctx:
            groups.insert(0, pod_ctx["fsGroup"])
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) and int(uid) == 0:
            raise UnresolvableEnv("container has runAsNonRoot and image will run as root")
        return int(uid), (int(gid) if gid is not None else None), [int(g) for g in groups]

    async def _env_sources(self) -> EnvSources:
        assert self.network is not None
        config_maps: dict[str, Json] = {}
        secrets: dict[str, Json] = {}
        for c in self.containers.values():
            refs = [e.get("valueFrom", {}) for e in c.spec.get("env", [])] + c.spec.get(
                "envFrom", []
            )
            for ref in refs:
                for key, store, kind in (
                    ("configMapKeyRef", config_maps, "configmaps"),
                    ("configMapRef", config_maps, "configmaps"),
                    ("secretKeyRef", secrets, "secrets"),
                    ("secretRef", secrets, "secrets"),
                ):
                    if key in ref and ref[key]["name"] not in store:
                        obj = await self.node.api.get_or_none(
                            f"/api/v1/namespaces/{self.namespace}/{kind}/{ref[key]['name']}"
                        )
                        if obj is not None:
                            store[ref[key]["name"]] = obj
        return EnvSources(config_maps, secrets, self.network.ip, GATEWAY, self.node.capacity)

    def _spec_file(
        self,
        container: _Container,
        volumes: dict[str, PreparedVolume],
        env: dict[str, str],
        argv: list[str],
        termination: Path,
    ) -> Path:
        uid, gid, groups = self._identity(container)
        mounts = []
        for vm in container.spec.get("volumeMounts", []):
            volume = volumes[vm["name"]]
            source = subpath(volume.path, vm.get("subPath", ""))
            mounts.append(
                {
                    "source": str(source),
                    "target": vm["mountPath"],
                    "readOnly": bool(vm.get("readOnly")) or volume.read_only,
                }
            )
        target = container.spec.get("terminationMessagePath", "/dev/termination-log")
        mounts.append({"source": str(termination), "target": target, "readOnly": False})
        spec = {
            "argv": argv,
            "env": env,
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "workingDir": container.spec.get("workingDir"),
            "mounts": mounts,
            "environment": self.node.environment,
            "terminationLog": target,
            # A built image: chroot into its root file system (read-only when asked).
            "rootfs": container.image.rootfs,
            "rootDir": str(self.dir / "roots" / container.state.name),
            "readOnlyRoot": bool(
                container.spec.get("securityContext", {}).get("readOnlyRootFilesystem")
            ),
        }
        path = self.dir / "run" / f"{container.state.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec))
        return path

    def _argv(self, container: _Container) -> list[str]:
        # Kubernetes' rule: command replaces ENTRYPOINT, args replace CMD.
        command = container.spec.get("command")
        args = container.spec.get("args", [])
        if command:
            return [*command, *args]
        return [*container.image.entrypoint, *(args or container.image.cmd)]

    def _base_env(self, container: _Container, uid: int) -> dict[str, str]:
        path = f"{Path(sys.prefix) / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return {
            # A built image's ENV (its PATH included) comes first; the pod's env wins over it.
            **dict(container.image.env),
            "PATH": dict(container.image.env).get("PATH", path),
            "HOSTNAME": self.pod["spec"].get("hostname") or self.name,
            "HOME": "/root" if uid == 0 else "/",
            "KUBERNETES_SERVICE_HOST": self.node.api_service_host,
            "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "443",
            "KUBERNETES_PORT": f"tcp://{self.node.api_service_host}:443",
        }

    async def _prepare(
        self, container: _Container, volumes: dict[str, PreparedVolume]
    ) -> tuple[Path, Path]:
        """The container's run spec, its env resolved (UnresolvableEnv while it cannot be),
        and its termination-message file."""
        sources = await self._env_sources()
        uid = self._identity(container)[0]
        env = container_env(self.pod, container.spec, sources, self._base_env(container, uid))
        termination = self.dir / "termination" / container.state.name
        termination.parent.mkdir(parents=True, exist_ok=True)
        termination.write_text("")
        termination.chmod(0o666)
        spec = self._spec_file(container, volumes, env, self._argv(container), termination)
        return spec, termination

    async def _run_once(
        self, container: _Container, volumes: dict[str, PreparedVolume]
    ) -> int | None:
        """Run the container once; its exit code, or None when it could not start."""
        assert self.network is not None
        state = container.state
        # A Secret or ConfigMap the env names may come a moment after the pod (its owner
        # creates both): the kubelet keeps the container waiting in CreateContainerConfigError
        # and tries again, whatever the restart policy; so does this node.
        prepared = await self._until_ready(lambda: self._prepare(container, volumes), container)
        if prepared is None:  # the pod is going
            return None
        spec_file, termination = prepared
        log_path = self.dir / "logs" / f"{state.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            container.process = await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                self.network.netns,
                sys.executable,
                "-m",
                "mlops_operator.localcluster.launcher",
                str(spec_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        state.running, state.started_at, state.exit_code = True, _now(), None
        state.waiting_reason = state.waiting_message = None
        container.readiness_ok = False
        state.ready = "readinessProbe" not in container.spec
        self._update_phase()
        await self._publish()
        probes = [
            asyncio.create_task(self._probe_loop(container, kind))
            for kind in ("readinessProbe", "livenessProbe")
            if kind in container.spec
        ]
        try:
            returncode = await container.process.wait()
        finally:
            # Also when this task is cancelled (the pod deleted): a probe left running would
            # poll a dead address, and "restart" a container that no longer exists, forever.
            for probe in probes:
                probe.cancel()
        code = returncode if returncode >= 0 else 128 - returncode
        message = termination.read_text(errors="replace")[:_TERMINATION_MESSAGE_LIMIT]
        if (
            not message
            and code != 0
            and container.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        ):
            message = log_path.read_text(errors="replace")[-2048:]
        state.running = state.ready = False
        state.exit_code, state.finished_at = code, _now()
        state.reason = "Completed" if code == 0 else "Error"
        state.message = message or None
        container.process = None
        self._update_phase()
        await self._publish()
        return code

    def _update_phase(self) -> None:
        if self.phase == "Failed" and self.reason:
            return
        regular = [c.state for c in self.containers.values() if not c.init]
        self.phase = pod_phase(self.pod["spec"].get("restartPolicy", "Always"), regular)

    # -- probes --------------------------------------------------------------------------------

    def _port(self, container: _Container, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for p in container.spec.get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"no container port named {port!r}")

    async def _probe_once(self, container: _Container, probe: Json) -> bool:
        assert self.network is not None
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                url = f"{get.get('scheme', 'HTTP').lower()}://{self.network.ip}:{self._port(container, get['port'])}{get.get('path', '/')}"
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
                async with self.node.probes.get(
                    url, headers=headers, ssl=False, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as resp:
                    return 200 <= resp.status < 400
            if "tcpSocket" in probe:
                port = self._port(container, probe["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.network.ip, port), timeout
                )
                writer.close()
                return True
            if "exec" in probe:
                proc = await asyncio.create_subprocess_exec(
                    "ip",
                    "netns",
                    "exec",
                    self.network.netns,
                    *probe["exec"]["command"],
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                return await asyncio.wait_for(proc.wait(), timeout) == 0
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return False
        return True

    async def _probe_loop(self, container: _Container, kind: str) -> None:
        probe = container.spec[kind]
        period = float(probe.get("periodSeconds", 10))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        successes = failures = 0
        ever_ready = False
        while container.process is not None:
            ok = await self._probe_once(container, probe)
            ever_ready = ever_ready or ok
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if kind == "readinessProbe":
                if (
                    ok
                    and successes >= int(probe.get("successThreshold", 1))
                    and not container.state.ready
                ):
                    container.state.ready = True
                    await self._publish()
                elif (
                    not ok
                    and failures >= int(probe.get("failureThreshold", 3))
                    and container.state.ready
                ):
                    container.state.ready = False
                    await self._publish()
            elif not ok and failures >= int(probe.get("failureThreshold", 3)):
                log.info(
                    "pod %s/%s: liveness failed, restarting %s",
                    self.namespace,
                    self.name,
                    container.state.name,
                )
                await self._stop(
                    container, float(probe.get("terminationGracePeriodSeconds", self._grace()))
                )
                return
            # Until a readiness probe first succeeds it is retried within the period, so a
            # server is Ready as soon as it listens (the kubelet waits a full period).
            fast = kind == "readinessProbe" and not ever_ready
            await asyncio.sleep(min(period, _FIRST_READY_RETRY) if fast else period)

    # -- stopping ------------------------------------------------------------------------------

    def _grace(self) -> float:
        meta_grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if meta_grace is not None:
            return float(meta_grace)
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    async def _stop(self, container: _Container, grace: float) -> None:
        process = container.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def _stop_all(self, grace: float) -> None:
        await asyncio.gather(*(self._stop(c, grace) for c in self.containers.values()))

    def _etc_dir(self) -> Path:
        assert self.network is not None
        return Path("/etc/netns") / self.network.netns

    def _write_etc(self) -> None:
        # `ip netns exec` bind-mounts these over /etc/resolv.conf and /etc/hosts.
        assert self.network is not None
        etc = self._etc_dir()
        etc.mkdir(parents=True, exist_ok=True)
        ns = self.namespace
        (etc / "resolv.conf").write_text(
            f"nameserver {_DNS_SERVICE_IP}\nsearch {ns}.svc.cluster.local svc.cluster.local "
            "cluster.local\noptions ndots:5\n"
        )
        (etc / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{self.network.ip}\t{self.name}\n"
        )

    def _teardown(self) -> None:
        if self.network is not None:
            shutil.rmtree(self._etc_dir(), ignore_errors=True)
        PodNetwork.delete(self.uid, self.node.ipam)
        shutil.rmtree(self.dir / "volumes", ignore_errors=True)

    async def _finalize_deletion(self) -> None:
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        try:
            await self.node.api.request("DELETE", self.path, body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s: final delete failed: %s", self.namespace, self.name, exc)

    # -- status ----------------------------------------------------------------------------

    def _status(self) -> Json:
        now = _now()
        regular = [c for c in self.containers.values() if not c.init]
        inits = [c for c in self.containers.values() if c.init]
        ready = bool(regular) and all(c.state.ready for c in regular) and self.phase == "Running"
        initialized = all(c.state.exit_code == 0 for c in inits)
        previous = {c["type"]: c for c in self.pod.get("status", {}).get("conditions", [])}

        def condition(kind: str, value: bool) -> Json:
            status = "True" if value else "False"
            old = previous.get(kind)
            since = old["lastTransitionTime"] if old and old.get("status") == status else now
            return {
                "type": kind,
                "status": status,
                "lastTransitionTime": since,
                "lastProbeTime": None,
            }

        conditions = [
            condition("PodReadyToStartContainers", self.network is not None),
            condition("Initialized", initialized),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ]
        if "PodScheduled" in previous:
            conditions.append(previous["PodScheduled"])
        status: Json = {
            "phase": self.phase,
            "conditions": conditions,
            "hostIP": GATEWAY,
            "hostIPs": [{"ip": GATEWAY}],
            "startTime": self.start_time,
            "containerStatuses": [c.state.status(c.spec["image"]) for c in regular],
            "reason": self.reason,
            "message": self.message,
        }
        if inits:
            status["initContainerStatuses"] = [c.state.status(c.spec["image"]) for c in inits]
        if self.network is not None:
            status["podIP"] = self.network.ip
            status["podIPs"] = [{"ip": self.network.ip}]
        return status

    async def _publish(self) -> None:
        async with self._publish_lock:
            status = self._status()
            comparable = {k: v for k, v in status.items() if k != "conditions"}
            comparable["conditions"] = [(c["type"], c["status"]) for c in status["conditions"]]
            if comparable == self._published:
                return
            try:
                await self.node.api.merge_patch(self.path + "/status", {"status": status})
                self._published = comparable
            except ApiError as exc:
                if exc.status != 404:
                    log.warning(
                        "pod %s/%s: status update failed: %s", self.namespace, self.name, exc
                    )
