"""The iris loop on the local cluster, stage by stage; `mlops demo` and the e2e test share it.

Stages, each a method that returns what it saw (the e2e test asserts on it):
`start` (cluster, CRDs, namespace, operator), `train_v1`, `deploy`,
`watch_reference` (traffic like the training data: no retrain), `shift` (the
sensor is re-calibrated and labels flow: drift detected, one retrain),
`retrain` (v2 trained on the logged rows and validated), `rollout` (canary,
promotion) and `recover` (PSI and accuracy against v2), then `finish`.

With ``object_store=True`` the same loop runs on the local cluster's S3 object store
(`mlops cluster up --object-store`) instead of the artifact PVC: the operator gets
``--artifact-uri s3://mlops/<namespace>`` and a credentials Secret; v1's dataset is a CSV
in the bucket; artifacts, payload logs, data snapshots and the audit log all land there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.api.metadata import (
    DEPLOYMENT_LABEL,
    DRIFT_POLICY_LABEL,
    RETRAIN_REASON_ANNOTATION,
)
from mlops_operator.demo.kube import DemoError, Kubectl, NotYet, wait_until
from mlops_operator.demo.traffic import Observation, Traffic, World
from mlops_operator.localcluster.objectstore import ObjectStore

__all__ = ["EXAMPLES", "STORE_SECRET", "Demo", "Stage"]

EXAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "examples" / "iris"
MODEL = "iris"
DEPLOYMENT = "iris"
POLICY = "iris"
STORE_SECRET = "mlops-object-store"
_LOOP_KINDS = "driftpolicies.mlops.dev,modeldeployments.mlops.dev,trainingjobs.mlops.dev,modelversions.mlops.dev"


def _pod_state(pod: dict[str, Any]) -> str:
    """A pod's phase and each container's state, as `kubectl describe` would say them."""
    status = pod.get("status") or {}
    states = []
    for container in status.get("containerStatuses") or status.get("initContainerStatuses") or []:
        ((state, detail),) = (container.get("state") or {"unknown": {}}).items()
        said = [f"{container['name']}={state}", detail.get("reason"), (detail.get("message") or "")[:200],
                f"ready={container.get('ready')}", f"restarts={container.get('restartCount', 0)}"]  # fmt: skip
        states.append(" ".join(part for part in said if part))
    return f"{status.get('phase', '?')} [{', '.join(states)}]"


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _detail(message: str) -> None:
    print(f"    {message}", flush=True)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stage:
    """A stage that happened: when (epoch seconds) and what was seen."""

    name: str
    started: float
    finished: float
    facts: dict[str, Any] = field(default_factory=dict)


def _established(kube: Kubectl) -> bool:
    """Whether every mlops.dev CRD is Established (polled: ``kubectl wait`` fails at once
    while a new CRD has no conditions yet)."""
    selector = "app.kubernetes.io/part-of=mlops-operator"
    crds = json.loads(kube.run("get", "crd", "-l", selector, "-o", "json"))["items"]
    conditions = [(crd.get("status") or {}).get("conditions") or [] for crd in crds]
    return bool(crds) and all(
        any(c["type"] == "Established" and c["status"] == "True" for c in found)
        for found in conditions
    )


@dataclass
class Demo:
    """One run of the loop in `namespace` of the local cluster."""

    namespace: str = "mlops-demo"
    seed: int = 7
    out: Path = Path("out")
    examples: Path = EXAMPLES
    stages: list[Stage] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    kube: Kubectl | None = None
    prometheus_url: str = ""
    traffic: Traffic | None = None
    object_store: bool = False
    store: ObjectStore | None = None
    _operator: subprocess.Popen[bytes] | None = None

    # -- helpers ---------------------------------------------------------------------------

    @property
    def k(self) -> Kubectl:
        """kubectl for the demo's namespace (after `start`)."""
        if self.kube is None:
            raise DemoError("the demo has not started: call start() first")
        return self.kube

    def _manifest(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = yaml.safe_load((self.examples / f"{name}.yaml").read_text())
        doc["metadata"]["namespace"] = self.namespace
        return doc

    def _record(self, name: str, started: float, **facts: Any) -> Stage:
        stage = Stage(name, started, time.time(), facts)
        self.stages.append(stage)
        return stage

    def _retrain_jobs(self) -> list[dict[str, Any]]:
        return self.k.list("trainingjobs.mlops.dev", f"{DRIFT_POLICY_LABEL}={POLICY}")

    def _phase(self, kind: str, name: str) -> str | None:
        obj = self.k.get(kind, name)
        return ((obj or {}).get("status") or {}).get("phase")

    def _status(self, kind: str, name: str) -> dict[str, Any]:
        return (self.k.get(kind, name) or {}).get("status") or {}

    def _validated(self, name: str, timeout: float) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self._status("modelversions.mlops.dev", name)
            if status.get("phase") == "Rejected":
                raise DemoError(f"{name} was rejected: {json.dumps(status.get('gateResults'))}")
            return status if status.get("phase") == "Validated" else None

        return wait_until(done, timeout=timeout, what=f"ModelVersion {name} to be Validated")

    def _trained(self, name: str, timeout: float) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            status = self._status("trainingjobs.mlops.dev", name)
            if status.get("phase") == "Failed":
                raise DemoError(f"TrainingJob {name} failed: {status.get('message')}")
            return status if status.get("phase") == "Succeeded" else None

        return wait_until(done, timeout=timeout, what=f"TrainingJob {name} to succeed")

    def _champion(self) -> int | None:
        champion = self._status("modeldeployments.mlops.dev", DEPLOYMENT).get("champion") or {}
        version = champion.get("version")
        return int(version) if version is not None else None

    def _ready(self) -> bool | NotYet:
        conditions = self._status("modeldeployments.mlops.dev", DEPLOYMENT).get("conditions")
        ready = next((c for c in conditions or [] if c["type"] == "Ready"), None)
        if ready is not None and ready["status"] == "True":
            return True
        # What a user would look at next: the condition's reason and the serving pods' states.
        pods = [
            f"{pod['metadata']['name']} {_pod_state(pod)}"
            for pod in self.k.list("pods", f"{DEPLOYMENT_LABEL}={DEPLOYMENT}")
        ]
        said = (
            f"{ready.get('reason')}: {ready.get('message', '')}" if ready else "no Ready condition"
        )
        return NotYet(f"Ready {said}; pods: {'; '.join(pods) or 'none'}")

    # -- stages ----------------------------------------------------------------------------

    def start(self) -> Stage:
        """Bring the cluster up, install the CRDs, make the namespace, run the operator."""
        from mlops_operator.crdgen.render import crd_stream
        from mlops_operator.localcluster.binaries import KUBERNETES
        from mlops_operator.localcluster.cluster import LocalCluster

        began = time.time()
        cluster = LocalCluster()
        _step("bringing the local cluster up (first run: builds Kubernetes from its Go modules)")
        cluster.up(object_store=self.object_store)
        self.store = cluster.object_store() if self.object_store else None
        self.prometheus_url = cluster.env().get("PROMETHEUS_URL", "")
        if not self.prometheus_url:
            raise DemoError("the local cluster runs no Prometheus; the loop needs it")
        kube = Kubectl(KUBERNETES.path("kubectl"), cluster.layout.admin_kubeconfig, self.namespace)
        self.kube = kube
        _step("installing the mlops.dev CRDs")
        kube.run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=crd_stream())
        wait_until(lambda: _established(kube), timeout=60, what="the CRDs to be Established")
        _step(f"namespace {self.namespace} (restricted Pod Security Standard)")
        kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": self.namespace,
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}])  # fmt: skip
        if self.store is not None:
            _step(f"object store {self.store.endpoint}: credentials in Secret {STORE_SECRET},"
                  f" artifacts under {self.store_uri}")  # fmt: skip
            kube.apply([self.store.secret(self.namespace, STORE_SECRET)])
        self._start_operator(kube)
        if self._remove_loop_objects():
            _detail("removed the previous run's objects (the artifact claim stays)")
        return self._record("start", began, prometheus=self.prometheus_url)

    @property
    def store_uri(self) -> str:
        """The artifact store's root on the object store (one folder per namespace)."""
        if self.store is None:
            raise DemoError("the demo runs without the object store")
        return f"{self.store.uri}/{self.namespace}"

    def open_store(self, root: str | None = None) -> Any:
        """An `ArtifactStore` on the object store, from this machine (the store's credentials)."""
        from mlops_operator.storage import ArtifactStore

        if self.store is None:
            raise DemoError("the demo runs without the object store")
        options = {"key": self.store.access_key, "secret": self.store.secret_key,
                   "endpoint_url": self.store.endpoint,
                   "client_kwargs": {"region_name": self.store.region}}  # fmt: skip
        return ArtifactStore(root or self.store_uri, storage_options=options)

    def _upload_dataset(self) -> str:
        """scikit-learn's iris as a CSV in the bucket; its s3:// URI."""
        from sklearn.datasets import load_iris

        frame = load_iris(as_frame=True).frame
        key = "datasets/iris.csv"
        stored = self.open_store().put_bytes(key, frame.to_csv(index=False).encode())
        return str(stored.uri)

    def _remove_loop_objects(self) -> bool:
        # The operator must be running: its finalizers hold the objects until it lets them go.
        present = self.k.run("get", "-n", self.namespace, _LOOP_KINDS, "-o", "name").split()
        if present:
            self.k.run("delete", "-n", self.namespace, _LOOP_KINDS, "--all", "--wait=true",
                       "--timeout=120s")  # fmt: skip
        return bool(present)

    def _stop_earlier_operator(self) -> None:
        """Stop the operator an earlier run left behind (killed before `finish`), if it runs.

        Two operators on one namespace would both turn a finished trainer Job into a
        ModelVersion and both write every status: the earlier one must go first.
        """
        pid_file = self.out / "demo-operator.pid"
        try:
            pid = int(pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if b"operator" not in command or b"run" not in command:
            return  # the number belongs to another process by now
        _detail(f"stopping the operator of an earlier run (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=90,
                   what=f"the earlier operator (pid {pid}) to stop")  # fmt: skip

    def _start_operator(self, kube: Kubectl) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self._stop_earlier_operator()
        log = self.out / "demo-operator.log"
        liveness = _free_port()
        metrics = _free_port()
        command = [
            str(Path(sys.executable).with_name("mlops")), "operator", "run",
            f"--namespace={self.namespace}", "--bind-address=127.0.0.1",
            f"--liveness-port={liveness}", f"--metrics-port={metrics}",
        ]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig),
               "MLOPS_PROMETHEUS_URL": self.prometheus_url}  # fmt: skip
        if self.store is not None:
            command += [f"--artifact-uri={self.store_uri}",
                        f"--artifact-credentials-secret={STORE_SECRET}"]  # fmt: skip
        _step(f"starting the operator (standalone, namespace {self.namespace}; log: {log})")
        with log.open("wb") as sink:
            self._operator = subprocess.Popen(
                command, env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        (self.out / "demo-operator.pid").write_text(str(self._operator.pid))
        process = self._operator

        def live() -> bool:
            if process.poll() is not None:
                raise DemoError(f"the operator exited with {process.returncode}; see {log}")
            try:
                url = f"http://127.0.0.1:{liveness}/healthz"
                with urllib.request.urlopen(url, timeout=5) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(live, timeout=60, what="the operator's liveness probe")

    def train_v1(self, timeout: float = 240) -> Stage:
        """Train v1 from scikit-learn's iris and wait until its gates pass."""
        began = time.time()
        training = self._manifest("trainingjob")
        if self.store is not None:
            training["spec"]["dataset"] = {"uri": self._upload_dataset(),
                                           "credentialsSecret": STORE_SECRET}  # fmt: skip
        _step(
            f"train v1: TrainingJob {training['metadata']['name']} on {training['spec']['dataset']['uri']}"
        )
        self.k.apply([training])
        status = self._trained(training["metadata"]["name"], timeout)
        version = str(status.get("modelVersion"))
        _detail(str(status.get("message")))
        _step(f"validate {version}: checksum, load, signature, parity, gates")
        validated = self._validated(version, timeout)
        for gate in validated.get("gateResults") or []:
            _detail(
                f"{gate.get('gate')}: {'passed' if gate.get('passed') else 'FAILED'} {gate.get('message', '')}"
            )
        self.marks["v1_validated"] = time.time()
        return self._record("train_v1", began, model_version=version, metrics=status.get("metrics"),
                            phase=validated.get("phase"),
                            dataset=training["spec"]["dataset"]["uri"])  # fmt: skip

    def deploy(self, timeout: float = 180) -> Stage:
        """Deploy with the ModelDeployment and start the traffic (reference-like, unlabelled)."""
        began = time.time()
        _step("deploy: ModelDeployment iris (canary rollouts, payload logging on)")
        self.k.apply([self._manifest("modeldeployment")])
        wait_until(lambda: self._champion() == 1, timeout=timeout, what="v1 to be the champion")
        # Ready: a pod of v1 is ready (its start is slow on a busy machine); the Service routes
        # to it at kube-proxy's next sync, which the first answer below waits for.
        wait_until(self._ready, timeout=timeout, what="ModelDeployment iris to be Ready")
        # The controller records the champion before it applies the Service.
        service = wait_until(lambda: self.k.get("service", DEPLOYMENT), timeout=60,
                             what=f"the ModelDeployment's Service {DEPLOYMENT}")  # fmt: skip
        url = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
        _detail(f"v1 serves at {url} (Service {DEPLOYMENT})")
        self.traffic = Traffic(url, World.iris(), self.seed).__enter__()
        wait_until(lambda: any(o.version == "1" for o in self._observed()), timeout=60,
                   what="the first answer from v1")  # fmt: skip
        self.marks["serving_v1"] = time.time()
        return self._record("deploy", began, url=url)

    def _observed(self) -> list[Observation]:
        return list(self.traffic.observations) if self.traffic is not None else []

    def watch_reference(self, evaluations: int = 3, timeout: float = 150) -> Stage:
        """Traffic drawn like the training data while the DriftPolicy evaluates: no retrain."""
        began = time.time()
        _step("serve reference-like traffic (the flowers v1 was trained on) under DriftPolicy iris")
        self.k.apply([self._manifest("driftpolicy")])
        seen: set[str] = set()

        def judged() -> bool:
            status = self._status("driftpolicies.mlops.dev", POLICY)
            drift = next(
                (t for t in status.get("triggers") or [] if t.get("name") == "featureDrift"), None
            )
            stamp = status.get("lastEvaluationTime")
            if drift and drift.get("value") is not None and stamp and stamp not in seen:
                seen.add(status["lastEvaluationTime"])
                _detail(f"evaluation {len(seen)}: drifted share {drift['value']:.2f}"
                            f" (fires at {drift.get('threshold')}), {drift.get('message', '')[:100]}")  # fmt: skip
            if self._retrain_jobs():
                raise DemoError("a retrain was triggered while the traffic matched the reference")
            return len(seen) >= evaluations

        wait_until(judged, timeout=timeout, what=f"{evaluations} evaluations of reference traffic")
        status = self._status("driftpolicies.mlops.dev", POLICY)
        self.marks["reference_end"] = time.time()
        _detail(f"no retrain after {len(seen)} evaluations")
        return self._record("watch_reference", began, evaluations=len(seen),
                            retrains=len(self._retrain_jobs()), triggers=status.get("triggers"))  # fmt: skip

    def shift(self, timeout: float = 120) -> Stage:
        """Re-calibrate the petal sensor and send labels: drift is detected, one retrain starts."""
        if self.traffic is None:
            raise DemoError("no traffic: call deploy() first")
        began = time.time()
        _step("the world changes: the petal sensor is re-calibrated (petal length +2.0 cm, width +0.8 cm);"
              " true species go to /feedback")  # fmt: skip
        self.traffic.switch("drift", shifted=True, labelled=True)
        self.marks["drift_onset"] = onset = time.time()
        evaluations: dict[str, dict[str, Any]] = {}

        def retrained() -> list[dict[str, Any]]:
            status = self._status("driftpolicies.mlops.dev", POLICY)
            stamp = status.get("lastEvaluationTime")
            if stamp and stamp not in evaluations:
                evaluations[stamp] = {
                    t.get("name"): t.get("value") for t in status.get("triggers") or []
                }
            return self._retrain_jobs()

        jobs = wait_until(retrained, timeout=timeout, what="the DriftPolicy to retrain")
        job = jobs[0]
        created = _epoch(job["metadata"]["creationTimestamp"])
        self.marks["retrain_triggered"] = created
        reason = job["metadata"].get("annotations", {}).get(RETRAIN_REASON_ANNOTATION, "")
        _step(
            f"drift detected: TrainingJob {job['metadata']['name']} created {created - onset:.1f} s after the shift"
        )
        _detail(f"reason: {reason[:300]}")
        return self._record("shift", began, training_job=job["metadata"]["name"], reason=reason,
                            onset_to_trigger=created - onset,
                            evaluations={f"{_epoch(k) - onset:+.1f}s": v for k, v in evaluations.items()},
                            dataset=job["spec"]["dataset"])  # fmt: skip

    def retrain(self, timeout: float = 240) -> Stage:
        """Wait for the retrain on the logged rows and for v2's gates."""
        began = time.time()
        name = self._retrain_jobs()[0]["metadata"]["name"]
        _step(f"retrain on a fifth of the original data plus the logged rows joined with their"
              f" labels (TrainingJob {name})")  # fmt: skip
        status = self._trained(name, timeout)
        version = str(status.get("modelVersion"))
        _detail(str(status.get("message")))
        _step(f"validate {version} (the champion v1 is scored on the same new held-out rows)")
        validated = self._validated(version, timeout)
        for gate in validated.get("gateResults") or []:
            _detail(
                f"{gate.get('gate')}: {'passed' if gate.get('passed') else 'FAILED'} {gate.get('message', '')}"
            )
        self.marks["v2_validated"] = time.time()
        mv = self.k.get("modelversions.mlops.dev", version) or {}
        return self._record("retrain", began, training_job=name, model_version=version,
                            metrics=status.get("metrics"), gate_results=validated.get("gateResults"),
                            dataset=mv.get("spec", {}).get("lineage", {}).get("dataset"),
                            parent_version=mv.get("spec", {}).get("lineage", {}).get("parentVersion"))  # fmt: skip

    def reproduce(self, name: str) -> subprocess.CompletedProcess[str]:
        """`mlops reproduce NAME`: re-train from the lineage (stored snapshots included)."""
        command = [str(Path(sys.executable).with_name("mlops")), "reproduce", name,
                   "-n", self.namespace]  # fmt: skip
        env = {**os.environ, "KUBECONFIG": str(self.k.kubeconfig)}
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    def rollout(self, timeout: float = 240) -> Stage:
        """Watch v2's canary until it is promoted."""
        began = time.time()
        _step("canary: v2 serves beside v1, judged on errors and live accuracy")
        wait_until(lambda: any(o.version == "2" for o in self._observed()), timeout=timeout,
                   what="the first answer from v2")  # fmt: skip
        self.marks["serving_v2"] = time.time()
        _detail(
            f"v2 answered its first request {self.marks['serving_v2'] - self.marks['drift_onset']:.1f} s after the shift"
        )
        wait_until(lambda: self._champion() == 2, timeout=timeout, what="v2 to be promoted")
        self.marks["promoted"] = time.time()
        history = self._status("modeldeployments.mlops.dev", DEPLOYMENT).get("history") or []
        promote = next(
            (h for h in history if h.get("version") == 2 and h.get("action") == "Promote"), None
        )
        _step(
            f"promoted v2 {self.marks['promoted'] - self.marks['drift_onset']:.1f} s after the shift"
        )
        if promote:
            _detail(f"evidence: {promote.get('evidence')}")
        return self._record("rollout", began, history=history, promote=promote)

    def recover(self, evaluations: int = 2, timeout: float = 150) -> Stage:
        """Keep the shifted traffic on v2 until the policy judges v2 twice: no drift, no retrain."""
        began = time.time()
        _step("after the promotion: the same shifted traffic, now judged against v2's reference")
        seen: set[str] = set()
        start = self.marks["promoted"]

        def judged() -> bool:
            status = self._status("driftpolicies.mlops.dev", POLICY)
            stamp = status.get("lastEvaluationTime")
            if stamp and _epoch(stamp) > start + 15 and stamp not in seen:
                seen.add(stamp)
                triggers = {t.get("name"): t for t in status.get("triggers") or []}
                drift, accuracy = triggers.get("featureDrift", {}), triggers.get("accuracy", {})
                _detail(
                    f"evaluation {len(seen)}: drifted share {drift.get('value')}, accuracy {accuracy.get('value')}"
                )
            return len(seen) >= evaluations

        wait_until(judged, timeout=timeout, what="the DriftPolicy to judge v2")
        self.marks["recovered"] = time.time()
        status = self._status("driftpolicies.mlops.dev", POLICY)
        return self._record("recover", began, triggers=status.get("triggers"),
                            retrains=len(self._retrain_jobs()),
                            drift_detected=[c for c in status.get("conditions") or []
                                            if c.get("type") == "DriftDetected"])  # fmt: skip

    def finish(self, *, remove: bool = False) -> None:
        """Stop the traffic and the operator; with `remove`, delete the loop's objects first.

        The cluster, the namespace and the artifact claim stay.
        """
        if self.traffic is not None:
            self.traffic.stop()
        running = self._operator is not None and self._operator.poll() is None
        if remove and running and self.kube is not None:
            self._remove_loop_objects()
        if self._operator is not None and self._operator.poll() is None:
            self._operator.send_signal(signal.SIGTERM)
            try:
                self._operator.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._operator.kill()
                self._operator.wait()

    # -- measurements for the report ---------------------------------------------------------

    def psi_series(
        self, window: str = "30s", step: float = 5.0
    ) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """Per (served version, feature): PSI over `window`, every `step` s, from Prometheus."""
        from mlops_operator.prometheus.promql import Scope, feature_psi

        query = feature_psi(Scope(MODEL, self.namespace), window)
        start = self.stages[0].finished if self.stages else time.time() - 600
        params = urllib.parse.urlencode({"query": query, "start": f"{start:.3f}",
                                         "end": f"{time.time():.3f}", "step": f"{step:g}"})  # fmt: skip
        url = f"{self.prometheus_url.rstrip('/')}/api/v1/query_range?{params}"
        with urllib.request.urlopen(url, timeout=30) as response:
            payload = json.loads(response.read())
        series: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for result in payload.get("data", {}).get("result", []):
            labels = result["metric"]
            key = (labels.get("model_version", "?"), labels.get("feature", "?"))
            series[key] = [(float(t), float(v)) for t, v in result["values"]]
        return series
