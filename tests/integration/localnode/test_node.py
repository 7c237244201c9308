"""The local node runs pods for real: processes, namespaces, volumes, Services, DNS, metrics.

Aspects: node registration and Lease; Jobs to completion with termination
messages and exit codes; Deployments with per-pod IPs and garbage collection
down to processes and network namespaces; Services (ClusterIP routing,
readiness, rolling update without loss); volumes (ConfigMap, Secret, PVC) and
in-cluster credentials under RBAC; cluster DNS; Prometheus discovery; images
that cannot run; `mlops cluster logs`.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.localcluster.cluster import LocalCluster
from tests.kube import get_json, kubectl, wait_for

ECHO_SERVER = (Path(__file__).parent / "echo_server.py").read_text()
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 2000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def apply(kubeconfig: Path, namespace: str, *docs: dict[str, Any]) -> None:
    """Apply manifests in `namespace`."""
    stream = "\n---\n".join(json.dumps(d) for d in docs)
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", stdin=stream)


def http_get(url: str, timeout: float = 3) -> tuple[int, str]:
    """A GET from the host; (status, body), or (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def pod(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    """The pod object, as the API server has it now."""
    result: dict[str, Any] = get_json(kubeconfig, "-n", namespace, "pod", name)
    return result


def job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    """A Job running `python -c script` in the project's Python image."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": RESTRICTED_POD,
                    "containers": [
                        {
                            "name": "main",
                            "image": "mlops-operator/python:dev",
                            "command": ["python", "-c", script],
                            "securityContext": RESTRICTED_CONTAINER,
                            **spec,
                        }
                    ],
                }
            },
        },
    }


def job_condition(kubeconfig: Path, namespace: str, name: str) -> str | None:
    """`Complete` or `Failed` once the Job has finished."""
    conditions = (
        get_json(kubeconfig, "-n", namespace, "job", name).get("status", {}).get("conditions", [])
    )
    done = [
        c["type"]
        for c in conditions
        if c["status"] == "True" and c["type"] in ("Complete", "Failed")
    ]
    return done[0] if done else None


def job_pod(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any]:
    """The (only) pod of a Job."""
    pods = get_json(kubeconfig, "-n", namespace, "pods", "-l", f"job-name={name}")["items"]
    assert len(pods) == 1
    result: dict[str, Any] = pods[0]
    return result


def echo_deployment(
    name: str, replicas: int = 2, image: str = "mlops-operator/python:dev"
) -> list[dict[str, Any]]:
    """A ConfigMap holding the echo server and a Deployment running it on port 8080."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-code"},
            "data": {"server.py": ECHO_SERVER},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {
                        "labels": {"app": name},
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": "8080",
                        },
                    },
                    "spec": {
                        "securityContext": RESTRICTED_POD,
                        "terminationGracePeriodSeconds": 10,
                        "containers": [
                            {
                                "name": "server",
                                "image": image,
                                "command": ["python", "/code/server.py", "8080"],
                                "env": [
                                    {
                                        "name": "POD_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                    }
                                ],
                                "ports": [{"name": "http", "containerPort": 8080}],
                                # A slow answer on a busy machine is not unreadiness.
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": "http"},
                                    "periodSeconds": 1,
                                    "timeoutSeconds": 3,
                                    "failureThreshold": 2,
                                },
                                "volumeMounts": [{"name": "code", "mountPath": "/code"}],
                                "securityContext": RESTRICTED_CONTAINER,
                            }
                        ],
                        "volumes": [{"name": "code", "configMap": {"name": f"{name}-code"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    ]


def wait_rollout(kubeconfig: Path, namespace: str, deployment: str) -> None:
    """Wait until the Deployment's rollout has finished."""
    kubectl(
        kubeconfig,
        "-n",
        namespace,
        "rollout",
        "status",
        f"deployment/{deployment}",
        "--timeout=120s",
        timeout=130,
    )


def run_job(kubeconfig: Path, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply a Job, wait for it to complete, and return the JSON its pod wrote as termination message."""
    name = manifest["metadata"]["name"]
    apply(kubeconfig, namespace, manifest)
    assert wait_for(lambda: job_condition(kubeconfig, namespace, name), what=name) == "Complete"
    state = job_pod(kubeconfig, namespace, name)["status"]["containerStatuses"][0]["state"]
    result: dict[str, Any] = json.loads(state["terminated"]["message"])
    return result


def ready_pods(kubeconfig: Path, namespace: str, app: str) -> list[dict[str, Any]]:
    """The app's pods whose Ready condition is True."""
    items = get_json(kubeconfig, "-n", namespace, "pods", "-l", f"app={app}")["items"]
    return [
        p
        for p in items
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
        and not p["metadata"].get("deletionTimestamp")
    ]


def test_node_is_ready_and_renews_its_lease(kubeconfig: Path) -> None:
    node = get_json(kubeconfig, "node", "local-0")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert int(node["status"]["capacity"]["cpu"]) >= 1
    lease = ("-n", "kube-node-lease", "lease", "local-0")
    first = get_json(kubeconfig, *lease)["spec"]["renewTime"]
    wait_for(
        lambda: get_json(kubeconfig, *lease)["spec"]["renewTime"] != first,
        timeout=60,
        what="the node to renew its Lease",
    )


def test_job_succeeds_with_its_termination_message(kubeconfig: Path, namespace: str) -> None:
    script = (
        "import os; open('/dev/termination-log', 'w').write('uid=%d' % os.getuid()); print('done')"
    )
    apply(kubeconfig, namespace, job("hello", script))
    assert (
        wait_for(lambda: job_condition(kubeconfig, namespace, "hello"), what="the Job")
        == "Complete"
    )
    status = job_pod(kubeconfig, namespace, "hello")["status"]
    assert status["phase"] == "Succeeded"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["message"] == "uid=1000", "the process must run as the pod's user"


def test_failing_job_reports_its_exit_code(kubeconfig: Path, namespace: str) -> None:
    apply(kubeconfig, namespace, job("boom", "import sys; sys.exit(3)"))
    assert (
        wait_for(lambda: job_condition(kubeconfig, namespace, "boom"), what="the Job") == "Failed"
    )
    status = job_pod(kubeconfig, namespace, "boom")["status"]
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


def test_a_volume_over_the_checkout_does_not_hide_the_environment(
    kubeconfig: Path, namespace: str
) -> None:
    # Wherever the project lives (CI may clone it under /tmp, which trainer pods cover
    # with an emptyDir), a volume mounted over it must not hide the Python the pod runs.
    checkout = Path(sys.prefix).resolve().parent
    script = (
        "import json, os, mlops_operator;"
        f"open('/dev/termination-log', 'w').write(json.dumps(sorted(os.listdir({str(checkout)!r}))))"
    )
    manifest = job("covered", script, volumeMounts=[{"name": "over", "mountPath": str(checkout)}])
    manifest["spec"]["template"]["spec"]["volumes"] = [{"name": "over", "emptyDir": {}}]
    listing = run_job(kubeconfig, namespace, manifest)
    assert Path(sys.prefix).name in listing, "the venv must be back at its path"
    assert "README.md" not in listing, "the rest of the checkout is covered by the volume"


def test_a_container_waits_for_the_secret_its_env_names(kubeconfig: Path, namespace: str) -> None:
    # An owner creates a pod's Deployment and the Secret it reads in some order; a pod that
    # starts first must wait for the Secret (CreateContainerConfigError), as the kubelet does,
    # not fail for good (a ModelDeployment's server once never became ready that way).
    script = "import os; open('/dev/termination-log', 'w').write(os.environ['KEY'])"
    key = {"secretKeyRef": {"name": "late", "key": "key"}}
    apply(kubeconfig, namespace, job("waits", script, env=[{"name": "KEY", "valueFrom": key}]))

    def config_error() -> str | None:
        pods = get_json(kubeconfig, "-n", namespace, "pods", "-l", "job-name=waits")["items"]
        statuses = pods[0].get("status", {}).get("containerStatuses") or [] if pods else []
        waiting = statuses[0].get("state", {}).get("waiting", {}) if statuses else {}
        return (
            waiting.get("message")
            if waiting.get("reason") == "CreateContainerConfigError"
            else None
        )

    assert 'secret "late" not found' in wait_for(
        config_error, what="the pod to wait for its Secret"
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "late"},
              "stringData": {"key": "arrived"}}  # fmt: skip
    apply(kubeconfig, namespace, secret)
    assert wait_for(lambda: job_condition(kubeconfig, namespace, "waits"), what="the Job") == (
        "Complete"
    )
    terminated = job_pod(kubeconfig, namespace, "waits")["status"]["containerStatuses"][0]
    assert terminated["state"]["terminated"]["message"] == "arrived"


def test_unknown_image_fails_at_once_with_a_clear_reason(kubeconfig: Path, namespace: str) -> None:
    manifest = job("alien", "print(1)")
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/library/nginx:1.27"
    apply(kubeconfig, namespace, manifest)
    assert (
        wait_for(lambda: job_condition(kubeconfig, namespace, "alien"), what="the Job") == "Failed"
    )
    status = job_pod(kubeconfig, namespace, "alien")["status"]
    assert status["reason"] == "ImageNotRunnableLocally"
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImageNotRunnableLocally"
    assert "nginx" in waiting["message"]


def test_deployment_pods_serve_on_their_own_ips_and_are_collected(
    kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, namespace, *echo_deployment("echo"))
    wait_rollout(kubeconfig, namespace, "echo")
    pods = ready_pods(kubeconfig, namespace, "echo")
    assert len(pods) == 2
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2
    for p in pods:
        code, body = http_get(f"http://{p['status']['podIP']}:8080/")
        assert code == 200
        assert json.loads(body) == {"pod": p["metadata"]["name"], "uid": 1000}
    uids = [p["metadata"]["uid"] for p in pods]

    kubectl(kubeconfig, "-n", namespace, "delete", "deployment", "echo")
    wait_for(
        lambda: not get_json(kubeconfig, "-n", namespace, "pods", "-l", "app=echo")["items"],
        what="the pods to be garbage-collected",
    )
    assert not get_json(kubeconfig, "-n", namespace, "replicasets", "-l", "app=echo")["items"]
    for uid in uids:
        short = uid.replace("-", "")[:10]
        assert (
            f"mlops-{short}"
            not in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, check=True
            ).stdout
        )
        leftovers = subprocess.run(
            ["pgrep", "-f", f"{uid}/run/server.json"], capture_output=True, text=True, check=False
        ).stdout
        assert not leftovers.strip(), f"processes of pod {uid} survived: {leftovers}"
    for ip in ips:
        assert http_get(f"http://{ip}:8080/", timeout=1)[0] == 0


# Serial: no request may fail while the rollout replaces pods, which holds while kube-proxy
# drops an old pod's endpoint within its drain time; the suite's own load stretches that.
@pytest.mark.serial(lane=2)
def test_service_routes_to_ready_pods_and_a_rollout_loses_nothing(
    kubeconfig: Path, namespace: str
) -> None:
    apply(kubeconfig, namespace, *echo_deployment("svc"))
    wait_rollout(kubeconfig, namespace, "svc")
    cluster_ip = get_json(kubeconfig, "-n", namespace, "service", "svc")["spec"]["clusterIP"]
    url = f"http://{cluster_ip}/"
    seen = wait_for(
        lambda: (
            {json.loads(b)["pod"] for c, b in (http_get(url) for _ in range(20)) if c == 200}
            or None
        ),
        what="answers through the ClusterIP",
    )
    pods = ready_pods(kubeconfig, namespace, "svc")
    assert seen <= {p["metadata"]["name"] for p in pods}

    unready = pods[0]
    urllib.request.urlopen(
        urllib.request.Request(f"http://{unready['status']['podIP']}:8080/unready", method="POST"),
        timeout=3,
    ).close()
    wait_for(
        lambda: len(ready_pods(kubeconfig, namespace, "svc")) == 1, what="the pod to turn unready"
    )
    other = next(p["metadata"]["name"] for p in pods if p is not unready)

    def only_other() -> bool:
        answers = [http_get(url) for _ in range(20)]
        return all(c == 200 and json.loads(b)["pod"] == other for c, b in answers)

    wait_for(only_other, what="the Service to stop sending traffic to the unready pod")

    failures: list[str] = []
    sent = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal sent
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline and sent < 20000:
            code, body = http_get(url, timeout=5)
            sent += 1
            if code != 200:
                failures.append(body)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        kubectl(kubeconfig, "-n", namespace, "set", "env", "deployment/svc", "ROLL=1")
        wait_rollout(kubeconfig, namespace, "svc")
    finally:
        stop.set()
        thread.join()
    assert sent > 20
    assert failures == [], f"{len(failures)} of {sent} requests failed during the rollout"


def test_volumes_and_in_cluster_credentials(kubeconfig: Path, namespace: str) -> None:
    apply(
        kubeconfig,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"color": "blue"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": "s3cret"},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "lister"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "lister"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "lister"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lister"},
            "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": namespace}],
        },
    )
    script = """
import json, os, pathlib, ssl, urllib.request, urllib.error
sa = pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount')
ctx = ssl.create_default_context(cafile=str(sa / 'ca.crt'))
base = 'https://%s:%s' % (os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])
ns = (sa / 'namespace').read_text()
def call(path):
    req = urllib.request.Request(base + path, headers={'Authorization': 'Bearer ' + (sa / 'token').read_text()})
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
counter = pathlib.Path('/data/runs')
runs = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(runs))
result = {'color': open('/config/color').read(), 'password': open('/secret/password').read(),
          'runs': runs, 'list_configmaps': call('/api/v1/namespaces/%s/configmaps' % ns),
          'list_secrets': call('/api/v1/namespaces/%s/secrets' % ns)}
open('/dev/termination-log', 'w').write(json.dumps(result))
"""

    def run(name: str) -> dict[str, Any]:
        manifest = job(
            name,
            script,
            volumeMounts=[
                {"name": "config", "mountPath": "/config"},
                {"name": "secret", "mountPath": "/secret"},
                {"name": "data", "mountPath": "/data"},
            ],
        )
        pod_spec = manifest["spec"]["template"]["spec"]
        pod_spec["serviceAccountName"] = "lister"
        pod_spec["volumes"] = [
            {"name": "config", "configMap": {"name": "settings"}},
            {"name": "secret", "secret": {"secretName": "creds"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        ]
        return run_job(kubeconfig, namespace, manifest)

    first = run("first")
    assert first == {
        "color": "blue",
        "password": "s3cret",
        "runs": 1,
        "list_configmaps": 200,
        "list_secrets": 403,
    }
    assert run("second")["runs"] == 2, "data written to the PVC must survive the pod"


def test_a_claim_holds_no_more_than_it_asked_for(kubeconfig: Path, namespace: str) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "small"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Mi"}}},
    }
    script = """
import errno, json, os
written, code = 0, None
try:
    with open('/data/fill', 'wb') as out:
        for _ in range(64):
            out.write(bytes(65536))
            out.flush()
            written += 65536
except OSError as e:
    code = e.errno
open('/dev/termination-log', 'w').write(json.dumps({'errno': code, 'written': written}))
"""
    manifest = job("fill", script, volumeMounts=[{"name": "data", "mountPath": "/data"}])
    manifest["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "small"}}
    ]
    apply(kubeconfig, namespace, claim)
    result = run_job(kubeconfig, namespace, manifest)
    assert result["errno"] == errno.ENOSPC, result
    assert 0 < result["written"] < 2 << 20, result
    volume = get_json(kubeconfig, "-n", namespace, "pvc", "small")["spec"]["volumeName"]
    pv = get_json(kubeconfig, "pv", volume)
    assert pv["spec"]["capacity"]["storage"] == "2Mi"
    assert pv["metadata"]["annotations"]["mlops.dev/local-volume"] == "ext4-image", pv


def test_cluster_dns_resolves_services_inside_pods(kubeconfig: Path, namespace: str) -> None:
    apply(kubeconfig, namespace, *echo_deployment("named", replicas=1))
    wait_rollout(kubeconfig, namespace, "named")
    script = """
import json, socket, urllib.request
answers = {
    'api': socket.gethostbyname('kubernetes.default.svc'),
    'named': socket.gethostbyname('named'),
    'body': json.loads(urllib.request.urlopen('http://named/', timeout=5).read()),
}
open('/dev/termination-log', 'w').write(json.dumps(answers))
"""
    answers = run_job(kubeconfig, namespace, job("resolver", script))
    assert answers["api"] == "10.96.0.1"
    assert (
        answers["named"]
        == get_json(kubeconfig, "-n", namespace, "service", "named")["spec"]["clusterIP"]
    )
    assert answers["body"]["pod"].startswith("named-")


def test_prometheus_discovers_and_scrapes_a_pod(
    kubeconfig: Path, namespace: str, local_cluster: LocalCluster
) -> None:
    apply(kubeconfig, namespace, *echo_deployment("scraped", replicas=1))
    wait_rollout(kubeconfig, namespace, "scraped")
    prometheus = local_cluster.env()["PROMETHEUS_URL"]
    query = urllib.parse.quote(f'echo_requests_total{{namespace="{namespace}"}}')

    def series() -> list[Any] | None:
        code, body = http_get(f"{prometheus}/api/v1/query?query={query}")
        return json.loads(body)["data"]["result"] if code == 200 else None

    result = wait_for(series, timeout=90, what="Prometheus to scrape the pod")
    assert result[0]["metric"]["pod"].startswith("scraped-")


def test_cluster_logs_shows_a_containers_output(
    kubeconfig: Path, namespace: str, local_cluster: LocalCluster
) -> None:
    apply(kubeconfig, namespace, job("talker", "print('hello from the pod')"))
    wait_for(lambda: job_condition(kubeconfig, namespace, "talker"), what="the Job")
    name = job_pod(kubeconfig, namespace, "talker")["metadata"]["name"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_operator.cli",
            "cluster",
            "--state-dir",
            str(local_cluster.layout.root),
            "logs",
            "-n",
            namespace,
            name,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hello from the pod" in out


@pytest.fixture(autouse=True)
def _restricted(kubeconfig: Path, namespace: str) -> None:
    # Every pod in these tests must pass the restricted Pod Security Standard.
    kubectl(
        kubeconfig, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
