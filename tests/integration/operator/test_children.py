"""`handlers.children` against the real API server: what it skips, and when it asks again.

A child applied unchanged within the resync period is not applied again, unless the
caller did not see it (someone deleted it); a changed manifest is always applied; a
child known to be gone is not deleted again; past the resync period every call goes
through. Each case deletes or edits the object by hand in between, so a skipped call
and a made one leave different objects behind.
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


def _config_map(namespace: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "child", "namespace": namespace},
        "data": {"key": value},
    }


async def _value(context: OperatorContext, namespace: str) -> str | None:
    try:
        found = await context.kube.get("v1", "ConfigMap", "child", namespace)
    except NotFound:
        return None
    return str(found["data"]["key"])


async def test_an_unchanged_child_is_applied_once_per_resync_period(
    context: OperatorContext, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await children.apply(context, _config_map(namespace, "a"), exists=True)
    assert await _value(context, namespace) == "a"

    await context.kube.delete("v1", "ConfigMap", "child", namespace)
    await children.apply(context, _config_map(namespace, "a"), exists=True)
    assert await _value(context, namespace) is None, "an unchanged, seen child was applied again"

    await children.apply(context, _config_map(namespace, "a"), exists=False)
    assert await _value(context, namespace) == "a", "a child the caller did not see was skipped"

    await children.apply(context, _config_map(namespace, "b"), exists=True)
    assert await _value(context, namespace) == "b", "a changed manifest was skipped"

    monkeypatch.setattr(context.applied, "ttl", 0.0)
    await context.kube.delete("v1", "ConfigMap", "child", namespace)
    await children.apply(context, _config_map(namespace, "b"), exists=True)
    assert await _value(context, namespace) == "b", "past the resync period nothing may be skipped"


async def test_a_child_known_gone_is_not_deleted_again_within_the_period(
    context: OperatorContext, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await children.delete(context, "v1", "ConfigMap", "child", namespace)  # absent: fine
    await context.kube.apply(_config_map(namespace, "made by hand"))
    await children.delete(context, "v1", "ConfigMap", "child", namespace)
    assert await _value(context, namespace) == "made by hand", "a known-gone child was deleted"

    monkeypatch.setattr(context.applied, "ttl", 0.0)
    await children.delete(context, "v1", "ConfigMap", "child", namespace)
    assert await _value(context, namespace) is None, "past the resync period it must be deleted"

    await children.apply(context, _config_map(namespace, "c"), exists=True)
    monkeypatch.setattr(context.applied, "ttl", 60.0)
    await children.delete(context, "v1", "ConfigMap", "child", namespace)
    assert await _value(context, namespace) is None, "an applied child was not deleted"
