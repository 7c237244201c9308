"""Exec credential plugins for tests: scripts a kubeconfig's user runs, as it runs ``aws eks
get-token`` or ``gke-gcloud-auth-plugin``.

A plugin here is a Python script run by this interpreter. Each run executes the test's `body`
(Python that sees ``count``, the number of earlier runs, and ``now``, and sets ``status``, the
ExecCredential's status, and ``valid_until``, until when its credential works or None),
appends a line to the plugin's runs file (when it ran, and ``valid_until``), and prints the
ExecCredential. The runs file is how a test counts runs and tells when each credential ended.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["EXEC_V1", "Run", "exec_user", "plugin", "runs"]

EXEC_V1 = "client.authentication.k8s.io/v1"

_TEMPLATE = """import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

runs = Path({runs!r})
count = len(runs.read_text().splitlines()) if runs.exists() else 0
now = datetime.now(timezone.utc)
valid_until = None
{body}
with runs.open("a") as log:
    log.write(f"{{now.isoformat()}} {{valid_until.isoformat() if valid_until else '-'}}\\n")
print(json.dumps({{"apiVersion": {version!r}, "kind": "ExecCredential", "status": status}}))
"""


@dataclass(frozen=True)
class Run:
    """One run of a plugin: when, and until when the credential it handed out works."""

    ran: datetime
    valid_until: datetime | None


def _runs_file(script: Path) -> Path:
    return script.with_suffix(".runs")


def plugin(script: Path, body: str) -> Path:
    """Write the plugin `script` whose runs execute `body` (see the module docstring)."""
    runs_file = _runs_file(script)
    runs_file.unlink(missing_ok=True)
    script.write_text(_TEMPLATE.format(runs=str(runs_file), body=body, version=EXEC_V1))
    return script


def runs(script: Path) -> list[Run]:
    """The runs of the plugin `script` so far, in order."""
    runs_file = _runs_file(script)
    lines = runs_file.read_text().splitlines() if runs_file.exists() else []
    found = []
    for line in lines:
        ran, valid_until = line.split()
        until = None if valid_until == "-" else datetime.fromisoformat(valid_until)
        found.append(Run(datetime.fromisoformat(ran), until))
    return found


def exec_user(script: Path) -> dict[str, Any]:
    """A kubeconfig user entry that authenticates by running `script` and nothing else."""
    return {
        "exec": {
            "apiVersion": EXEC_V1,
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }
