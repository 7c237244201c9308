"""The operator's reconcile path at scale: TrainingJobs and ModelDeployments on a private control plane.

    .venv/bin/python benchmarks/scale/bench_scale.py                 # 20 idle, 200 at once, 200 MDs
    .venv/bin/python benchmarks/scale/bench_scale.py --objects 1000 --deployments 200

Starts a control plane of its own in a temporary directory (etcd, API server,
controller-manager, scheduler; no node, so no pod runs — the shared cluster is
left alone) and ``mlops operator run`` for one namespace. Every TrainingJob has
``suspend: true``: the measurement is the operator's reconcile path (the claim,
the suspended Job, the status), not pod start-up. A watch records when each
TrainingJob first gets a status. It measures:

- *idle*: ``--idle`` TrainingJobs created one after another, each waited for:
  apply-to-first-status latency with nothing else going on (after one warm-up
  TrainingJob, not counted, that waits for the operator's watches to start);
- *burst*: ``--objects`` created as fast as 8 threads can, then apply-to-status
  latency (p50/p99/max), throughput (objects / seconds from the first create to
  the last status), the operator's CPU seconds and RSS (now and peak), and the
  API server's requests during the burst by resource and verb (all clients:
  the benchmark's creates, the operator, the Job controller);
- *deployments*: one ModelVersion (its status set to Validated by the benchmark:
  no validation Job runs without a node), then ``--deployments`` ModelDeployments
  of that model created at once: apply-to-first-status latency, then the steady
  state over ``--steady`` seconds, when nothing changes any more (their Deployments
  exist but, without a node, never get pods): API requests per second by
  resource and verb, the operator's CPU share and RSS.

Prints the figures; record them with the date and machine in benchmarks/RESULTS.md.
The control plane is stopped and its directory deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.localcluster.binaries import KUBERNETES
from mlops_operator.localcluster.cluster import LocalCluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "manifests" / "examples" / "iris" / "trainingjob.yaml"
MLOPS = Path(sys.executable).with_name("mlops")
NAMESPACE = "scale"
PLURAL = "/apis/mlops.dev/v1alpha1/namespaces/scale/trainingjobs"
DEPLOYMENTS = "/apis/mlops.dev/v1alpha1/namespaces/scale/modeldeployments"
VERSIONS = "/apis/mlops.dev/v1alpha1/namespaces/scale/modelversions"
TIMEOUT = 900.0


class Api:
    """Plain HTTPS to the private API server with the admin's client certificate."""

    def __init__(self, cluster: LocalCluster) -> None:
        ports = cluster.layout.load_ports()
        assert ports is not None
        self.base = f"https://127.0.0.1:{ports.apiserver}"
        pki = cluster.layout.pki
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        self.kubeconfig = cluster.layout.admin_kubeconfig

    def open(self, path: str, body: Any = None, timeout: float = 60) -> Any:
        """The response of GET (or POST `body` as JSON) to `path`."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method="POST" if data else "GET"
        )
        request.add_header("Content-Type", "application/json")
        return urllib.request.urlopen(request, timeout=timeout, context=self.context)

    def kubectl(self, *args: str) -> str:
        """kubectl's stdout (raising on failure)."""
        return subprocess.run(
            [str(KUBERNETES.path("kubectl")), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip


class StatusWatch:
    """Records, per TrainingJob name, the moment its status first appeared.

    A watch can end (the server's timeout, an ``ERROR`` event under load): it is then
    resumed from a fresh list, whose objects with a status count as seen at that moment.
    """

    def __init__(self, api: Api, path: str = PLURAL, field: str = "phase") -> None:
        self.api = api
        self.path = path
        self.field = field
        self.first: dict[str, float] = {}
        self.lock = threading.Lock()
        self.restarts = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _seen(self, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get(self.field):
            with self.lock:
                self.first.setdefault(obj["metadata"]["name"], time.monotonic())

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                with self.api.open(self.path) as response:
                    listing = json.load(response)
                for obj in listing["items"]:
                    self._seen(obj)
                version = listing["metadata"]["resourceVersion"]
                query = f"?watch=1&resourceVersion={version}&timeoutSeconds=600"
                with self.api.open(self.path + query, timeout=TIMEOUT) as stream:
                    for line in stream:
                        event = json.loads(line)
                        if event.get("type") == "ERROR":
                            break
                        self._seen(event["object"])
            except (OSError, ValueError, KeyError) as error:
                if self.stopped.is_set():
                    return
                print(f"watch: {error!r}; resuming from a list", file=sys.stderr)
            self.restarts += 1

    def wait(self, names: list[str], timeout: float = TIMEOUT) -> None:
        """Until every name has a status (or fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(n in self.first for n in names):
                    return
            time.sleep(0.01)
        missing = [n for n in names if n not in self.first]
        raise RuntimeError(f"{len(missing)} objects got no status in {timeout:.0f}s")


def _document(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"] = {"name": name, "namespace": NAMESPACE}
    doc["spec"]["suspend"] = True
    return doc


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(label: str, latencies: list[float]) -> str:
    return (
        f"{label}: p50 {statistics.median(latencies):.2f} s, p99 {_percentile(latencies, 0.99):.2f}"
        f" s, max {max(latencies):.2f} s over {len(latencies)}"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) in MiB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def _requests(api: Api) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for line in api.kubectl("get", "--raw", "/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        key = (labels.get("resource", '""').strip('"'), labels.get("verb", '""').strip('"'))
        counts[key] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_operator(api: Api, log: Path) -> subprocess.Popen[bytes]:
    liveness = _free_port()
    env = {**os.environ, "KUBECONFIG": str(api.kubeconfig)}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(MLOPS), "operator", "run", f"--namespace={NAMESPACE}", "--bind-address=127.0.0.1",
             f"--liveness-port={liveness}", f"--metrics-port={_free_port()}", f"--log-level={os.environ.get('BENCH_LOG_LEVEL', 'WARNING')}"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=5):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the operator exited: {log.read_text()}") from None
            time.sleep(0.2)
    raise RuntimeError("the operator's liveness probe never answered")


def create(api: Api, name: str, path: str = PLURAL, document: Any = None) -> float:
    started = time.monotonic()
    api.open(path, document or _document(name)).close()
    return started


def model_version() -> dict[str, Any]:
    """iris-v1 as the TrainingJob controller records one (the artifact is never read here)."""
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return {
        "apiVersion": "mlops.dev/v1alpha1", "kind": "ModelVersion",
        "metadata": {"name": "iris-v1", "namespace": NAMESPACE},
        "spec": {
            "modelName": "iris", "version": 1,
            "artifact": {"uri": "pvc://mlops-artifacts/models/iris/1/model.onnx",
                         "sha256": "0" * 64, "sizeBytes": 1024, "opset": 17},
            "signature": {"task": "classification",
                          "features": [{"name": f, "kind": "numeric"} for f in features],
                          "classes": ["setosa", "versicolor", "virginica"]},
            "metrics": {"accuracy": 0.95},
            "primaryMetric": {"name": "accuracy", "value": 0.95},
        },
    }  # fmt: skip


def model_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"modelName": "iris", "replicas": 1, "promotion": "Auto",
                 "rollout": {"strategy": "Recreate"}},
    }  # fmt: skip


def _print_requests(requests: Counter[tuple[str, str]], per: float, unit: str) -> None:
    for (resource, verb), count in sorted(requests.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {resource or '-':24} {verb:8} {count:6}  ({count / per:.2f} {unit})")


def create_validated_version(api: Api) -> None:
    """iris-v1, with the status its validation would give it (no validation Job runs here)."""
    api.open(VERSIONS, model_version()).close()
    api.kubectl(
        "patch", "modelversion", "iris-v1", f"--namespace={NAMESPACE}", "--subresource=status",
        "--type=merge", "--patch", json.dumps({"status": {"phase": "Validated"}}),
    )  # fmt: skip


def run_deployments(api: Api, operator: subprocess.Popen[bytes], count: int, steady: float) -> None:
    """Create the validated version and `count` ModelDeployments; print the figures."""
    create_validated_version(api)
    watch = StatusWatch(api, DEPLOYMENTS, "conditions")
    names = [f"md-{i}" for i in range(count)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        created = dict(
            zip(names, pool.map(lambda n: create(api, n, DEPLOYMENTS, model_deployment(n)), names),
                strict=True)
        )  # fmt: skip
    watch.wait(names)
    watch.stopped.set()
    latencies = [watch.first[n] - created[n] for n in names]
    print(_summary(f"{count} ModelDeployments apply-to-status", latencies))
    # Let the first rollouts settle (every Deployment applied) before the steady window.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listing = json.loads(
            api.kubectl("get", "deployments", f"--namespace={NAMESPACE}", "-o=json")
        )
        if len(listing["items"]) >= count:
            break
        time.sleep(1)
    requests_before, cpu_before = _requests(api), cpu_seconds(operator.pid)
    time.sleep(steady)
    cpu = cpu_seconds(operator.pid) - cpu_before
    requests = _requests(api) - requests_before
    rss, peak = memory(operator.pid)
    total = sum(requests.values())
    print(f"steady state of {count} ModelDeployments over {steady:.0f} s: {total / steady:.1f}"
          f" API requests/s, operator CPU {cpu / steady * 100:.0f} % of one core,"
          f" RSS {rss:.0f} MiB (peak {peak:.0f})")  # fmt: skip
    _print_requests(requests, steady, "per second")
    sets = json.loads(api.kubectl("get", "replicasets", f"--namespace={NAMESPACE}", "-o=json"))
    # More ReplicaSets than Deployments would mean a re-apply changed a pod template.
    print(f"ReplicaSets at the end: {len(sets['items'])} for {count} Deployments")


def run(api: Api, operator: subprocess.Popen[bytes], idle: int, objects: int) -> None:
    """Both phases, printing their figures."""
    watch = StatusWatch(api)
    # The operator answers its liveness probe before its watches are established: a first
    # TrainingJob, not counted, waits until it handles objects (a second or two after start).
    create(api, "warm-up")
    watch.wait(["warm-up"], timeout=120)
    idle_latencies = []
    for i in range(idle):
        name = f"idle-{i}"
        sent = create(api, name)
        watch.wait([name], timeout=120)
        idle_latencies.append(watch.first[name] - sent)
    print(_summary("idle apply-to-status", idle_latencies))
    print("  (one by one, in order: " + " ".join(f"{t:.2f}" for t in idle_latencies) + ")")

    names = [f"burst-{i}" for i in range(objects)]
    requests_before, cpu_before = _requests(api), cpu_seconds(operator.pid)
    with ThreadPoolExecutor(max_workers=8) as pool:
        created = dict(zip(names, pool.map(lambda n: create(api, n), names), strict=True))
    watch.wait(names)
    cpu = cpu_seconds(operator.pid) - cpu_before
    rss, peak = memory(operator.pid)
    requests = _requests(api) - requests_before
    latencies = [watch.first[n] - created[n] for n in names]
    span = max(watch.first[n] for n in names) - min(created.values())
    print(_summary(f"burst of {objects} apply-to-status", latencies))
    sent = max(created.values()) - min(created.values())
    print(f"burst throughput: {objects / span:.1f} TrainingJobs/s ({span:.1f} s in all; the"
          f" creates took {sent:.1f} s)")  # fmt: skip
    print(f"operator: {cpu:.1f} CPU s in the burst ({cpu / objects * 1000:.0f} ms per object),")
    print(f"          RSS {rss:.0f} MiB now, {peak:.0f} MiB peak with {idle + objects + 1} objects")
    total = sum(requests.values())
    print(f"API requests in the burst (all clients): {total}, {total / objects:.1f} per object")
    print(f"(the benchmark's watch was resumed {watch.restarts} times)")
    _print_requests(requests, objects, "per object")
    watch.stopped.set()


@contextlib.contextmanager
def private_operator() -> Iterator[tuple[Api, subprocess.Popen[bytes]]]:
    """A private control plane with the CRDs and namespace `NAMESPACE`, and the operator for it.

    Everything is stopped and deleted on exit; ``BENCH_KEEP_LOG=path`` keeps the operator's log
    (``BENCH_LOG_LEVEL`` sets its level, WARNING by default).
    """
    print(f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    root = Path(tempfile.mkdtemp(prefix="mlops-scale-"))
    cluster = LocalCluster(root / "cluster", with_node=False)
    operator = None
    try:
        cluster.up()
        api = Api(cluster)
        crds = sorted((REPO / "crds").glob("mlops.dev_*.yaml"))
        api.kubectl("apply", "--server-side", *(f"-f={p}" for p in crds))
        api.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        api.kubectl("create", "namespace", NAMESPACE)
        operator = _start_operator(api, root / "operator.log")
        yield api, operator
    finally:
        if operator is not None and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            operator.wait(timeout=120)
        cluster.down()
        if os.environ.get("BENCH_KEEP_LOG"):
            shutil.copy(root / "operator.log", os.environ["BENCH_KEEP_LOG"])
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    """Bring the private control plane up, measure, tear it down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200, help="TrainingJobs in the burst")
    parser.add_argument("--idle", type=int, default=20, help="TrainingJobs created one by one")
    parser.add_argument("--deployments", type=int, default=200, help="ModelDeployments")
    parser.add_argument("--steady", type=float, default=60, help="seconds of steady state")
    args = parser.parse_args()
    with private_operator() as (api, operator):
        if args.objects:
            run(api, operator, args.idle, args.objects)
        if args.deployments:
            run_deployments(api, operator, args.deployments, args.steady)
    return 0


if __name__ == "__main__":
    sys.exit(main())
