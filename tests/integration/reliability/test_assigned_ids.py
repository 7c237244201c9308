"""Workload pods on a platform that assigns their user and group, as OpenShift does.

OpenShift's ``restricted-v2`` SecurityContextConstraints give each namespace a UID range, refuse
a pod whose ``runAsUser`` or ``fsGroup`` lies outside it and fill both in when the pod leaves
them out. Here a ValidatingAdmissionPolicy plays that part for the test's namespace, stricter
still: the API server refuses any Pod, Job or Deployment whose pod names a ``runAsUser``,
``runAsGroup`` or ``fsGroup`` (at the pod's or a container's level).

Aspects: with the operator's default ids (the images' 65532) the API server refuses every
workload its builders make (trainer, validator and audit Jobs, inference server and evaluator
Deployments, and each of their pods), so the loop below could not run; with the ids unset (what
values-openshift.yaml renders) it admits them all, and an operator run with that setting trains
the iris TrainingJob into a Validated ModelVersion and serves it: predictions and feedback are
answered, the audit Job completes, the evaluator is ready, and the server writes its payload log
and labels into the claim (no fsGroup) as the image's own user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.gates import Gates
from mlops_operator.api.modeldeployment import ModelDeployment
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, WorkloadSecurityContext
from mlops_operator.api.trainingjob import TrainingJob
from mlops_operator.audit.entry import make_entry
from mlops_operator.podcontract import IMAGE_USER
from mlops_operator.resources.audit import audit_job
from mlops_operator.resources.common import (
    ArtifactStorage,
    restricted_container_security_context,
    restricted_pod_security_context,
)
from mlops_operator.resources.labels import evaluator_deployment, labels_key
from mlops_operator.resources.modeldeployment import serving_deployment
from mlops_operator.resources.payloadlog import payload_log_key
from mlops_operator.resources.trainingjob import build_job
from mlops_operator.resources.validation import validation_job
from tests.integration.driftpolicy.conftest import Server
from tests.integration.modeldeployment.traffic import wait_until_routed
from tests.integration.operator.conftest import REPO, operator_for_test
from tests.integration.reliability.test_security import (
    _admission,
    _as_pod,
    _example,
    _model_version,
)
from tests.integration.trainingjob.conftest import (
    TRAINING_TIMEOUT,
    apply,
    training_job,
    wait_finished,
)
from tests.kube import find_json, get_json, kubectl, wait_for

pytestmark = pytest.mark.reliability

UNSET = WorkloadSecurityContext(run_as_user=None, run_as_group=None, fs_group=None)
STORAGE = ArtifactStorage()
_REFUSAL = "the platform assigns runAsUser, runAsGroup and fsGroup from the namespace's range"
_IDS = ("runAsUser", "runAsGroup", "fsGroup")


def _policy(namespace: str) -> list[dict[str, Any]]:
    """The policy (and its binding to `namespace`) refusing pods that pick their own ids."""
    name = f"assigned-ids-{namespace}"
    writes = ["CREATE", "UPDATE"]
    ids = " || ".join(f"has(variables.pod.securityContext.{key})" for key in _IDS)
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": writes,
                            "resources": ["pods"],
                        },
                        {
                            "apiGroups": ["batch"],
                            "apiVersions": ["v1"],
                            "operations": writes,
                            "resources": ["jobs"],
                        },
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": writes,
                            "resources": ["deployments"],
                        },
                    ]
                },
                # Pods, and the pod templates of what makes pods: a Job or Deployment whose pods
                # the platform would refuse is refused up front.
                "variables": [
                    {
                        "name": "pod",
                        "expression": "object.kind == 'Pod' ? object.spec"
                        " : object.spec.template.spec",
                    },
                    {
                        "name": "containers",
                        "expression": "variables.pod.containers + (has(variables.pod.initContainers)"
                        " ? variables.pod.initContainers : [])",
                    },
                ],
                "validations": [
                    {
                        "expression": f"!has(variables.pod.securityContext) || !({ids})",
                        "message": f"{_REFUSAL}: the pod's securityContext sets one",
                        "reason": "Forbidden",
                    },
                    {
                        "expression": "variables.containers.all(c, !has(c.securityContext) ||"
                        " !(has(c.securityContext.runAsUser) || has(c.securityContext.runAsGroup)))",
                        "message": f"{_REFUSAL}: a container's securityContext sets one",
                        "reason": "Forbidden",
                    },
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    ]


@pytest.fixture
def assigning(kubeconfig: Path, restricted: str) -> Iterator[str]:
    """The test's namespace (restricted, with its claim) under the policy, once it refuses."""
    # Restricted but for its user: the PodSecurity admission would refuse it first otherwise.
    container = {
        "name": "c",
        "image": "i",
        "securityContext": restricted_container_security_context(),
    }
    security = WorkloadSecurityContext(run_as_user=1000, run_as_group=None, fs_group=None)
    spec = {"securityContext": restricted_pod_security_context(security), "containers": [container]}
    probe = _as_pod(restricted, "probe", {"spec": spec})
    documents = _policy(restricted)
    try:
        for document in documents:
            kubectl(kubeconfig, "apply", "-f", "-", stdin=json.dumps(document))
        # A new policy reaches the API server's admission a moment after it is stored.
        wait_for(lambda: _REFUSAL in _admission(kubeconfig, probe), timeout=60,
                 what="the policy to refuse a pod that sets runAsUser")  # fmt: skip
        yield restricted
    finally:
        for document in reversed(documents):
            kubectl(kubeconfig, "delete", document["kind"], document["metadata"]["name"],
                    "--ignore-not-found", check=False)  # fmt: skip


def _workloads(namespace: str, ids: WorkloadSecurityContext) -> dict[str, dict[str, Any]]:
    """Every workload the operator makes, from its builder, with `ids`."""
    training = TrainingJob.model_validate(_example("trainingjob.yaml", namespace))
    mdep = ModelDeployment.model_validate(_example("modeldeployment.yaml", namespace))
    entry = make_entry(
        kind="ModelDeployment",
        namespace=namespace,
        name="iris",
        uid="u",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        action="Deploy",
        version=1,
        reason="RolloutStarted",
    )
    image = "mlops-operator/trainer:test"
    mv = _model_version(namespace)
    return {
        "trainer": build_job(training, STORAGE, image, security=ids),
        "validator": validation_job(
            mv, image=image, storage=STORAGE, gates=Gates(), champions={}, security=ids
        ),
        "audit": audit_job(
            [entry], key="audit/x.jsonl", model="iris", image=image, storage=STORAGE, security=ids
        ),
        "server": serving_deployment(
            mdep,
            version=1,
            model_version=mv.name,
            artifact_uri=mv.spec.artifact.uri,
            artifact_sha256=mv.spec.artifact.sha256,
            replicas=1,
            traffic=True,
            image=image,
            storage=STORAGE,
            security=ids,
        ),
        "evaluator": evaluator_deployment(mdep, image=image, storage=STORAGE, security=ids),
    }


def _refusals(kubeconfig: Path, namespace: str, ids: WorkloadSecurityContext) -> dict[str, str]:
    """What the API server says (server-side dry run) to each workload and to its pod."""
    found = {}
    for name, manifest in _workloads(namespace, ids).items():
        found[name] = _admission(kubeconfig, manifest)
        pod = _as_pod(namespace, f"{name}-pod", manifest["spec"]["template"])
        found[f"{name} pod"] = _admission(kubeconfig, pod)
    return found


def _ready_replicas(kubeconfig: Path, namespace: str, name: str) -> int:
    """Ready pods of Deployment `name`; 0 while it does not exist (refused, or not made yet)."""
    found = find_json(kubeconfig, "deployment", name, "-n", namespace)
    if found is None:
        return 0
    return int(found.get("status", {}).get("readyReplicas") or 0)


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []


def test_workloads_run_where_the_platform_assigns_their_ids(
    kubeconfig: Path,
    crds: list[Path],
    assigning: str,
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespace = assigning
    # The default ids are refused, every workload and every pod: the loop below could not run.
    refused = _refusals(kubeconfig, namespace, DEFAULT_WORKLOAD_SECURITY)
    assert all(_REFUSAL in message for message in refused.values()), refused
    assert _refusals(kubeconfig, namespace, UNSET) == dict.fromkeys(refused, "")

    # What values-openshift.yaml renders.
    monkeypatch.setenv("MLOPS_WORKLOAD_SECURITY_CONTEXT", json.dumps(dict.fromkeys(_IDS)))
    with operator_for_test(kubeconfig, namespace, tmp_path / "operator.log"):
        apply(kubeconfig, training_job(namespace))
        deployment = yaml.safe_load(
            (REPO / "manifests" / "examples" / "iris" / "modeldeployment.yaml").read_text()
        )
        deployment["metadata"]["namespace"] = namespace
        apply(kubeconfig, deployment)

        trained = wait_finished(kubeconfig, namespace, "iris-initial")
        assert trained["status"]["phase"] == "Succeeded", trained["status"]
        version = trained["status"]["modelVersion"]

        def judged() -> str | None:
            phase = (get_json(kubeconfig, "mv", version, "-n", namespace).get("status") or {}).get(
                "phase"
            )
            return phase if phase in ("Validated", "Rejected") else None

        phase = wait_for(judged, timeout=TRAINING_TIMEOUT, what=f"{version} to be judged")
        assert phase == "Validated"

        kubectl(kubeconfig, "-n", namespace, "wait", "--for=condition=Ready", "mdep/iris",
                "--timeout=240s", timeout=260)  # fmt: skip
        service = get_json(kubeconfig, "service", "iris", "-n", namespace)
        url = f"http://{service['spec']['clusterIP']}:80"
        wait_until_routed(url)
        server = Server(url)
        answer = server.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
        server.feedback(answer["request_id"], ["0", "2"])  # raises unless answered 2xx

        # The server wrote into the claim, which no fsGroup handed to it, as the image's user.
        logs = store / payload_log_key(namespace, "iris")
        labels = store / labels_key(namespace, "iris")
        for root in (logs, labels):
            written = wait_for(partial(_files_under, root), timeout=60, what=f"files in {root}")
            assert {path.stat().st_uid for path in written} == {IMAGE_USER}, root

        wait_for(lambda: _ready_replicas(kubeconfig, namespace, "iris-evaluator") >= 1,
                 timeout=180, what="the evaluator to be ready")  # fmt: skip

        def audited() -> bool:
            jobs = get_json(kubeconfig, "jobs", "-n", namespace,
                            "-l", "app.kubernetes.io/component=audit")["items"]  # fmt: skip
            return any((job.get("status") or {}).get("succeeded") for job in jobs)

        wait_for(audited, timeout=180, what="an audit Job to complete")

        pods = get_json(kubeconfig, "pods", "-n", namespace)["items"]
        components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
        assert {"trainer", "validator", "audit", "inference-server", "evaluator"} <= components
        for pod in pods:
            context = pod["spec"].get("securityContext", {})
            assert not set(_IDS) & set(context), pod["metadata"]["name"]
            assert context["runAsNonRoot"] is True
