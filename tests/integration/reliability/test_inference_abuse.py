"""The inference server under abuse: generated malformed requests, concurrently, on a real process.

`mlops serve` runs as its own process on loopback with a model `mlops train`
wrote. Hypothesis generates batches of malformed requests — wrong types and
shapes, NaN and infinities, over-long numbers, deep nesting, invalid UTF-8,
wrong content types, bodies over the size limit, too many rows — and each
batch is sent concurrently. Every answer must be below 500 and the server must
keep running; slow bodies (clients that send headers and then stall) must
not starve other clients; a declared oversized body is refused without being
read; the server's memory must stay bounded, and a valid request still works.
The in-process refusals, with their messages, are in tests/unit/serving.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.operator.conftest import MLOPS, http_get
from tests.kube import wait_for
from tests.ports import free_port

# One worker starts the module's inference server once.
pytestmark = [pytest.mark.reliability, pytest.mark.xdist_group("inference-abuse")]

MAX_BODY = 64 * 1024
MAX_ROWS = 100
BATCHES = 25
BATCH_SIZE = 16
SLOW_CLIENTS = 32
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class Server:
    """A running `mlops serve` and where it answers."""

    process: subprocess.Popen[bytes]
    port: int
    model: str

    @property
    def base(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mlops serve` (one worker) on a freshly trained iris model, stopped afterwards."""
    root = tmp_path_factory.mktemp("abuse")
    model_dir = root / "model"
    subprocess.run(
        [str(MLOPS), "train", "--dataset", "sklearn://iris", "--target", "target",
         "--estimator", "LogisticRegression", "--output", str(model_dir)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    model = json.loads((model_dir / "model-card.json").read_text())["model_name"]
    port = free_port()
    log = root / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(MLOPS), "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--max-body-bytes", str(MAX_BODY),
             "--max-rows", str(MAX_ROWS), "--log-level", "WARNING"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Server(process, port, model)
    try:
        wait_for(
            lambda: (http_get(f"{running.base}/v2/health/ready") or (0, ""))[0] == 200,
            timeout=120,
            what=f"the server to be ready (log: {log})",
        )
        yield running
    finally:
        process.terminate()
        process.wait(timeout=60)


def _post(server: Server, path: str, body: bytes, content_type: str | None) -> int:
    request = urllib.request.Request(server.base + path, data=body, method="POST")
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except ConnectionError:
        # An oversized body may be refused (413) and the connection closed mid-upload.
        return 413 if len(body) > MAX_BODY else 599


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and its children (the workers)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        total += int(rss.split()[1]) * 1024
        pending.extend(int(c) for c in children)
    return total


JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
ROW = st.lists(JSON_LEAVES | st.floats(), min_size=0, max_size=6)
RAW_BODIES = st.sampled_from(
    [
        b'{"rows": [[NaN, 1, 2, 3]]}',
        b'{"rows": [[Infinity, -Infinity, 1, 2]]}',
        b'{"rows": [[1e999, 1, 2, 3]]}',
        b'{"rows": [[' + b"9" * 5000 + b", 1, 2, 3]]}",
        b"[" * 20000 + b"]" * 20000,
        b'{"rows": "\xff\xfe\xfd"}',
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2]}]}',
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4], "data": []}]}',
        b'{"inputs": [{"name": "x", "datatype": "BYTES", "shape": [99999999999], "data": [1]}]}',
        b'{"rows": [' + b"[1, 2, 3, 4]," * (MAX_ROWS + 5) + b"[1, 2, 3, 4]]}",
        b'{"rows": [[1, 2, 3, 4]]' + b" " * (MAX_BODY + 10) + b"}",
        b"",
        b"null",
    ]
)
BODIES = st.one_of(
    RAW_BODIES,
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(ROW, max_size=5).map(lambda rows: json.dumps({"rows": rows}).encode()),
    st.binary(max_size=200),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        None,
    ]
)
REQUESTS = st.tuples(st.sampled_from(["/predict", "infer", "/feedback"]), BODIES, CONTENT_TYPES)


def _valid(server: Server) -> int:
    body = json.dumps({"rows": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    return _post(server, "/predict", body, "application/json")


def test_generated_malformed_requests_under_load_get_no_server_error(server: Server) -> None:
    for _ in range(20):
        assert _valid(server) == 200
    before = _tree_rss(server.process.pid)
    statuses: list[int] = []

    @settings(
        max_examples=BATCHES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=st.lists(REQUESTS, min_size=BATCH_SIZE, max_size=BATCH_SIZE))
    def send(batch: list[tuple[str, bytes, str | None]]) -> None:
        infer = f"/v2/models/{server.model}/infer"

        def one(request: tuple[str, bytes, str | None]) -> int:
            path, body, content_type = request
            return _post(server, infer if path == "infer" else path, body, content_type)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(one, batch))
        statuses.extend(answers)
        errors = [
            (r[0], r[1][:80], r[2], s) for r, s in zip(batch, answers, strict=True) if s >= 500
        ]
        assert not errors, errors

    send()

    assert server.process.poll() is None, "the server exited"
    assert _valid(server) == 200
    after = _tree_rss(server.process.pid)
    assert after - before < RSS_GROWTH_LIMIT, f"RSS grew from {before} to {after} bytes"
    print(
        f"{len(statuses)} malformed requests: statuses {sorted(set(statuses))};"
        f" RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB"
    )


def _stalled_client(port: int, declared: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + b'{"rows": ['
    )
    return sock


def test_stalled_bodies_do_not_starve_other_clients(server: Server) -> None:
    stalled = [_stalled_client(server.port, 1000) for _ in range(SLOW_CLIENTS)]
    try:
        assert [_valid(server) for _ in range(10)] == [200] * 10
        oversized = _stalled_client(server.port, MAX_BODY * 100)
        with oversized:
            head = oversized.recv(64)
        assert head.startswith(b"HTTP/1.1 413"), head
    finally:
        for sock in stalled:
            sock.close()
    assert server.process.poll() is None
    assert _valid(server) == 200
