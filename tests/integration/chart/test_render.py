"""The chart without a cluster: lint, the schema's messages, RBAC in each mode, monitoring
objects, the kustomize base it renders, and every overlay builds.

Aspects: `helm lint --strict` is clean; wrong values fail with a message naming the value and
what was expected; in every RBAC mode no rule is too broad, and the Namespaced mode grants the
namespaced rules only in the watched namespaces; the CRDs are optional and kept on uninstall
when asked; the optional monitoring objects render with the configured labels and thresholds;
the checked-in base is exactly what `make manifests` renders; each overlay builds; the ids of
the operator's pod and of the pods it starts are the images' user by default, and with
values-openshift.yaml none (the operator reads them as unset), an id set over it carried alone.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mlops_operator.api.pods import WorkloadSecurityContext
from mlops_operator.runtime.settings import OperatorSettings
from tests.integration.chart.conftest import CHART, KUBECTL, OVERLAYS, Helm, run
from tests.unit.chart.rendered import BASE, REPO, by_kind, documents, rbac_problems


def _template(helm: Helm, *sets: str) -> list[dict]:
    args = [a for s in sets for a in ("--set", s)]
    return documents(helm("template", "rel", str(CHART), "--namespace", "ops", *args).stdout)


def test_lint_strict_is_clean(helm: Helm) -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["operator.logLevel=LOUD"],
            "at '/operator/logLevel': value must be one of 'DEBUG', 'INFO'",
        ),
        (["rbac.scope=Namespaced"], "at '/operator/watchNamespaces': minItems: got 0, want 1"),
        (
            ["rbac.scope=Everywhere"],
            "at '/rbac/scope': value must be one of 'Cluster', 'Namespaced'",
        ),
        (["images.trainer.digest=latest"], "at '/images/trainer/digest': 'latest' does not match"),
        (
            ["operator.watchNamespaces={Team_A}"],
            "at '/operator/watchNamespaces/0': 'Team_A' does not match",
        ),
        (["artifacts.uri=bucket/prefix"], "at '/artifacts/uri': 'bucket/prefix' does not match"),
        (["operator.extraEnv.LOG=1"], "at '/operator/extraEnv': additional properties 'LOG'"),
        (
            ["operator.replicas=2", "operator.leaderElection.enabled=false"],
            "operator.replicas > 1 needs operator.leaderElection.enabled",
        ),
        (["operator.replicas=0"], "at '/operator/replicas': minimum: got 0, want 1"),
        (["operator.metricsPort=8081"], "the probe and the metrics endpoint need a port each"),
        (["operator.timeouts.watchClient=300"], "watchClient (300) must exceed"),
        (["operator.timeouts.watchInactivity=0"], "at '/operator/timeouts/watchInactivity'"),
        (
            ["workloads.securityContext.runAsUser=0"],
            "at '/workloads/securityContext/runAsUser': minimum: got 0, want 1",
        ),
        (
            ["workloads.securityContext.runAsUsr=1"],
            "at '/workloads/securityContext': additional properties 'runAsUsr'",
        ),
    ],
)
def test_wrong_values_fail_with_a_message(helm: Helm, values: list[str], message: str) -> None:
    args = [a for v in values for a in ("--set", v)]
    result = helm("template", "rel", str(CHART), *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["operator.watchNamespaces={team-a,team-b}"],
        ["rbac.scope=Namespaced", "operator.watchNamespaces={team-a,team-b}"],
    ],
    ids=["cluster-wide", "cluster-rbac-some-namespaces", "namespaced-rbac"],
)
def test_no_rbac_mode_grants_too_much(helm: Helm, sets: list[str]) -> None:
    docs = _template(helm, *sets)
    roles = by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
    assert roles
    for role in roles:
        assert rbac_problems(role) == []


def test_namespaced_rbac_grants_objects_only_in_the_watched_namespaces(helm: Helm) -> None:
    docs = _template(helm, "rbac.scope=Namespaced", "operator.watchNamespaces={team-a,team-b}")
    # Besides the watched namespaces, only the leader election's Role on its one Lease.
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(docs, "Role")}
    assert roles == {
        ("team-a", "rel-mlops-operator"),
        ("team-b", "rel-mlops-operator"),
        ("ops", "rel-mlops-operator-leader-election"),
    }
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ops", "team-a", "team-b"]
    (operator,) = [
        r for r in by_kind(docs, "ClusterRole") if r["metadata"]["name"] == "rel-mlops-operator"
    ]
    assert operator["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    (deployment,) = by_kind(docs, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLOPS_NAMESPACES"] == "team-a,team-b"


def test_crds_are_optional_and_kept_on_uninstall_when_asked(helm: Helm) -> None:
    kept = by_kind(_template(helm), "CustomResourceDefinition")
    assert len(kept) == 4
    assert all(c["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for c in kept)
    plain = by_kind(_template(helm, "crds.keep=false"), "CustomResourceDefinition")
    assert all("annotations" not in c["metadata"] for c in plain)
    assert by_kind(_template(helm, "crds.enabled=false"), "CustomResourceDefinition") == []


def test_monitoring_objects_render_when_enabled(helm: Helm) -> None:
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"} & {
        d["kind"] for d in _template(helm)
    }
    docs = _template(
        helm,
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.serviceMonitor.labels.release=kps",
        "monitoring.podMonitor.enabled=true",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.prometheusRule.driftWindow=30m",
        "monitoring.grafanaDashboard.enabled=true",
    )
    (monitor,) = by_kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    (service,) = by_kind(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (rule,) = by_kind(docs, "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {
        "MlopsOperatorDown",
        "MlopsReconcileErrors",
        "MlopsFeatureDrift",
        "MlopsInferenceErrors",
        "MlopsRollback",
    }
    assert alerts["MlopsFeatureDrift"]["expr"].rstrip().endswith("> 0.2")
    assert "increase(mlops_feature_bin_total[30m])" in alerts["MlopsFeatureDrift"]["expr"]
    assert 'job="rel-mlops-operator-metrics"' in alerts["MlopsOperatorDown"]["expr"]
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    for name, alert in alerts.items():
        page, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert page.endswith("/docs/runbooks.md")
        assert f"\n## {name}\n" in runbooks
        assert anchor == name.lower()  # GitHub's anchor of the heading
    (dashboard,) = by_kind(docs, "ConfigMap")
    panels = json.loads(dashboard["data"]["mlops-operator.json"])["panels"]
    titles = {p["title"] for p in panels}
    assert {"Requests per second by version", "PSI per feature over $window"} <= titles


def test_the_checked_in_base_is_what_make_manifests_renders(helm_binary: object) -> None:
    rendered = run(
        ["bash", str(REPO / "manifests" / "render-base.sh")],
        env={**os.environ, "HELM": str(helm_binary)},
    ).stdout
    assert rendered == BASE.read_text(), "manifests/base is stale: run `make manifests`"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_overlay_builds(overlay: object) -> None:
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    docs = documents(result.stdout)
    (deployment,) = by_kind(docs, "Deployment")
    # Leader election is on: a rolling update's new pod stands by until the old one has gone.
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLOPS_LEADER_ELECTION"] == "true"


def test_admission_policies_follow_the_watched_namespaces_and_can_be_left_out(helm: Helm) -> None:
    docs = _template(
        helm, "operator.watchNamespaces={team-a,team-b}", "governance.operatorUsers={ci-operator}"
    )
    bindings = by_kind(docs, "ValidatingAdmissionPolicyBinding")
    assert len(bindings) == 4
    for binding in bindings:
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "team-b"],
                }
            ]
        }
    (status,) = [
        p
        for p in by_kind(docs, "ValidatingAdmissionPolicy")
        if p["metadata"]["name"].endswith("-status")
    ]
    assert status["spec"]["validations"][0]["expression"] == (
        'request.userInfo.username in ["system:serviceaccount:ops:rel-mlops-operator","ci-operator"]'
    )
    assert not by_kind(
        _template(helm, "governance.admissionPolicies=false"), "ValidatingAdmissionPolicy"
    )


def test_network_policies_are_opt_in_per_namespace(helm: Helm) -> None:
    assert not by_kind(_template(helm), "NetworkPolicy")
    docs = _template(
        helm, "networkPolicy.enabled=true", "networkPolicy.namespaces={serving,staging}"
    )
    policies = by_kind(docs, "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["serving", "staging"]
    spec = policies[0]["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "inference-server"
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["from"][0] == {"podSelector": {}}
    assert rule["from"][1]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "ops"}
    }
    failed = helm("template", "rel", str(CHART), "--set", "networkPolicy.enabled=true", check=False)
    assert failed.returncode != 0
    assert "networkPolicy.enabled needs networkPolicy.namespaces" in failed.stderr


def test_the_allowed_image_prefixes_default_to_the_projects_own(helm: Helm) -> None:
    def env(*sets: str) -> dict[str, str]:
        (deployment,) = by_kind(_template(helm, *sets), "Deployment")
        return {
            e["name"]: e.get("value", "")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }

    assert env()["MLOPS_ALLOWED_IMAGE_PREFIXES"] == "ghcr.io/mlops-operator/"
    assert (
        env("images.registry=ghcr.io/acme")["MLOPS_ALLOWED_IMAGE_PREFIXES"]
        == "ghcr.io/acme/mlops-operator/"
    )
    assert env("operator.allowedImagePrefixes={ghcr.io/acme/,quay.io/ml/}")[
        "MLOPS_ALLOWED_IMAGE_PREFIXES"
    ] == ("ghcr.io/acme/,quay.io/ml/")
    allowed = env("operator.prometheusAllowedUrls={http://prom-a:9090,http://prom-b:9090}")
    assert allowed["MLOPS_PROMETHEUS_ALLOWED_URLS"] == "http://prom-a:9090,http://prom-b:9090"


def test_the_console_renders_read_only_in_its_namespaces(helm: Helm) -> None:
    assert not [d for d in _template(helm) if d["metadata"]["name"].endswith("-console")], (
        "the console is off by default"
    )
    docs = _template(
        helm,
        "console.enabled=true",
        "console.namespaces={team-a,team-b}",
        "console.ingress.enabled=true",
        "console.ingress.host=mlops.example.com",
        "operator.prometheusUrl=http://prometheus:9090",
    )
    (role,) = [
        r
        for r in by_kind(docs, "ClusterRole")
        if r["metadata"]["name"] == "rel-mlops-operator-console"
    ]
    assert rbac_problems(role) == []
    assert role["rules"] == [
        {
            "apiGroups": ["mlops.dev"],
            "resources": ["trainingjobs", "modelversions", "modeldeployments", "driftpolicies"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    bindings = [
        b for b in by_kind(docs, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert not [
        b
        for b in by_kind(docs, "ClusterRoleBinding")
        if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    (console,) = [
        d
        for d in by_kind(docs, "Deployment")
        if d["metadata"]["name"] == "rel-mlops-operator-console"
    ]
    pod = console["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["mlops", "console"]
    assert container["args"] == [
        "--address=0.0.0.0",
        "--port=8090",
        "--namespace=team-a",
        "--namespace=team-b",
        "--prometheus-url=http://prometheus:9090",
        "--allow-host=mlops.example.com",
    ]
    assert pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    (ingress,) = by_kind(docs, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "mlops.example.com"
    everywhere = _template(helm, "console.enabled=true")
    assert [
        b["metadata"]["name"]
        for b in by_kind(everywhere, "ClusterRoleBinding")
        if b["roleRef"]["name"] == "rel-mlops-operator-console"
    ] == ["rel-mlops-operator-console"]


_IDS = ("runAsUser", "runAsGroup", "fsGroup")


def _workload_ids(
    helm: Helm, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[dict[str, object], WorkloadSecurityContext]:
    """The operator pod's ids, and the workload pods' ids as the operator reads them."""
    docs = documents(helm("template", "rel", str(CHART), *args).stdout)
    (deployment,) = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    own = {key: pod["securityContext"][key] for key in _IDS if key in pod["securityContext"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    (env,) = [
        e["value"]
        for e in pod["containers"][0]["env"]
        if e["name"] == "MLOPS_WORKLOAD_SECURITY_CONTEXT"
    ]
    monkeypatch.setenv("MLOPS_WORKLOAD_SECURITY_CONTEXT", env)
    return own, OperatorSettings().workload_security_context


def test_openshift_values_unset_every_id_of_every_pod(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, workloads = _workload_ids(helm, monkeypatch)
    assert own == dict.fromkeys(_IDS, 65532)
    assert workloads.pod_fields() == dict.fromkeys(_IDS, 65532)

    openshift = ("-f", str(CHART / "values-openshift.yaml"))
    own, workloads = _workload_ids(helm, monkeypatch, *openshift)
    assert own == {}
    # Helm drops a key set to null: the chart still names it, or the operator would take its
    # default 65532, which restricted-v2 refuses.
    assert workloads.pod_fields() == {}

    assigned = ("--set", "workloads.securityContext.fsGroup=1000680000")
    own, workloads = _workload_ids(helm, monkeypatch, *openshift, *assigned)
    assert workloads.pod_fields() == {"fsGroup": 1000680000}
