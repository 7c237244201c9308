"""The kubelet's rules, as the local node applies them: env, quantities, phases."""

from __future__ import annotations

import base64
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.localcluster.podspec import (
    ContainerState,
    EnvSources,
    UnresolvableEnv,
    container_env,
    parse_quantity,
    pod_phase,
)

POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
    "spec": {
        "nodeName": "local-0",
        "serviceAccountName": "sa",
        "containers": [
            {"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}}},
        ],
    },
}


def sources(**kw: Any) -> EnvSources:
    return EnvSources(
        config_maps=kw.get("config_maps", {}),
        secrets=kw.get("secrets", {}),
        pod_ip="10.244.0.7",
        host_ip="10.244.0.1",
        node_capacity={"cpu": "2", "memory": "8Gi"},
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1Gi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        ("128974848", Decimal(128974848)),
        ("129M", Decimal(129_000_000)),
    ],
)
def test_quantities(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_a_malformed_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity("1.5 cores")


def test_env_resolution_order_and_sources() -> None:
    container = {
        "name": "main",
        "resources": {"limits": {"memory": "1Gi"}},
        "envFrom": [
            {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
            {"secretRef": {"name": "s"}},
        ],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "$(A)-$(MISSING)-$$(A)"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        ],
    }
    secret = {"data": {"TOKEN": base64.b64encode(b"t0k").decode()}}
    env = container_env(
        POD,
        container,
        sources(config_maps={"cm": {"data": {"k": "v"}}}, secrets={"s": secret}),
        {"PATH": "/bin"},
    )
    assert env == {
        "PATH": "/bin",
        "CM_k": "v",
        "TOKEN": "t0k",
        "A": "1",
        "B": "1-$(MISSING)-$(A)",
        "POD": "p",
        "APP": "x",
        "IP": "10.244.0.7",
        "CPU": "2",
        "MEM": "1024",
        "KEY": "v",
    }


def test_missing_references_are_errors_unless_optional() -> None:
    missing = {
        "name": "main",
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}],
    }
    with pytest.raises(UnresolvableEnv, match='secret "nope" not found'):
        container_env(POD, missing, sources(), {})
    optional = {
        "name": "main",
        "env": [
            {
                "name": "X",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            }
        ],
    }
    assert "X" not in container_env(POD, optional, sources(), {})


def _done(code: int) -> ContainerState:
    return ContainerState("c", exit_code=code, finished_at="t")


@pytest.mark.parametrize(
    ("policy", "states", "phase"),
    [
        ("Never", [_done(0), _done(0)], "Succeeded"),
        ("Never", [_done(0), _done(1)], "Failed"),
        ("OnFailure", [_done(1)], "Running"),
        ("OnFailure", [_done(0)], "Succeeded"),
        ("Always", [_done(0)], "Running"),
        ("Never", [ContainerState("c", running=True), _done(1)], "Running"),
        ("Never", [ContainerState("c")], "Pending"),
    ],
)
def test_phase_follows_the_kubelet(policy: str, states: list[ContainerState], phase: str) -> None:
    assert pod_phase(policy, states) == phase


def test_container_status_shapes() -> None:
    running = ContainerState("c", running=True, ready=True, started_at="t0", restart_count=2)
    assert running.status("img")["state"] == {"running": {"startedAt": "t0"}}
    assert running.status("img")["restartCount"] == 2
    crashed = ContainerState("c", exit_code=1, reason="Error", waiting_reason="CrashLoopBackOff")
    assert crashed.status("img")["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_a_missing_sub_path_is_made_with_the_volumes_mode_and_never_leaves_it(
    tmp_path: Path,
) -> None:
    from mlops_operator.localcluster.pod import subpath

    root = tmp_path / "claim"
    root.mkdir()
    os.chown(root, -1, 65532)  # the pod's fsGroup, as the node gives it the claim
    root.chmod(0o2775)
    (root / "payload-logs").mkdir(mode=0o755)  # made by someone else, under another group
    os.chown(root / "payload-logs", -1, 0)
    made = subpath(root, "payload-logs/team/iris")
    assert made == root / "payload-logs" / "team" / "iris"
    for level in (root / "payload-logs" / "team", made):
        assert level.is_dir()
        assert level.stat().st_mode & 0o7777 == 0o2775
        assert level.stat().st_gid == 65532
    assert subpath(root, "payload-logs/team/iris") == made  # existing: unchanged
    assert subpath(root, "") == root
    for escape in ("../elsewhere", "a/../../b", "/etc"):
        with pytest.raises(ValueError, match="must be a relative path inside the volume"):
            subpath(root, escape)
