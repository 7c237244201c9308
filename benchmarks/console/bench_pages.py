"""How fast the console's pages are with 200 versions of one model, on the local cluster.

Creates a namespace with 200 ModelVersions (each with its status: phase, five gate results,
an approval), their TrainingJobs, a ModelDeployment with a full history and a DriftPolicy
with its kept evaluations, starts `mlops console` with the admin kubeconfig, and prints:
- how long the console takes to list everything (start to /healthz 200);
- each page's server time over HTTP (p50/p95/p99 of --requests requests) and the CPU time
  the console spent per page (independent of how busy the machine is);
- the models page in Debian's chromium: navigation to the end of the load event, on a first
  visit (a fresh browser context, nothing cached) and on the next one (assets cached).
The goal is a page in under 300 ms. Nothing is asserted: the figures go to RESULTS.md.

    eval "$(.venv/bin/mlops cluster env)"
    .venv/bin/python benchmarks/console/bench_pages.py --versions 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.console import browser, start_console
from tests.kube import kubectl


def _version(namespace: str, number: int) -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"bench-v{number}",
            "namespace": namespace,
            "labels": {"mlops.dev/model": "bench"},
        },
        "spec": {
            "modelName": "bench",
            "version": number,
            "artifact": {
                "uri": f"pvc://mlops-artifacts/models/bench/{number:064x}",
                "sha256": f"{number:064x}",
                "sizeBytes": 1000 + number,
                "opset": 17,
            },
            "signature": {
                "task": "classification",
                "features": [{"name": f"f{i}", "kind": "numeric"} for i in range(8)],
                "classes": ["0", "1"],
            },
            "metrics": {"accuracy": 0.9, "f1_macro": 0.88, "roc_auc": 0.95},
            "primaryMetric": {"name": "accuracy", "value": 0.9},
            "lineage": {
                "dataset": {
                    "uri": "sklearn://breast_cancer",
                    "sha256": f"{number:064x}",
                    "rows": 569,
                    "columns": 31,
                },
                "target": "target",
                "estimator": "LogisticRegression",
                "seed": 42,
                "testSize": 0.2,
                "codeVersion": "0.1.0",
                "trainingJob": f"bench-{number}",
                **({"parentVersion": f"bench-v{number - 1}"} if number > 1 else {}),
            },
        },
    }


def _version_status(number: int) -> dict[str, Any]:
    gates = [
        {"gate": g, "passed": True, "message": "ok"}
        for g in ("checksum", "load", "signature", "parity")
    ]
    gates.append(
        {
            "gate": "accuracy >= 0.85",
            "metric": "accuracy",
            "value": 0.9,
            "threshold": 0.85,
            "passed": number % 7 != 0,
        }
    )
    return {
        "status": {
            "phase": "Validated" if number % 7 else "Rejected",
            "gateResults": gates,
            "approval": {"by": "alice", "at": "2026-12-01T10:00:00Z"},
        }
    }


def _deployment(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "bench", "namespace": namespace},
        "spec": {"modelName": "bench"},
    }


def _history(versions: int) -> dict[str, Any]:
    entries = [
        {
            "version": versions - i,
            "time": f"2026-12-01T{23 - i // 60:02d}:{59 - i % 60:02d}:00Z",
            "action": "Rollback" if i % 10 == 3 else "Promote",
            "reason": "AnalysisPassed",
            "message": "canary passed",
            "evidence": {"accuracy": 0.97, "errorRate": 0.0},
        }
        for i in range(100)
    ]
    return {
        "status": {
            "champion": {
                "version": versions,
                "modelVersion": f"bench-v{versions}",
                "since": entries[0]["time"],
            },
            "history": entries,
        }
    }


async def _populate(namespace: str, versions: int) -> None:
    from mlops_operator.k8s import Connection, KubeClient
    from mlops_operator.k8s.kubeconfig import load

    kube = KubeClient(field_manager="bench-console")
    await kube.connect(Connection.from_target(load()))
    gate = asyncio.Semaphore(16)

    async def one(number: int) -> None:
        async with gate:
            await kube.create(_version(namespace, number))
            await kube.patch(
                "mlops.dev/v1alpha1",
                "ModelVersion",
                f"bench-v{number}",
                namespace,
                _version_status(number),
                subresource="status",
            )

    try:
        await kube.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        await asyncio.gather(*(one(n) for n in range(1, versions + 1)))
        await kube.create(_deployment(namespace))
        await kube.patch(
            "mlops.dev/v1alpha1",
            "ModelDeployment",
            "bench",
            namespace,
            _history(versions),
            subresource="status",
        )
    finally:
        await kube.close()


def _timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: what a page costs, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(page: Any, url: str) -> float:
    """Milliseconds from the navigation's start to the end of the load event."""
    page.goto(url, wait_until="load")
    timing = "(() => { const t = performance.getEntriesByType('navigation')[0];"
    timing += " return t.loadEventEnd - t.startTime; })()"
    return float(page.evaluate(timing))


def _quantiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return f"p50 {at(0.5):6.1f}  p95 {at(0.95):6.1f}  p99 {at(0.99):6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    kubeconfig = Path(os.environ["KUBECONFIG"])
    namespace = f"bench-console-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    asyncio.run(_populate(namespace, args.versions))
    print(
        f"created {args.versions} ModelVersions in {time.perf_counter() - started:.1f} s"
        f" (namespace {namespace})"
    )
    try:
        began = time.perf_counter()
        with start_console(
            kubeconfig, Path("/tmp") / f"{namespace}.log", "-n", namespace
        ) as console:
            print(
                f"console listed everything in {time.perf_counter() - began:.2f} s (process start included)"
            )
            pages = {
                "models (200 versions)": "/",
                "a version": f"/ns/{namespace}/versions/bench-v{args.versions // 2}",
                "the deployment (100 history entries)": f"/ns/{namespace}/deployments/bench",
                "the loop graph": f"/ns/{namespace}/models/bench/loop",
            }
            pid = console.process.pid
            for name, path in pages.items():
                _timed_get(console.url + path)  # warm
                cpu = _cpu_seconds(pid)
                samples = [_timed_get(console.url + path) for _ in range(args.requests)]
                per_page = (_cpu_seconds(pid) - cpu) / args.requests * 1000
                size = len(urllib.request.urlopen(console.url + path, timeout=30).read())
                print(
                    f"server  {name:38s} {_quantiles(samples)}  cpu {per_page:5.1f} ms"
                    f"  ({size / 1024:.0f} KiB)"
                )
            with browser() as chromium:
                first, again = [], []
                for _ in range(args.loads):
                    context = chromium.new_context()  # a fresh browser: nothing cached
                    page = context.new_page()
                    first.append(_load(page, console.url + "/"))
                    again.append(_load(page, console.url + "/"))  # assets cached
                    context.close()
                print(f"browser models page, first visit to load end  {_quantiles(first)}")
                print(f"browser models page, next visits to load end  {_quantiles(again)}")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        kubectl(kubeconfig, "delete", "namespace", namespace, "--wait=false", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
