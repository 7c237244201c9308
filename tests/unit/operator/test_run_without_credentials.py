"""`mlops operator run` with no way to reach a cluster: a clear message and exit status 1.

Kopf's own message suggests installing client libraries; ours says what is
expected instead (a service account in a pod, a kubeconfig outside one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_no_credentials_is_reported_and_exits_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "MLOPS_"))}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("mlops")),
            "operator",
            "run",
            "--bind-address=127.0.0.1",
            f"--liveness-port={_free_port()}",
            f"--metrics-port={_free_port()}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("mlops operator run: no valid Kubernetes credentials"), last_line
    assert "no Kubernetes credentials" in proc.stderr  # the login handler's log record
