"""The closed loop, run once and shared: `test_loop` asserts each stage, the console's browser
tests look at what it left behind (v1, drift, the retrain to v2, the canary, the promotion).

The loop costs minutes; both tests need the same objects, so they share one run in a
namespace of its own, removed at the end of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops_operator.demo.loop import Demo, Stage
from tests.kube import delete_namespace


@dataclass
class ClosedLoop:
    """The loop as it ran: the demo (its namespace, operator, marks) and each stage's facts."""

    demo: Demo
    stages: dict[str, Stage] = field(default_factory=dict)
    origin: float = 0.0
    psi: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.demo.namespace


@pytest.fixture(scope="session")
def closed_loop(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClosedLoop]:
    """v1 trained, deployed, drifted, retrained into v2 on the logged traffic, v2 promoted."""
    demo = Demo(namespace=f"e2e-loop-{uuid.uuid4().hex[:6]}", out=tmp_path_factory.mktemp("loop"))
    loop = ClosedLoop(demo)
    try:
        loop.origin = demo.start().finished
        loop.stages["train_v1"] = demo.train_v1()
        demo.deploy()
        loop.stages["reference"] = demo.watch_reference(evaluations=3)
        loop.stages["shift"] = demo.shift()
        loop.stages["retrain"] = demo.retrain()
        loop.stages["rollout"] = demo.rollout()
        loop.stages["recover"] = demo.recover(evaluations=2)
        assert demo.traffic is not None
        demo.traffic.stop()
        loop.psi = demo.psi_series()
        yield loop
    finally:
        # The operator releases its finalizers, so the namespace can go afterwards.
        demo.finish(remove=True)
        delete_namespace(kubeconfig, demo.namespace)
