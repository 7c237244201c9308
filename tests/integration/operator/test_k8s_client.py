"""The handlers' API client against the real API server.

Aspects: server-side apply creates, re-applies idempotently and records the
field manager; create refuses a duplicate with Conflict; get of a missing
object raises NotFound; status patches land in the status subresource of our
kinds; lists filter by label and follow pagination; unknown kinds are refused.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.k8s import FIELD_MANAGER, ApiError, Conflict, KubeClient, NotFound
from tests.integration.operator.conftest import REPO, operator_client
from tests.kube import kubectl


@pytest.fixture
async def kube(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    """A client logged in the way the operator logs in, with pages of two objects."""
    async with operator_client(kubeconfig, page_size=2) as client:
        yield client


def _config_map(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"key": "value"},
    }


async def test_apply_creates_then_reapplies_idempotently(kube: KubeClient, namespace: str) -> None:
    first = await kube.apply(_config_map("applied", namespace))
    again = await kube.apply(_config_map("applied", namespace))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    managers = {entry["manager"] for entry in again["metadata"]["managedFields"]}
    assert managers == {FIELD_MANAGER}

    changed = _config_map("applied", namespace)
    changed["data"] = {"key": "other"}
    assert (await kube.apply(changed))["data"] == {"key": "other"}


async def test_create_refuses_a_duplicate_and_get_a_missing_object(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(_config_map("created", namespace))
    with pytest.raises(Conflict) as duplicate:
        await kube.create(_config_map("created", namespace))
    assert duplicate.value.reason == "AlreadyExists"
    assert (await kube.get("v1", "ConfigMap", "created", namespace))["data"] == {"key": "value"}
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "missing", namespace)


async def test_status_patches_land_in_the_status_subresource(
    kube: KubeClient, kubeconfig: Path, crds: list[Path], namespace: str
) -> None:
    doc = yaml.safe_load((REPO / "manifests" / "examples" / "trainingjob.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(doc))
    name = doc["metadata"]["name"]
    patched = await kube.patch_status(
        "mlops.dev/v1alpha1", "TrainingJob", name, namespace, {"observedGeneration": 1}
    )
    assert patched["status"]["observedGeneration"] == 1
    stored = await kube.get("mlops.dev/v1alpha1", "TrainingJob", name, namespace)
    assert stored["status"]["observedGeneration"] == 1
    assert stored["metadata"]["generation"] == 1  # a status write is not a spec change


async def test_lists_filter_by_label_across_pages(kube: KubeClient, namespace: str) -> None:
    for i in range(5):
        await kube.apply(_config_map(f"mine-{i}", namespace, owner="me"))
    await kube.apply(_config_map("theirs", namespace, owner="them"))
    mine = await kube.list("v1", "ConfigMap", namespace, labels={"owner": "me"})
    assert sorted(item["metadata"]["name"] for item in mine) == [f"mine-{i}" for i in range(5)]
    everywhere = await kube.list("v1", "ConfigMap", labels={"owner": "me"})
    assert {item["metadata"]["namespace"] for item in everywhere} >= {namespace}


async def test_an_unknown_kind_is_refused(kube: KubeClient) -> None:
    with pytest.raises(ApiError, match="no kind Gadget in v1"):
        await kube.get("v1", "Gadget", "x", "default")


async def test_an_unserved_group_is_a_not_found_error(kube: KubeClient) -> None:
    # Discovery answers a group it does not serve with plain text, not a Status.
    with pytest.raises(NotFound, match="404 page not found"):
        await kube.get("monitoring.coreos.com/v1", "ServiceMonitor", "x", "default")
