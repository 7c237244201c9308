"""Pure pieces of running a pod: environment, quantities, identities, status.

Kept free of I/O so the rules a kubelet follows (env var resolution order,
downward API fields, phase from container states) are unit-tested directly.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "ContainerState",
    "EnvSources",
    "UnresolvableEnv",
    "container_env",
    "field_value",
    "parse_quantity",
    "pod_phase",
    "resource_value",
]

Json = dict[str, Any]

_SUFFIXES: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


class UnresolvableEnv(Exception):
    """An env var refers to a ConfigMap, Secret or key that does not exist."""


def parse_quantity(value: str | float) -> Decimal:
    """A Kubernetes resource quantity (``500m``, ``2Gi``, ``1e3``) as a number."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2) or ""])


def resource_value(container: Json, resource: str, divisor: str | None, node_capacity: Json) -> str:
    """The downward API value of ``limits.cpu``-style fields (rounded up, as upstream)."""
    section, name = resource.split(".", 1)
    amount = container.get("resources", {}).get(section, {}).get(name)
    if amount is None:
        # An unset limit reads as the node's allocatable, as upstream documents.
        amount = node_capacity.get(name, "0")
    result = parse_quantity(amount) / parse_quantity(divisor or "1")
    return str(math.ceil(result))


def _path_value(obj: Mapping[str, Any], path: str) -> str:
    match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return str(obj["metadata"].get(match.group(1), {}).get(match.group(2), ""))
    node: Any = obj
    for part in path.split("."):
        node = node.get(part, "") if isinstance(node, Mapping) else ""
    return str(node)


def field_value(pod: Json, path: str, pod_ip: str, host_ip: str) -> str:
    """The downward API value of a pod field (``metadata.name``, ``status.podIP`` ...)."""
    if path in ("status.podIP", "status.podIPs"):
        return pod_ip
    if path in ("status.hostIP", "status.hostIPs"):
        return host_ip
    if path == "metadata.labels" or path == "metadata.annotations":
        items = pod["metadata"].get(path.split(".")[1], {})
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    return _path_value(pod, path)


@dataclass(frozen=True)
class EnvSources:
    """What env vars may draw on: the pod's ConfigMaps and Secrets, fetched by the node."""

    config_maps: Mapping[str, Json]
    secrets: Mapping[str, Json]
    pod_ip: str
    host_ip: str
    node_capacity: Json


def _from_object(
    kind: str, store: Mapping[str, Json], ref: Json, key: str | None
) -> dict[str, str] | None:
    obj = store.get(ref["name"])
    if obj is None:
        if ref.get("optional"):
            return None
        raise UnresolvableEnv(f'{kind} "{ref["name"]}" not found')
    data: dict[str, str] = dict(obj.get("data") or {})
    if kind == "secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
    if key is not None and key not in data:
        if ref.get("optional"):
            return None
        raise UnresolvableEnv(f"couldn't find key {key} in {kind} {ref['name']}")
    return data


def _expand(value: str, env: Mapping[str, str]) -> str:
    # $(VAR) refers to an earlier var; $$(VAR) is an escaped literal; unknown refs stay as written.
    def replace(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$?\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, value)


def container_env(
    pod: Json, container: Json, sources: EnvSources, base: Mapping[str, str]
) -> dict[str, str]:
    """A container's environment: base, then envFrom, then env, in order."""
    env = dict(base)
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = _from_object("configmap", sources.config_maps, source["configMapRef"], None)
        else:
            data = _from_object("secret", sources.secrets, source["secretRef"], None)
        for key, value in (data or {}).items():
            env[prefix + key] = value
    for var in container.get("env", []):
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = _expand(var.get("value", ""), env)
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            env[name] = field_value(
                pod, ref["fieldRef"]["fieldPath"], sources.pod_ip, sources.host_ip
            )
        elif "resourceFieldRef" in ref:
            field = ref["resourceFieldRef"]
            target = next(
                (c for c in pod["spec"]["containers"] if c["name"] == field.get("containerName")),
                container,
            )
            env[name] = resource_value(
                target, field["resource"], field.get("divisor"), sources.node_capacity
            )
        else:
            kind, key_ref = (
                ("configmap", ref["configMapKeyRef"])
                if "configMapKeyRef" in ref
                else ("secret", ref["secretKeyRef"])
            )
            store = sources.config_maps if kind == "configmap" else sources.secrets
            data = _from_object(kind, store, key_ref, key_ref["key"])
            if data is not None:
                env[name] = data[key_ref["key"]]
    return env


@dataclass
class ContainerState:
    """What the node knows about one container right now."""

    name: str
    running: bool = False
    ready: bool = False
    started_at: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    reason: str | None = None
    message: str | None = None
    restart_count: int = 0
    waiting_reason: str | None = None
    waiting_message: str | None = None
    last_terminated: Json | None = None

    def status(self, image: str) -> Json:
        """The ``containerStatuses`` entry."""
        state: Json
        if self.running:
            state = {"running": {"startedAt": self.started_at}}
        elif self.exit_code is not None and self.waiting_reason is None:
            state = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": self.reason or "Completed",
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                    **({"message": self.message} if self.message else {}),
                }
            }
        else:
            state = {
                "waiting": {
                    "reason": self.waiting_reason or "ContainerCreating",
                    **({"message": self.waiting_message} if self.waiting_message else {}),
                }
            }
        result: Json = {
            "name": self.name,
            "image": image,
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.running,
            "state": state,
        }
        if self.last_terminated:
            result["lastState"] = {"terminated": self.last_terminated}
        return result


def pod_phase(restart_policy: str, states: list[ContainerState]) -> str:
    """The pod phase from its containers, following the kubelet's rules."""
    if any(s.running for s in states):
        return "Running"
    finished = [s for s in states if s.exit_code is not None and s.waiting_reason is None]
    if len(finished) < len(states):
        return "Pending"
    failed = any(s.exit_code != 0 for s in finished)
    if restart_policy == "Always" or (restart_policy == "OnFailure" and failed):
        # About to be restarted: the pod keeps running.
        return "Running"
    return "Failed" if failed else "Succeeded"
