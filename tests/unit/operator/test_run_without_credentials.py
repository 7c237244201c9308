"""`mlops operator run` with credentials it cannot use: a clear message and exit status 1.

Aspects: no kubeconfig and no service account says where it looked and what to set (Kopf's
own message would suggest installing client libraries); a kubeconfig whose user impersonates
someone, which Kopf's watches cannot do, is refused before anything starts, naming the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.ports import free_port


def _run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "MLOPS_"))}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("mlops")),
            "operator",
            "run",
            "--bind-address=127.0.0.1",
            f"--liveness-port={free_port()}",
            f"--metrics-port={free_port()}",
            *flags,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def test_no_credentials_is_reported_and_exits_1(tmp_path: Path) -> None:
    last_line = _last_line(_run(tmp_path))
    assert last_line == (
        f"mlops operator run: no kubeconfig: no {tmp_path}/.kube/config, and this is not a pod"
        " with a ServiceAccount; set KUBECONFIG or pass --kubeconfig"
    )


def test_an_impersonating_kubeconfig_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "impersonating"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://192.0.2.1:6443"}}],
                "users": [{"name": "me", "user": {"token": "t", "as": "operator"}}],
                "contexts": [
                    {"name": "other", "context": {"cluster": "c"}},
                    {"name": "as-operator", "context": {"cluster": "c", "user": "me"}},
                ],
                "current-context": "other",
            }
        )
    )
    last_line = _last_line(_run(tmp_path, f"--kubeconfig={config}", "--context=as-operator"))
    assert last_line.startswith(
        f"mlops operator run: context 'as-operator' of {config} impersonates 'operator'"
    ), last_line
