"""Control-plane faults: kube-apiserver or etcd stopped and restarted mid-reconciliation.

On a private control plane (never the shared cluster), a burst of suspended
TrainingJobs is applied and the component is stopped at once, while the
operator is still working through them. While it is down the operator keeps
running and its liveness probe answers 500 (the API server is not ready);
once it is back the probe answers 200 again, every TrainingJob of the burst
converges to ``Suspended`` with exactly one Job, and objects created or
changed after the outage are reconciled: the watches resumed by themselves.

The watch cut puts a loopback TCP proxy (`BlackHoleProxy`) between the operator
and the API server and then drops every byte both ways while keeping the
connections open, as a lost NAT or load-balancer entry does: nothing ends the
operator's watches, only its own inactivity timeout (4 s here instead of 70, through
the setting production uses; the 300/330 s watch timeouts stay), and a request in
flight at the cut only its request timeout (10 s here instead of 60). While cut, its
readiness probe answers 500 (its ``/readyz`` check goes through the proxy too) while liveness
stays 200, and it lets go of every connection that was open when the cut began; once new
connections flow again (the old ones never do), readiness answers 200 without a restart, and
objects created and changed during the cut and after it converge.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import pytest
import yaml

from mlops_operator.localcluster.cluster import LocalCluster
from mlops_operator.localcluster.processes import ManagedProcess
from tests.integration.operator.conftest import RunningOperator, http_get, start_operator
from tests.integration.trainingjob.conftest import apply, items, trainer_job, training_job
from tests.kube import kubectl, wait_for

# One worker makes the module's private control plane once (etcd and an API server of its own).
pytestmark = [pytest.mark.reliability, pytest.mark.xdist_group("private-control-plane")]

BURST = 12
OUTAGE_TIMEOUT = 90
RECOVERY_TIMEOUT = 180


def _suspended(config: Path, namespace: str) -> set[str]:
    """The TrainingJobs whose status says they are held (the operator reconciled them)."""
    held = set()
    for obj in items(config, namespace, "trainingjobs"):
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Suspended" and c["status"] == "True" for c in conditions):
            held.add(obj["metadata"]["name"])
    return held


def _liveness(running: RunningOperator) -> int | None:
    answer = http_get(running.liveness_url)
    return None if answer is None else answer[0]


def _readiness(running: RunningOperator) -> int | None:
    answer = http_get(running.readiness_url)
    return None if answer is None else answer[0]


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_the_operator_rides_out_a_control_plane_restart(
    component: str, private_cluster: LocalCluster, private_namespace: str, tmp_path: Path
) -> None:
    config, namespace = private_cluster.layout.admin_kubeconfig, private_namespace
    running = start_operator(config, namespace, tmp_path / "operator.log")
    try:
        burst = [training_job(namespace, f"held-{i}", suspend=True) for i in range(BURST)]
        kubectl(
            config,
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": burst}),
        )
        assert ManagedProcess(component, private_cluster.layout.root).stop()

        wait_for(
            lambda: _readiness(running) == 500,
            timeout=OUTAGE_TIMEOUT,
            what=f"the readiness probe to report the stopped {component}",
        )
        assert running.process.poll() is None, "the operator exited during the outage"
        assert _liveness(running) == 200, "liveness must not follow the API server"
        answer = http_get(running.readiness_url)
        assert answer is not None, "the readiness probe did not answer"
        assert answer[0] == 500, answer
        assert answer[1].startswith("not ready (standalone): GET "), answer

        private_cluster.up()
        wait_for(
            lambda: _readiness(running) == 200,
            timeout=RECOVERY_TIMEOUT,
            what="the readiness probe to recover",
        )
        assert _liveness(running) == 200
        kubectl(
            config,
            "apply",
            "-f",
            "-",
            stdin=json.dumps(training_job(namespace, "after", suspend=True)),
        )
        expected = {doc["metadata"]["name"] for doc in burst} | {"after"}
        wait_for(
            lambda: _suspended(config, namespace) == expected,
            timeout=RECOVERY_TIMEOUT,
            what="every TrainingJob to be reconciled after the restart",
        )
        jobs = [
            j["metadata"]["labels"]["mlops.dev/training-job"]
            for j in items(config, namespace, "jobs")
        ]
        assert sorted(jobs) == sorted(expected), "not exactly one Job per TrainingJob"

        kubectl(
            config,
            "patch",
            "trainingjob",
            "held-0",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec": {"suspend": false}}',
        )
        wait_for(
            lambda: trainer_job(config, namespace, "held-0")["spec"]["suspend"] is False,
            timeout=RECOVERY_TIMEOUT,
            what="the spec change after the outage to reach the Job",
        )
        assert running.process.poll() is None
    finally:
        if running.process.poll() is None:
            running.stop()


# The production settings but one: a watch with no event (not even a bookmark) for 4 s,
# not 70, is taken for dead. The server and client timeouts (300 s, 330 s) stay far longer
# than the test, so only the inactivity timeout can notice the cut.
CUT_SETTINGS = {"MLOPS_WATCH_INACTIVITY_TIMEOUT": "4", "MLOPS_API_REQUEST_TIMEOUT": "10"}
# Seconds from the cut by which the operator must have let go of every connection open
# then: its silent watches after the 4 s inactivity timeout, a request that was in flight
# at the cut (an Event, Kopf's annotation patch) after the 10 s request timeout, its idle
# pooled connections after aiohttp's keep-alive (15 s, checked every 15 s: up to 30 s).
# With the default 70 s inactivity timeout the watches would still hang on.
CUT_DEADLINE = 50

T = TypeVar("T")


@dataclass(eq=False)
class _Link:
    """One proxied connection; `dead` ones drop every byte, both ways, forever."""

    ident: int
    dead: bool
    # Whether the client wrote to it since it died: a request that will time out, or the
    # TLS close alert of a connection given up (asyncio then waits 30 s for the answer
    # that never comes before it closes the socket).
    spoken: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class BlackHoleProxy:
    """A loopback TCP proxy to `upstream` that can drop every byte while keeping connections open.

    `cut` kills every connection open at that moment (they stay open, silent both ways,
    even after `restore`: the lost NAT entry never comes back) and every connection
    opened until `restore`. It runs its own event loop in a thread.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._links: dict[int, _Link] = {}
        self._ids = itertools.count()
        self._cut = False
        self._server: asyncio.Server | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def silent(self, links: set[int]) -> set[int]:
        """Those of `links` that the client neither closed nor wrote to since they died."""
        return self._call(self._silent(links))

    def cut(self) -> set[int]:
        """Black-hole every connection, open now or opened until `restore`; those open now."""
        return self._call(self._set_cut(True))

    def restore(self) -> None:
        """Let new connections through again (the cut ones stay silent)."""
        self._call(self._set_cut(False))

    async def _silent(self, links: set[int]) -> set[int]:
        return {i for i in links if i in self._links and not self._links[i].spoken}

    async def _set_cut(self, cut: bool) -> set[int]:
        self._cut = cut
        for link in self._links.values():
            link.dead = link.dead or cut
        return set(self._links)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [task for link in self._links.values() for task in link.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(next(self._ids), dead=self._cut)
        link.tasks.add(asyncio.current_task())  # type: ignore[arg-type]  # always in a task
        self._links[link.ident] = link
        try:
            if link.dead:
                # The path is gone: the upstream is never reached; the client's bytes vanish.
                await self._pump(reader, None, link, client=True)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            upstream = asyncio.ensure_future(self._from_upstream(up_reader, writer, link))
            link.tasks.add(upstream)
            try:
                await self._pump(reader, up_writer, link, client=True)
            finally:
                upstream.cancel()
                up_writer.close()
        finally:
            # The client closed (or reset) its end: that is what the tests watch for.
            self._links.pop(link.ident, None)
            writer.close()

    async def _from_upstream(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link
    ) -> None:
        await self._pump(source, sink, link, client=False)
        if not link.dead:
            sink.close()  # the API server closed: so does the proxy, while the path works
        # On a dead link the upstream's FIN is lost on the way: the client's end stays open.

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter | None,
        link: _Link,
        *,
        client: bool,
    ) -> None:
        """Copy until EOF; once the link is dead, read and drop."""
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if link.dead or sink is None:
                    link.spoken = link.spoken or client
                    continue
                sink.write(data)
                await sink.drain()


def _via(proxy: BlackHoleProxy, config: Path, path: Path) -> Path:
    """A copy of kubeconfig `config` whose server is `proxy`."""
    document = yaml.safe_load(config.read_text())
    for cluster in document["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(document))
    return path


def _upstream(config: Path) -> tuple[str, int]:
    """Host and port of the API server in kubeconfig `config`."""
    server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
    host, port = urlsplit(server).netloc.rsplit(":", 1)
    return host, int(port)


def _converged_after_the_cut(config: Path, namespace: str) -> bool:
    """Created during the cut and after it: reconciled; changed during it: applied to the Job."""
    if not _suspended(config, namespace) >= {"during", "after"}:
        return False
    job = trainer_job(config, namespace, "before")
    return job["spec"]["suspend"] is False


def test_the_operator_notices_a_black_holed_watch_and_resumes(
    private_cluster: LocalCluster,
    private_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, namespace = private_cluster.layout.admin_kubeconfig, private_namespace
    for name, value in CUT_SETTINGS.items():
        monkeypatch.setenv(name, value)  # the operator subprocess inherits them
    with BlackHoleProxy(_upstream(config)) as proxy:
        proxied = _via(proxy, config, tmp_path / "proxied.kubeconfig")
        running = start_operator(proxied, namespace, tmp_path / "operator.log")
        try:
            pid = running.process.pid
            apply(config, training_job(namespace, "before", suspend=True))
            wait_for(
                lambda: "before" in _suspended(config, namespace),
                timeout=RECOVERY_TIMEOUT,
                what="the first TrainingJob to be reconciled",
            )

            dead, cut_at = proxy.cut(), time.monotonic()
            assert dead, "the operator had no connection open through the proxy"
            apply(config, training_job(namespace, "during", suspend=True))
            kubectl(config, "patch", "trainingjob", "before", "-n", namespace,
                    "--type=merge", "-p", '{"spec": {"suspend": false}}')  # fmt: skip
            wait_for(
                lambda: _readiness(running) == 500,
                timeout=CUT_DEADLINE,
                what="the readiness probe to report the black-holed API server",
            )
            failing_after = time.monotonic() - cut_at
            wait_for(
                lambda: not proxy.silent(dead),
                timeout=CUT_DEADLINE - failing_after,
                what=f"the operator to let go of each of the {len(dead)} connections open at"
                " the cut (silent watches and idle ones)",
            )
            assert running.process.poll() is None, "the operator exited during the cut"
            assert _liveness(running) == 200, "liveness must not follow the API server"
            assert "during" not in _suspended(config, namespace), "a byte got through the cut"

            cut_for = time.monotonic() - cut_at
            proxy.restore()
            apply(config, training_job(namespace, "after", suspend=True))
            wait_for(
                lambda: _converged_after_the_cut(config, namespace),
                timeout=RECOVERY_TIMEOUT,
                what="the objects created and changed during and after the cut to converge",
            )
            converged_after = time.monotonic() - cut_at - cut_for
            wait_for(
                lambda: _readiness(running) == 200,
                timeout=RECOVERY_TIMEOUT,
                what="the readiness probe to recover",
            )
            assert running.process.poll() is None, "the operator exited"
            assert running.process.pid == pid
            print(
                f"watch cut: {len(dead)} connections black-holed; readiness failing after"
                f" {failing_after:.1f}s; all let go after {cut_for:.1f}s (cut lifted);"
                f" converged {converged_after:.1f}s after the cut"
            )
        finally:
            if running.process.poll() is None:
                running.stop()
