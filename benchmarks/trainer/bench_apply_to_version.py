"""Apply-to-ModelVersion time of a TrainingJob on the local cluster.

    python benchmarks/trainer/bench_apply_to_version.py               # 5 runs, then 5 at once
    python benchmarks/trainer/bench_apply_to_version.py --runs 3 --batch 10

Needs the local cluster running (``mlops cluster up``); never starts or stops
it. In a fresh namespace enforcing the restricted Pod Security Standard it
applies the CRDs, starts ``mlops operator run`` for that namespace, then:

- *sequential*: applies the iris example TrainingJob ``--runs`` times, one
  after the other, and times each from ``kubectl apply`` to the ModelVersion
  being readable, with the moments the Job appeared and completed (polled every
  ``--poll`` seconds, so each figure is that coarse);
- *batch*: applies ``--batch`` TrainingJobs of one model at once and times
  until every ModelVersion exists (checking the version numbers are distinct).

Prints one line per run and a summary; record them with the date and machine
in benchmarks/RESULTS.md. The namespace is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.localcluster.binaries import KUBERNETES
from mlops_operator.localcluster.cluster import LocalCluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "manifests" / "examples" / "iris" / "trainingjob.yaml"
MLOPS = Path(sys.executable).with_name("mlops")
TIMEOUT = 300.0


class Kube:
    """The cluster's kubectl with its admin kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl = str(KUBERNETES.path("kubectl"))

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """kubectl's stdout; raise with its stderr on failure when `check`."""
        proc = subprocess.run(
            [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def items(self, namespace: str, resource: str) -> list[dict[str, Any]]:
        """The objects of `resource` in `namespace`."""
        found: list[dict[str, Any]] = json.loads(
            self.run("get", resource, "-n", namespace, "-o", "json")
        )["items"]
        return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_operator(kube: Kube, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    liveness, metrics = _free_port(), _free_port()
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
    command = [
        str(MLOPS),
        "operator",
        "run",
        f"--namespace={namespace}",
        "--bind-address=127.0.0.1",
        f"--liveness-port={liveness}",
        f"--metrics-port={metrics}",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the operator exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the operator's liveness probe never answered")


def _training_job(namespace: str, name: str) -> str:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] |= {"name": name, "namespace": namespace}
    return json.dumps(doc)


def _sequential_run(kube: Kube, namespace: str, name: str, poll: float) -> dict[str, float]:
    """Seconds from apply to: the Job existing, the Job complete, the ModelVersion readable."""
    marks: dict[str, float] = {}
    start = time.monotonic()
    kube.run("apply", "-f", "-", stdin=_training_job(namespace, name))
    while time.monotonic() - start < TIMEOUT:
        now = time.monotonic() - start
        jobs = {j["metadata"]["name"]: j for j in kube.items(namespace, "jobs")}
        job = jobs.get(name)
        if job is not None:
            marks.setdefault("job", now)
            conditions = job.get("status", {}).get("conditions", [])
            if any(c["type"] == "Complete" and c["status"] == "True" for c in conditions):
                marks.setdefault("complete", now)
        status = json.loads(kube.run("get", "trainingjob", name, "-n", namespace, "-o", "json"))
        version = status.get("status", {}).get("modelVersion")
        if version and kube.run("get", "mv", version, "-n", namespace, check=False):
            marks["version"] = time.monotonic() - start
            return marks
        if status.get("status", {}).get("phase") == "Failed":
            raise RuntimeError(f"{name} failed: {status['status'].get('message')}")
        time.sleep(poll)
    raise RuntimeError(f"{name} produced no ModelVersion within {TIMEOUT:.0f} s")


def _batch_run(kube: Kube, namespace: str, size: int, poll: float) -> float:
    """Seconds from applying `size` TrainingJobs at once to all their ModelVersions existing."""
    names = [f"batch-{i}" for i in range(size)]
    start = time.monotonic()
    kube.run("apply", "-f", "-", stdin="\n---\n".join(_training_job(namespace, n) for n in names))
    while time.monotonic() - start < TIMEOUT:
        produced = {
            v["spec"]["lineage"]["trainingJob"]: v["spec"]["version"]
            for v in kube.items(namespace, "modelversions")
        }
        if all(n in produced for n in names):
            elapsed = time.monotonic() - start
            numbers = [produced[n] for n in names]
            if len(set(numbers)) != len(numbers):
                raise RuntimeError(f"duplicate version numbers: {numbers}")
            return elapsed
        time.sleep(poll)
    raise RuntimeError(f"the batch produced no ModelVersions within {TIMEOUT:.0f} s")


def main() -> int:
    """Run the benchmark; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="sequential runs (default 5)")
    parser.add_argument("--batch", type=int, default=5, help="TrainingJobs applied at once")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between checks")
    args = parser.parse_args()

    cluster = LocalCluster()
    if not cluster.is_running():
        print("the local cluster is not running; start it with `mlops cluster up`", file=sys.stderr)
        return 2
    kube = Kube(cluster.layout.admin_kubeconfig)
    namespace = f"bench-tj-{uuid.uuid4().hex[:6]}"
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kube.run("create", "namespace", namespace)
    kube.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, namespace {namespace}")
    with tempfile.TemporaryDirectory() as scratch:
        operator = _start_operator(kube, namespace, Path(scratch) / "operator.log")
        try:
            totals = []
            for i in range(args.runs):
                marks = _sequential_run(kube, namespace, f"seq-{i}", args.poll)
                totals.append(marks["version"])
                print(
                    f"sequential {i}: job {marks['job']:.1f} s, complete"
                    f" {marks.get('complete', float('nan')):.1f} s,"
                    f" ModelVersion {marks['version']:.1f} s after apply"
                )
            if totals:
                print(
                    f"sequential: median {statistics.median(totals):.1f} s, min {min(totals):.1f} s,"
                    f" max {max(totals):.1f} s over {len(totals)} runs"
                )
            if args.batch:
                elapsed = _batch_run(kube, namespace, args.batch, args.poll)
                print(f"batch of {args.batch}: every ModelVersion {elapsed:.1f} s after apply")
        finally:
            operator.send_signal(signal.SIGTERM)
            operator.wait(timeout=60)
            kube.run("delete", "namespace", namespace, "--wait=false", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
