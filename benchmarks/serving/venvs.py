"""The competitors' environments: one venv per system, created once with pip and cached.

Competitors and their clients never enter the project's venv. Each venv gets the same
scikit-learn and onnxruntime versions as the project's venv (so joblib files load and the
same onnxruntime runs the ONNX model) and is cached under
``~/.cache/mlops-operator/bench-venvs/<name>-<hash of what it holds>``; a ``.complete``
file marks a finished install, so an interrupted one is redone. Used by bench_compare.py and
by the client interoperability tests (tests/integration/clients).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["VENVS", "VENV_ROOT", "Venv", "ensure_venv"]

VENV_ROOT = Path.home() / ".cache" / "mlops-operator" / "bench-venvs"


def _ours() -> tuple[str, ...]:
    return (
        f"scikit-learn=={metadata.version('scikit-learn')}",
        f"onnxruntime=={metadata.version('onnxruntime')}",
    )


@dataclass(frozen=True)
class Venv:
    """A competitor's own environment: pip requirements on top of our sklearn and onnxruntime."""

    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        digest = hashlib.sha256("\n".join(self.requirements + _ours()).encode()).hexdigest()
        return VENV_ROOT / f"{self.name}-{digest[:12]}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


VENVS = {
    # KServe's server and SDK (InferenceRESTClient), and Triton's clients: the clients our
    # server must serve (tests/integration/clients) live beside the server they are compared to.
    "kserve": Venv("kserve", ("kserve==0.21.0", "tritonclient[http,grpc]==2.73.0")),
    # MLServer 1.7.1's inference workers call asyncio.get_event_loop() with no loop set, which
    # uvloop >= 0.22 refuses ("There is no current event loop"): every model fails to load.
    "mlserver": Venv("mlserver", ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")),
    "pytriton": Venv("pytriton", ("nvidia-pytriton==0.7.0",)),
}


def ensure_venv(venv: Venv) -> str | None:
    """Create ``venv`` once; None when it is ready, else why the install failed (pip's last lines)."""
    marker = venv.path / ".complete"
    if marker.exists():
        return None
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", "--clear", str(venv.path)],
        [str(venv.python), "-m", "pip", "install", "-q", *venv.requirements, *_ours()],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return " / ".join(lines[-6:])
    marker.touch()
    return None


if __name__ == "__main__":
    for name in sys.argv[1:] or list(VENVS):
        print(name, ensure_venv(VENVS[name]) or "ready", VENVS[name].path)
