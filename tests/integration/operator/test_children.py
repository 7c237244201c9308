"""`handlers.children` against the real API server: what it skips, when it asks again, and
what it never touches.

A child applied unchanged within the resync period is not applied again, unless the
caller did not see it (someone deleted it); a changed manifest is always applied; a
child known to be gone is not deleted again; past the resync period every call goes
through. Each case deletes or edits the object by hand in between, so a skipped call
and a made one leave different objects behind. An object of the child's name that the
owner does not control (no controller, or another owner) is neither changed nor
deleted, and the conflict is reported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.handlers import children
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.k8s import NotFound
from mlops_operator.runtime.settings import OperatorSettings
from tests.integration.operator.conftest import operator_client


@pytest.fixture
async def context(kubeconfig: Path) -> AsyncIterator[OperatorContext]:
    """The operator's context, its client logged in the way the operator logs in."""
    async with operator_client(kubeconfig) as kube:
        yield OperatorContext.create(OperatorSettings(), kube)


@pytest.fixture
async def owner(context: OperatorContext, namespace: str) -> str:
    """The uid of a real object that owns the children (the garbage collector deletes a child
    whose owner does not exist)."""
    parent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "parent", "namespace": namespace},
    }
    return str((await context.kube.create(parent))["metadata"]["uid"])


def _config_map(namespace: str, value: str, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "child", "namespace": namespace}
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": owner,
             "controller": True}
        ]  # fmt: skip
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"key": value}}


async def _value(context: OperatorContext, namespace: str) -> str | None:
    try:
        found = await context.kube.get("v1", "ConfigMap", "child", namespace)
    except NotFound:
        return None
    return str(found["data"]["key"])


async def test_an_unchanged_child_is_applied_once_per_resync_period(
    context: OperatorContext, namespace: str, owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await children.apply(context, _config_map(namespace, "a", owner), exists=True)
    assert await _value(context, namespace) == "a"

    await context.kube.delete("v1", "ConfigMap", "child", namespace)
    await children.apply(context, _config_map(namespace, "a", owner), exists=True)
    assert await _value(context, namespace) is None, "an unchanged, seen child was applied again"

    await children.apply(context, _config_map(namespace, "a", owner), exists=False)
    assert await _value(context, namespace) == "a", "a child the caller did not see was skipped"

    await children.apply(context, _config_map(namespace, "b", owner), exists=True)
    assert await _value(context, namespace) == "b", "a changed manifest was skipped"

    monkeypatch.setattr(context.applied, "ttl", 0.0)
    await context.kube.delete("v1", "ConfigMap", "child", namespace)
    await children.apply(context, _config_map(namespace, "b", owner), exists=True)
    assert await _value(context, namespace) == "b", "past the resync period nothing may be skipped"


async def test_a_child_known_gone_is_not_deleted_again_within_the_period(
    context: OperatorContext, namespace: str, owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await children.delete(
        context, "v1", "ConfigMap", "child", namespace, owner=owner
    )  # absent: fine
    await context.kube.apply(_config_map(namespace, "made by hand", owner))
    await children.delete(context, "v1", "ConfigMap", "child", namespace, owner=owner)
    assert await _value(context, namespace) == "made by hand", "a known-gone child was deleted"

    monkeypatch.setattr(context.applied, "ttl", 0.0)
    await children.delete(context, "v1", "ConfigMap", "child", namespace, owner=owner)
    assert await _value(context, namespace) is None, "past the resync period it must be deleted"

    await children.apply(context, _config_map(namespace, "c", owner), exists=True)
    monkeypatch.setattr(context.applied, "ttl", 60.0)
    await children.delete(context, "v1", "ConfigMap", "child", namespace, owner=owner)
    assert await _value(context, namespace) is None, "an applied child was not deleted"


async def test_an_object_the_owner_does_not_control_is_left_alone_and_reported(
    context: OperatorContext, namespace: str, owner: str
) -> None:
    unrelated = await context.kube.create(_config_map(namespace, "someone else's"))
    conflict = await children.apply(context, _config_map(namespace, "mine", owner), exists=False)
    assert conflict is not None
    assert "ConfigMap child already exists and has no controller" in conflict
    await children.delete(context, "v1", "ConfigMap", "child", namespace, owner=owner)
    kept = await context.kube.get("v1", "ConfigMap", "child", namespace)
    assert kept["metadata"]["uid"] == unrelated["metadata"]["uid"]
    assert kept["metadata"]["resourceVersion"] == unrelated["metadata"]["resourceVersion"]
    assert kept["data"] == {"key": "someone else's"}
    assert "ownerReferences" not in kept["metadata"]
