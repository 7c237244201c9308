"""Running the server: workers sharing one port, and a graceful stop on SIGTERM.

With a CPU limit of two or more, several worker processes each bind the port
with ``SO_REUSEPORT`` and the kernel spreads connections among them; a small
supervisor forwards signals and fails fast if a worker dies. Each worker stops
the same way: on SIGTERM it reports not ready, keeps serving for
``drain_seconds`` (with ``Connection: close``), closes its listener, finishes the
requests in flight, and exits, so a rolling update loses no request.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from mlops_operator.podcontract import EXIT_ARTIFACT_REFUSED
from mlops_operator.serving.app import InferenceServer
from mlops_operator.serving.cpu import cpu_limit, plan_workers
from mlops_operator.serving.errors import ArtifactError
from mlops_operator.serving.loading import load_model
from mlops_operator.serving.model import ServedModel
from mlops_operator.serving.settings import ServingSettings

__all__ = ["run"]

log = logging.getLogger(__name__)


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def _serve(settings: ServingSettings, model: ServedModel, worker: int) -> None:
    server = InferenceServer(model, settings, worker=worker)
    runner = web.AppRunner(
        server.application(),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout_seconds,
    )
    await runner.setup()
    # gRPC first: the kubelet's readiness probe asks HTTP, and a pod it calls ready gets
    # gRPC traffic from the Service at once, so HTTP answers only once gRPC listens.
    endpoint = await _start_grpc(server, settings, worker)
    sock = _listen_socket(settings.host, settings.port)
    await web.SockSite(runner, sock, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = sock.getsockname()[:2]
    log.info(
        "worker %d serving %s version %s on http://%s:%d",
        worker,
        model.name,
        model.version,
        host,
        port,
    )
    _settle_garbage_collector()
    await stop.wait()
    log.info("worker %d stopping: not ready, draining for %.1fs", worker, settings.drain_seconds)
    server.draining = True
    await asyncio.sleep(settings.drain_seconds)
    grace = settings.shutdown_timeout_seconds
    await asyncio.gather(runner.cleanup(), *([endpoint.stop(grace)] if endpoint else []))
    log.info("worker %d stopped after finishing in-flight requests", worker)


def _settle_garbage_collector() -> None:
    """Keep full collections off the request path.

    Everything alive once the worker serves (modules, the model, its card, routes) lives
    as long as the process: frozen, the collector never traverses it again, so a full
    collection visits only what requests left behind, instead of pausing a request for
    milliseconds every so often (the p99 tail).
    """
    gc.collect()
    gc.freeze()


async def _start_grpc(server: InferenceServer, settings: ServingSettings, worker: int) -> Any:
    """The worker's gRPC server (a ``grpc.aio.Server``), or None without a gRPC port."""
    if settings.grpc_port is None:
        return None
    import grpc  # only workers with a gRPC port pay for it

    from mlops_operator.serving.grpc_endpoint import GrpcEndpoint

    # Workers share the port the way they share the HTTP one: SO_REUSEPORT.
    endpoint = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    endpoint.add_generic_rpc_handlers((GrpcEndpoint(server).handler(),))
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    port = endpoint.add_insecure_port(f"{host}:{settings.grpc_port}")
    await endpoint.start()
    log.info("worker %d serving the Open Inference Protocol over gRPC on %s:%d", worker, host, port)
    return endpoint


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _worker(settings: ServingSettings, worker: int, threads: int, model: ServedModel | None) -> int:
    if model is None:
        try:
            model = _load(settings, threads)
        except ArtifactError as error:
            log.error("worker %d refusing to start: %s", worker, error)
            _report_refusal(settings, error)
            return EXIT_ARTIFACT_REFUSED
    with _event_loop_runner() as runner:
        runner.run(_serve(settings, model, worker))
    return 0


def _worker_process(settings: ServingSettings, worker: int, threads: int) -> None:
    _configure_logging(settings.log_level)
    sys.exit(_worker(settings, worker, threads, None))


def _load(settings: ServingSettings, threads: int) -> ServedModel:
    return load_model(
        settings.model_dir,
        threads=threads,
        name=settings.model_name,
        version=settings.model_version,
        expected_sha256=settings.expected_sha256,
    )


def _report_refusal(settings: ServingSettings, error: ArtifactError) -> None:
    """Leave why the artifact was refused where Kubernetes reports it (the termination message)."""
    if settings.termination_message_path is None:
        return
    try:
        settings.termination_message_path.write_text(f"artifact refused: {error}"[:4000])
    except OSError as failure:
        log.warning("could not write the termination message: %s", failure)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )


def _supervise(settings: ServingSettings, workers: int, threads: int) -> int:
    # prometheus_client reads this before creating any metric, in each spawned worker.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mlops-metrics-"))
    # Holding the port (bound, not listening) lets port 0 pick one port for every worker.
    reservation = _listen_socket(settings.host, settings.port)
    update: dict[str, object] = {"port": reservation.getsockname()[1]}
    if settings.labels_key is None:
        # One key for every worker: a label may reach any of them (the operator sets a Secret's).
        update["labels_key"] = SecretStr(os.urandom(32).hex())
    grpc_reservation = None
    if settings.grpc_port == 0:
        grpc_reservation = _listen_socket(settings.host, 0)
        update["grpc_port"] = grpc_reservation.getsockname()[1]
    settings = settings.model_copy(update=update)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process, args=(settings, i, threads), name=f"worker-{i}")
        for i in range(workers)
    ]
    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signum)

    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {
        s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        for process in processes:
            # A SIGTERM while workers start must not leave later ones started and orphaned.
            if stopping:
                break
            process.start()
        running = [p for p in processes if p.pid is not None]
        while running:
            wait([p.sentinel for p in running])
            for process in [p for p in running if p.exitcode is not None]:
                running.remove(process)
                if not stopping:
                    log.error("worker %s exited with %s; stopping", process.name, process.exitcode)
                    forward(signal.SIGTERM, None)
        failures = [p.exitcode for p in processes if p.exitcode]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reservation.close()
        if grpc_reservation is not None:
            grpc_reservation.close()
    return max(failures, default=0)


def run(settings: ServingSettings) -> int:
    """Serve until SIGTERM; the process exit code (3 when the artifact is refused)."""
    _configure_logging(settings.log_level)
    limit = settings.cpu_limit or cpu_limit()
    workers, threads = plan_workers(limit, settings.workers, settings.intra_op_threads)
    log.info("CPU limit %.2f: %d worker(s) x %d onnxruntime thread(s)", limit, workers, threads)
    try:
        # Verify once up front so a bad artifact refuses to start before any worker exists.
        model = _load(settings, threads)
    except ArtifactError as error:
        log.error("refusing to start: %s", error)
        _report_refusal(settings, error)
        return EXIT_ARTIFACT_REFUSED
    if workers == 1:
        return _worker(settings, 0, threads, model)
    del model
    return _supervise(settings, workers, threads)
