"""The local control plane behaves like any Kubernetes control plane.

Aspects: health and versions; CRDs (Established, create/list/watch/delete);
the job, deployment, garbage-collector and namespace controllers; PodSecurity
admission; RBAC for a narrowly bound identity.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import yaml

from mlops_operator.localcluster.binaries import KUBERNETES_VERSION
from tests.kube import KUBECTL, exists, get_json, gone, kubectl, wait_established, wait_for


def test_readyz_and_versions(kubeconfig: Path) -> None:
    assert kubectl(kubeconfig, "get", "--raw", "/readyz").stdout.strip() == "ok"
    versions = json.loads(kubectl(kubeconfig, "version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.mlops.dev}
spec:
  group: test.mlops.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
"""


def _widget(namespace: str, name: str, size: int) -> str:
    return json.dumps(
        {
            "apiVersion": "test.mlops.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size},
        }
    )


def test_crd_lifecycle(kubeconfig: Path, namespace: str) -> None:
    kubectl(kubeconfig, "apply", "-f", "-", stdin=WIDGET_CRD)
    wait_established(kubeconfig, "crd/widgets.test.mlops.dev")
    # The watch lists first (w0 comes as ADDED) and then watches from the list's
    # resourceVersion, so nothing created after that line is missed. A --watch-only
    # started just before the creates missed them while kubectl was still connecting.
    kubectl(kubeconfig, "create", "-f", "-", stdin=_widget(namespace, "w0", 3))
    watch = subprocess.Popen(
        [
            str(KUBECTL),
            f"--kubeconfig={kubeconfig}",
            "-n",
            namespace,
            "get",
            "widgets",
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
            "--request-timeout=60s",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    stdout = watch.stdout
    assert stdout is not None

    def event() -> tuple[str, str]:
        line = json.loads(stdout.readline())
        return line["type"], line["object"]["metadata"]["name"]

    try:
        assert event() == ("ADDED", "w0")
        for i in (1, 2):
            kubectl(kubeconfig, "create", "-f", "-", stdin=_widget(namespace, f"w{i}", i))
        listed = get_json(kubeconfig, "-n", namespace, "widgets")
        assert sorted(item["spec"]["size"] for item in listed["items"]) == [1, 2, 3]
        invalid = kubectl(
            kubeconfig,
            "create",
            "-f",
            "-",
            check=False,
            stdin=json.dumps(
                {
                    "apiVersion": "test.mlops.dev/v1",
                    "kind": "Widget",
                    "metadata": {"name": "bad", "namespace": namespace},
                    "spec": {"size": 0},
                }
            ),
        )
        assert invalid.returncode != 0
        assert "spec.size" in invalid.stderr
        kubectl(kubeconfig, "-n", namespace, "delete", "widget", "w1")
        events = [event() for _ in range(3)]
        assert events == [("ADDED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]
        remaining = get_json(kubeconfig, "-n", namespace, "widgets")["items"]
        assert [w["metadata"]["name"] for w in remaining] == ["w0", "w2"]
    finally:
        watch.kill()
        watch.wait()


JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: hello}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: main, image: busybox, command: ["true"]}
"""


def _pods(kubeconfig: Path, namespace: str, selector: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = get_json(kubeconfig, "-n", namespace, "pods", "-l", selector)[
        "items"
    ]
    return items


def test_job_creates_pod_and_garbage_collection_removes_it(
    kubeconfig: Path, namespace: str
) -> None:
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", stdin=JOB)
    pods = wait_for(lambda: _pods(kubeconfig, namespace, "job-name=hello"), what="the Job's pod")
    owner = pods[0]["metadata"]["ownerReferences"][0]  # type: ignore[index]
    assert owner["kind"] == "Job"
    kubectl(kubeconfig, "-n", namespace, "delete", "job", "hello", "--cascade=background")
    wait_for(
        lambda: not _pods(kubeconfig, namespace, "job-name=hello"),
        what="the garbage collector to delete the Job's pod",
    )


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: main, image: busybox, command: ["sleep", "3600"]}
"""


def test_deployment_creates_replicaset_and_pods(kubeconfig: Path, namespace: str) -> None:
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", stdin=DEPLOYMENT)
    replica_sets = wait_for(
        lambda: get_json(kubeconfig, "-n", namespace, "replicasets", "-l", "app=web")["items"],
        what="a ReplicaSet",
    )
    assert replica_sets[0]["metadata"]["ownerReferences"][0]["name"] == "web"
    wait_for(
        lambda: len(_pods(kubeconfig, namespace, "app=web")) == 2, what="two pods of the Deployment"
    )


def test_deleted_namespace_goes_away(kubeconfig: Path) -> None:
    name = f"gone-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "namespace", name)
    kubectl(kubeconfig, "-n", name, "create", "configmap", "x", "--from-literal=a=b")
    kubectl(kubeconfig, "delete", "namespace", name, "--wait=false")
    wait_for(
        lambda: gone(kubeconfig, "namespace", name),
        what="the namespace controller to finish the deletion",
    )


def test_pod_security_restricted_is_enforced(kubeconfig: Path, namespace: str) -> None:
    kubectl(
        kubeconfig,
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    )
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root", "namespace": namespace},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    rejected = kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(privileged), check=False)
    assert rejected.returncode != 0
    assert 'violates PodSecurity "restricted' in rejected.stderr
    compliant = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ok", "namespace": namespace},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    kubectl(kubeconfig, "create", "-f", "-", stdin=json.dumps(compliant))


def test_narrow_role_denies_everything_else(
    kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    kubectl(kubeconfig, "-n", namespace, "create", "serviceaccount", "reader")
    kubectl(
        kubeconfig,
        "-n",
        namespace,
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    )
    kubectl(
        kubeconfig,
        "-n",
        namespace,
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
    )
    token = kubectl(kubeconfig, "-n", namespace, "create", "token", "reader").stdout.strip()
    admin = yaml.safe_load(kubeconfig.read_text())
    reader_config = tmp_path / "reader.kubeconfig"
    reader_config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": admin["clusters"],
                "users": [{"name": "reader", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "reader",
                        "context": {"cluster": admin["clusters"][0]["name"], "user": "reader"},
                    }
                ],
                "current-context": "reader",
            }
        )
    )

    # Allowed once the API server's RBAC cache has the new RoleBinding (it is filled from a
    # watch, so a request at once may still be judged without it).
    wait_for(
        lambda: exists(reader_config, "-n", namespace, "pods"),
        timeout=30,
        what="the reader's RoleBinding to allow listing pods",
    )
    for args in (
        ("-n", namespace, "get", "secrets"),
        ("-n", "default", "get", "pods"),
        ("-n", namespace, "delete", "pod", "anything"),
    ):
        denied = kubectl(reader_config, *args, check=False)
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr, denied.stderr
        assert f"system:serviceaccount:{namespace}:reader" in denied.stderr
