"""The console as its users run it (`mlops console`, a process) and Debian's chromium to look at it.

The browser is Debian's ``chromium`` (``make browser`` installs it; ``make test`` does so
first), driven by Playwright; Playwright never downloads a browser of its own here. It
runs headless with the flags a machine without a network needs (no background
networking, no component updates, no sync) and a fresh profile each launch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kube import delete_namespace, kubectl
from tests.ports import free_port

__all__ = [
    "CHROMIUM",
    "RunningConsole",
    "browser",
    "model_version",
    "scratch_namespace",
    "start_console",
]

CHROMIUM = Path(os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium"))
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MLOPS = Path(sys.executable).with_name("mlops")


@dataclass
class RunningConsole:
    """`mlops console` running as a process: its URL and the line it printed on start."""

    url: str
    banner: str
    process: subprocess.Popen[str]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def start_console(
    kubeconfig: Path, log: Path, *args: str, timeout: float = 60
) -> Iterator[RunningConsole]:
    """`mlops console --kubeconfig KUBECONFIG ARGS...` on a free port, once it has listed."""
    port = free_port()
    command = [str(MLOPS), "console", "--kubeconfig", str(kubeconfig), "--port", str(port), *args]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, text=True)
    url = f"http://127.0.0.1:{port}"
    running = RunningConsole(url, "", process, log)
    try:
        assert process.stdout is not None
        running.banner = process.stdout.readline().strip()
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mlops console did not get ready: {log.read_text()}")
            time.sleep(0.2)
        yield running
    finally:
        running.stop()


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Debian chromium under Playwright (a `playwright.sync_api.Browser`)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(f"no {CHROMIUM}: run `make browser` (apt-get install chromium) first")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def model_version(namespace: str, model: str) -> dict[str, Any]:
    """A minimal valid ModelVersion `<model>-v1` (a record: no operator needed to show it)."""
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v1", "namespace": namespace},
        "spec": {
            "modelName": model,
            "version": 1,
            "artifact": {
                "uri": f"pvc://mlops-artifacts/models/{model}/{'a' * 64}",
                "sha256": "a" * 64,
                "sizeBytes": 100,
                "opset": 17,
            },
            "metrics": {"accuracy": 0.9},
            "primaryMetric": {"name": "accuracy", "value": 0.9},
        },
    }


@contextmanager
def scratch_namespace(kubeconfig: Path, prefix: str) -> Iterator[str]:
    """A namespace of its own (``<prefix>-<random>``), deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "namespace", name)
    try:
        yield name
    finally:
        delete_namespace(kubeconfig, name)
