"""Graceful shutdown: SIGTERM under load loses no request.

The real `mlops serve` runs as a subprocess on a free loopback port (one worker,
and two workers behind SO_REUSEPORT with the supervisor); 16 clients keep
posting; SIGTERM arrives mid-load. The test plays Kubernetes' part the way a
rolling update does: a probe watches readiness, and once the pod reports not
ready its endpoint is removed, so clients send it nothing new. Every request
sent before that, including those in flight at SIGTERM and those sent during
the drain, must be answered 200. The load is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.ports import free_port
from tests.unit.serving.conftest import ModelDir

CLIENTS = 16
MAX_REQUESTS_PER_CLIENT = 400
SIGTERM_AFTER = 300


async def _wait_for_lines(stream: asyncio.StreamReader, needle: str, count: int) -> list[str]:
    seen: list[str] = []
    while sum(needle in line for line in seen) < count:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("server exited before it was ready:\n" + "".join(seen))
        seen.append(line)
    return seen


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_mid_load_loses_no_request(
    iris_lr: ModelDir, tmp_path: Path, workers: int
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mlops_operator.cli", "serve",
        "--model-dir", str(iris_lr.path), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--intra-op-threads", "1", "--drain-seconds", "1",
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        log = await asyncio.wait_for(_wait_for_lines(process.stderr, " on http://", workers), 120)
        outcomes: Counter[str] = Counter()
        enough, endpoint_removed = asyncio.Event(), asyncio.Event()
        base = f"http://127.0.0.1:{port}"
        body = {"rows": [[5.1, 3.5, 1.4, 0.2]]}

        async def client(session: aiohttp.ClientSession) -> None:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if endpoint_removed.is_set():
                    return
                try:
                    async with session.post(base + "/predict", json=body) as response:
                        await response.read()
                        outcomes["ok" if response.status == 200 else f"http {response.status}"] += 1
                except aiohttp.ClientError as error:
                    outcomes[f"lost: {type(error).__name__}"] += 1
                    return
                if outcomes["ok"] >= SIGTERM_AFTER:
                    enough.set()

        async def readiness_probe(session: aiohttp.ClientSession) -> None:
            for _ in range(10_000):
                async with session.get(base + "/v2/health/ready") as response:
                    if response.status == 503:
                        endpoint_removed.set()
                        return
            raise AssertionError("the server never reported not ready after SIGTERM")

        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            load = asyncio.gather(*(client(session) for _ in range(CLIENTS)))
            await asyncio.wait_for(enough.wait(), 120)
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(readiness_probe(session), 60)
            await asyncio.wait_for(load, 120)
        rest = (await asyncio.wait_for(process.stderr.read(), 60)).decode()
        code = await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, "".join(log) + rest
    assert set(outcomes) == {"ok"}, outcomes
    assert outcomes["ok"] >= SIGTERM_AFTER
    assert rest.count("stopped after finishing in-flight requests") == workers
