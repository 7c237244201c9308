"""Pod overrides (`mlops_operator.api.pods`) merged over a generated pod template.

Each builder renders its pod, then `with_overrides` lays the operator's defaults
for the workload and the object's overrides over it, in that order (see the
semantics in `mlops_operator.api.pods`). Pure: a template in, a new one out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlops_operator.api.fields import ResourceRequirements, quantity_value
from mlops_operator.api.pods import PodOverrides

__all__ = ["with_overrides"]


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
