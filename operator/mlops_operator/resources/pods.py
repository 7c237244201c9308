"""Pod overrides (`mlops_operator.api.pods`) merged over a generated pod template.

Each builder renders its pod, then `with_overrides` lays the operator's defaults
for the workload and the object's overrides over it, in that order (see the
semantics in `mlops_operator.api.pods`). Pure: a template in, a new one out.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlops_operator.api.fields import ResourceRequirements, quantity_value
from mlops_operator.api.pods import PodOverrides
from mlops_operator.podcontract import THREAD_ENV

__all__ = ["with_cpu_threads", "with_overrides"]


def _dump(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items]


def _by_key(
    current: Sequence[Mapping[str, Any]], added: Sequence[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """`current` with `added` appended, an entry of `added` replacing one with the same key."""
    keys = {entry[key] for entry in added}
    return [dict(e) for e in current if e.get(key) not in keys] + list(added)


def _at_least(limit: str | int, request: str | int) -> bool:
    return quantity_value(limit) >= quantity_value(request)


def _resources(current: Mapping[str, Any] | None, layer: ResourceRequirements) -> dict[str, Any]:
    """Per resource, the layer wins; a request raised above an inherited limit raises the limit
    (the API server refuses a request above its limit)."""
    merged = {section: dict(values) for section, values in (current or {}).items()}
    for section, values in (("requests", layer.requests), ("limits", layer.limits)):
        if values:
            merged.setdefault(section, {}).update(values)
    limits = merged.get("limits", {})
    for name, request in (layer.requests or {}).items():
        given = name in (layer.limits or {})
        if name in limits and not given and not _at_least(limits[name], request):
            limits[name] = request
    return merged


def with_overrides(
    template: Mapping[str, Any], container: str, layers: Sequence[PodOverrides | None]
) -> dict[str, Any]:
    """`template` (a pod template: metadata and spec) with `layers` merged over it, in order.

    `container` names the workload's container, which gets the resources, env and mounts.
    """
    result = copy.deepcopy(dict(template))
    metadata = result.setdefault("metadata", {})
    spec = result["spec"]
    main = next(c for c in spec["containers"] if c["name"] == container)
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for layer in (layer for layer in layers if layer is not None):
        labels |= layer.labels or {}
        annotations |= layer.annotations or {}
        if layer.resources is not None:
            main["resources"] = _resources(main.get("resources"), layer.resources)
        if layer.node_selector:
            spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **layer.node_selector}
        if layer.tolerations:
            tolerations = spec.get("tolerations", [])
            spec["tolerations"] = tolerations + [
                t for t in _dump(layer.tolerations) if t not in tolerations
            ]
        if layer.affinity is not None:
            spec["affinity"] = copy.deepcopy(layer.affinity)
        if layer.priority_class_name:
            spec["priorityClassName"] = layer.priority_class_name
        if layer.service_account_name:
            spec["serviceAccountName"] = layer.service_account_name
        if layer.image_pull_secrets:
            secrets = _dump(layer.image_pull_secrets)
            spec["imagePullSecrets"] = _by_key(spec.get("imagePullSecrets", []), secrets, "name")
        if layer.env:
            main["env"] = _by_key(main.get("env", []), _dump(layer.env), "name")
        if layer.volumes:
            spec["volumes"] = _by_key(spec.get("volumes", []), _dump(layer.volumes), "name")
        if layer.volume_mounts:
            mounts = _dump(layer.volume_mounts)
            main["volumeMounts"] = _by_key(main.get("volumeMounts", []), mounts, "mountPath")
    # The operator's own labels and annotations win: selectors and scraping depend on them.
    if labels:
        metadata["labels"] = labels | dict(metadata.get("labels") or {})
    if annotations:
        metadata["annotations"] = annotations | dict(metadata.get("annotations") or {})
    return result


def with_cpu_threads(template: Mapping[str, Any], container: str) -> dict[str, Any]:
    """`template` with `container`'s numeric thread pools (`THREAD_ENV`) sized to the CPUs it
    may use: its whole CPUs of a limit (as the inference server counts them: more threads than
    the quota only get throttled), or without one its CPU request rounded up; at least one. An
    override that names either variable has both to itself; with no CPU figure the libraries
    keep their own default."""
    result = copy.deepcopy(dict(template))
    main = next(c for c in result["spec"]["containers"] if c["name"] == container)
    resources = main.get("resources") or {}
    limit = (resources.get("limits") or {}).get("cpu")
    request = (resources.get("requests") or {}).get("cpu")
    env = main.get("env") or []
    if any(e["name"] in THREAD_ENV for e in env):
        return result
    if limit is not None:
        cpus = math.floor(quantity_value(limit))
    elif request is not None:
        cpus = math.ceil(quantity_value(request))
    else:
        return result
    main["env"] = [*env, *({"name": name, "value": str(max(1, cpus))} for name in THREAD_ENV)]
    return result
