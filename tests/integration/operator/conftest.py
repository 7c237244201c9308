"""Fixtures for the operator against the session's real API server: CRDs, a namespace, a running operator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api import KINDS
from mlops_operator.k8s import Connection, KubeClient
from mlops_operator.k8s.kubeconfig import Overrides, load
from tests.kube import delete_namespace, kubectl, wait_established, wait_for
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[3]
CRDS = sorted((REPO / "crds").glob("mlops.dev_*.yaml"))
MLOPS = Path(sys.executable).with_name("mlops")


@pytest.fixture(scope="session")
def crds(kubeconfig: Path) -> list[Path]:
    """The generated CRDs, applied and Established."""
    if not CRDS:
        pytest.fail(f"no generated CRDs in {REPO / 'crds'}")
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", *(f"-f={p}" for p in CRDS))
    names = [f"crd/{p.stem.split('_', 1)[1]}.mlops.dev" for p in CRDS]
    wait_established(kubeconfig, *names)
    return CRDS


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    """A fresh namespace, deleted afterwards (without waiting for it to go)."""
    name = f"op-it-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "create", "namespace", name)
    yield name
    delete_namespace(kubeconfig, name)


def http_get(url: str) -> tuple[int, str] | None:
    """Status and body of GET `url`, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@dataclass
class RunningOperator:
    """`mlops operator run` in a subprocess, with its endpoints and its log."""

    process: subprocess.Popen[bytes]
    liveness_url: str
    metrics_url: str
    log: Path

    @property
    def readiness_url(self) -> str:
        """``/readyz``: whether the operator can reach a ready API server."""
        return self.liveness_url.removesuffix("/healthz") + "/readyz"

    def metrics(self) -> str:
        """The current scrape."""
        answer = http_get(self.metrics_url)
        assert answer is not None, "the metrics endpoint did not answer"
        status, body = answer
        assert status == 200, f"metrics answered {status}: {body}"
        return body

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status (killed and failed if it does not exit in time)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"no exit {timeout:.0f}s after SIGTERM; log: {self.log}") from None


def start_operator(
    kubeconfig: Path, namespace: str, log: Path, *, logged: str | None = None
) -> RunningOperator:
    """Start the operator watching `namespace`, logged in with `kubeconfig` (its ``KUBECONFIG``);
    return once its readiness probe answers (or, given `logged`, the moment its log has it)."""
    liveness, metrics = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    command = [
        str(MLOPS),
        "operator",
        "run",
        f"--namespace={namespace}",
        "--bind-address=127.0.0.1",
        f"--liveness-port={liveness}",
        f"--metrics-port={metrics}",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    running = RunningOperator(
        process,
        f"http://127.0.0.1:{liveness}/healthz",
        f"http://127.0.0.1:{metrics}/metrics",
        log,
    )

    def live() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"the operator exited with {process.returncode}: {log.read_text()}"
            )
        if logged is not None:
            return logged in log.read_text()
        answer = http_get(running.readiness_url)
        return answer is not None and answer[0] == 200

    # A log line is a moment, not a state: looked for often, to act right after it.
    wait_for(live, timeout=60, interval=0.25 if logged is None else 0.005,
             what=f"the operator to log {logged!r}" if logged else "the operator's readiness probe")  # fmt: skip
    return running


MLOPS_KINDS = ",".join(kind.crd.name for kind in KINDS)


@contextmanager
def operator_for_test(
    kubeconfig: Path, namespace: str, log: Path, *, credentials: Path | None = None
) -> Iterator[RunningOperator]:
    """The operator for `namespace` during the block, logged in with `credentials` (default:
    the admin's `kubeconfig`, with which the test cleans up); retired at its end.

    Retiring deletes the namespace's mlops.dev objects while the operator still runs, so it
    releases its finalizer on them: stopped first, it would leave them, and the namespace
    after them, Terminating for good, with the namespace controller retrying all the while
    (dozens of those kept the API server at over a CPU by the end of a suite run).
    """
    running = start_operator(credentials or kubeconfig, namespace, log)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            # Best effort: a slow deletion must not fail the test it cleans up after.
            kubectl(
                kubeconfig, "delete", MLOPS_KINDS, "--all", "-n", namespace,
                "--wait=true", "--timeout=30s", check=False, timeout=60,
            )  # fmt: skip
            running.stop()


@pytest.fixture
def operator(
    kubeconfig: Path, crds: list[Path], namespace: str, tmp_path: Path
) -> Iterator[RunningOperator]:
    """The operator, running against `namespace` for one test, then retired."""
    with operator_for_test(kubeconfig, namespace, tmp_path / "operator.log") as running:
        yield running


@asynccontextmanager
async def operator_client(kubeconfig: Path, **options: Any) -> AsyncIterator[KubeClient]:
    """The handlers' API client (with `options`), logged in with `kubeconfig` as the operator
    logs in: through the one kubeconfig loader."""
    client = KubeClient(**options)
    await client.connect(Connection.from_target(load(Overrides(kubeconfig=kubeconfig))))
    try:
        yield client
    finally:
        await client.close()
