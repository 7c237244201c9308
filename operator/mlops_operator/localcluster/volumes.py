"""Materialize a pod's volumes as directories the launcher bind-mounts.

Each volume becomes a host directory; ConfigMaps, Secrets, the projected
service-account token and downward API files are written into it (atomically:
write a temporary file, then rename). The node reads these objects under its
own identity, so the Node authorizer decides, as in any cluster, which ones a
node may see: only those its pods reference.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_operator.localcluster import diskimages
from mlops_operator.localcluster.kubeapi import ApiError, KubeApi
from mlops_operator.localcluster.podspec import field_value

__all__ = ["PreparedVolume", "VolumeNotReady", "prepare_volumes", "refresh_tokens"]

Json = dict[str, Any]

# Tokens live an hour and are renewed at 80 % of their life, as the kubelet does.
TOKEN_SECONDS = 3607


class VolumeNotReady(Exception):
    """A volume's source is missing or not bound yet; the pod waits and retries."""


@dataclass(frozen=True)
class PreparedVolume:
    """A volume ready to mount: its host directory and whether it is read-only by nature."""

    name: str
    path: Path
    read_only: bool


def _write(
    directory: Path, relative: str, data: bytes, mode: int, owner: tuple[int, int] | None
) -> None:
    target = directory / relative
    if ".." in Path(relative).parts or Path(relative).is_absolute():
        raise VolumeNotReady(f"invalid path {relative!r} in volume")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    if owner:
        os.chown(tmp, *owner)
    tmp.replace(target)


def _data(obj: Json, secret: bool) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        result[key] = base64.b64decode(value) if secret else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        result[key] = base64.b64decode(value)
    return result


async def _object(api: KubeApi, path: str, optional: bool, what: str) -> Json | None:
    try:
        return await api.get(path)
    except ApiError as exc:
        if exc.status == 404 and optional:
            return None
        if exc.status == 404:
            raise VolumeNotReady(f"{what} not found") from exc
        raise


def _write_keys(
    directory: Path,
    data: dict[str, bytes],
    items: list[Json] | None,
    default_mode: int,
    owner: tuple[int, int] | None,
) -> None:
    if items:
        for item in items:
            if item["key"] not in data:
                raise VolumeNotReady(f"key {item['key']!r} not found")
            _write(
                directory, item["path"], data[item["key"]], item.get("mode", default_mode), owner
            )
    else:
        for key, value in data.items():
            _write(directory, key, value, default_mode, owner)


async def _token(api: KubeApi, pod: Json, audience: str | None, seconds: int) -> bytes:
    meta = pod["metadata"]
    sa = pod["spec"].get("serviceAccountName") or "default"
    request: Json = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": meta["name"],
                "uid": meta["uid"],
            },
            **({"audiences": [audience]} if audience else {}),
        },
    }
    answer = await api.create(
        f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", request
    )
    return str(answer["status"]["token"]).encode()


async def _projected(
    api: KubeApi,
    pod: Json,
    directory: Path,
    spec: Json,
    owner: tuple[int, int] | None,
    pod_ip: str,
    host_ip: str,
) -> None:
    namespace = pod["metadata"]["namespace"]
    default_mode = spec.get("defaultMode", 0o644)
    for source in spec.get("sources", []):
        if "serviceAccountToken" in source:
            token_spec = source["serviceAccountToken"]
            token = await _token(
                api,
                pod,
                token_spec.get("audience"),
                int(token_spec.get("expirationSeconds", TOKEN_SECONDS)),
            )
            _write(directory, token_spec["path"], token, 0o600 if owner else 0o644, owner)
        elif "configMap" in source or "secret" in source:
            secret = "secret" in source
            ref = source["secret" if secret else "configMap"]
            kind = "secrets" if secret else "configmaps"
            obj = await _object(
                api,
                f"/api/v1/namespaces/{namespace}/{kind}/{ref['name']}",
                bool(ref.get("optional")),
                f"{kind[:-1]} {ref['name']!r}",
            )
            if obj is not None:
                _write_keys(directory, _data(obj, secret), ref.get("items"), default_mode, owner)
        elif "downwardAPI" in source:
            for item in source["downwardAPI"].get("items", []):
                value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip)
                _write(
                    directory, item["path"], value.encode(), item.get("mode", default_mode), owner
                )


async def _claim_path(api: KubeApi, namespace: str, claim: str) -> Path:
    pvc = await _object(
        api,
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}",
        False,
        f"persistentvolumeclaim {claim!r}",
    )
    assert pvc is not None
    volume = pvc["spec"].get("volumeName")
    if not volume or pvc.get("status", {}).get("phase") != "Bound":
        raise VolumeNotReady(f"persistentvolumeclaim {claim!r} is not bound yet")
    pv = await api.get(f"/api/v1/persistentvolumes/{volume}")
    source = pv["spec"].get("hostPath") or pv["spec"].get("local")
    if not source:
        raise VolumeNotReady(f"persistentvolume {volume!r} is not a hostPath or local volume")
    path = Path(source["path"])
    annotations = pv["metadata"].get("annotations", {})
    if annotations.get(diskimages.BACKING_ANNOTATION) == diskimages.EXT4_IMAGE:
        # Mounted when provisioned and when the node starts; again here, as a kubelet
        # mounts a pod's volumes: a pod must never write into the bare mount point.
        try:
            await asyncio.to_thread(diskimages.ensure_mounted, path)
        except diskimages.DiskImageError as exc:
            raise VolumeNotReady(f"persistentvolume {volume!r} cannot be mounted: {exc}") from exc
    return path


def _owner(pod: Json) -> tuple[int, int] | None:
    security = pod["spec"].get("securityContext", {})
    uid = security.get("runAsUser")
    group = security.get("fsGroup", security.get("runAsGroup"))
    if uid is None and group is None:
        return None
    return int(uid if uid is not None else 0), int(group if group is not None else 0)


async def prepare_volumes(
    api: KubeApi, pod: Json, pod_dir: Path, pod_ip: str, host_ip: str
) -> dict[str, PreparedVolume]:
    """Create every volume of `pod` under `pod_dir`; name -> prepared volume."""
    namespace = pod["metadata"]["namespace"]
    fs_group = pod["spec"].get("securityContext", {}).get("fsGroup")
    owner = _owner(pod)
    prepared: dict[str, PreparedVolume] = {}
    for volume in pod["spec"].get("volumes", []):
        name = volume["name"]
        directory = pod_dir / "volumes" / name
        read_only = False
        if "hostPath" in volume:
            directory = Path(volume["hostPath"]["path"])
            if volume["hostPath"].get("type") in ("DirectoryOrCreate", None, ""):
                directory.mkdir(parents=True, exist_ok=True)
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]
            directory = await _claim_path(api, namespace, claim["claimName"])
            directory.mkdir(parents=True, exist_ok=True)
            read_only = bool(claim.get("readOnly"))
        elif "emptyDir" in volume:
            directory.mkdir(parents=True, exist_ok=True)
            # World-writable like the kubelet's, whatever user the containers run as.
            directory.chmod(0o777)
        elif "configMap" in volume or "secret" in volume:
            secret = "secret" in volume
            ref = volume["secret" if secret else "configMap"]
            name_key = "secretName" if secret else "name"
            kind = "secrets" if secret else "configmaps"
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            obj = await _object(
                api,
                f"/api/v1/namespaces/{namespace}/{kind}/{ref[name_key]}",
                bool(ref.get("optional")),
                f"{kind[:-1]} {ref[name_key]!r}",
            )
            if obj is not None:
                _write_keys(
                    directory,
                    _data(obj, secret),
                    ref.get("items"),
                    ref.get("defaultMode", 0o644),
                    owner,
                )
            read_only = True
        elif "projected" in volume or "downwardAPI" in volume:
            spec = volume.get("projected") or {"sources": [{"downwardAPI": volume["downwardAPI"]}]}
            directory.mkdir(parents=True, exist_ok=True)
            await _projected(api, pod, directory, spec, owner, pod_ip, host_ip)
            read_only = True
        else:
            raise VolumeNotReady(
                f"volume {name!r}: this node supports emptyDir, hostPath, "
                "configMap, secret, persistentVolumeClaim, projected and downwardAPI"
            )
        if fs_group is not None and not read_only and "hostPath" not in volume:
            os.chown(directory, -1, int(fs_group))
            directory.chmod(directory.stat().st_mode | 0o2070)
        prepared[name] = PreparedVolume(name, directory, read_only)
    return prepared


async def refresh_tokens(api: KubeApi, pod: Json, pod_dir: Path, pod_ip: str, host_ip: str) -> None:
    """Rewrite the projected volumes (new tokens) of a running pod."""
    owner = _owner(pod)
    for volume in pod["spec"].get("volumes", []):
        if "projected" in volume:
            await _projected(
                api,
                pod,
                pod_dir / "volumes" / volume["name"],
                volume["projected"],
                owner,
                pod_ip,
                host_ip,
            )
