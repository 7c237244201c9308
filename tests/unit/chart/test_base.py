"""The kustomize base (rendered from the chart): least-privilege RBAC and an operator pod that
Kopf and the restricted Pod Security Standard accept.

Aspects: every Role and ClusterRole is free of wildcards, cluster-wide Secret access and
escalating verbs, and the checker itself catches each of those; the operator's rules grant
exactly the verbs listed here per resource (a new verb is a reviewed change); the Deployment
runs one leader-elected replica (its Lease Role reaches only that Lease), probes /healthz and
/readyz, sets resources, and its pod meets `restricted`; the user roles (named after the release)
aggregate into view and edit, none writes status, and only the approver role holds the governance
verbs; the admission policies deny by default in every namespace, admit status writes from the
operator's account only, and name the annotations and verbs of `mlops_operator.api.governance`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_operator.api.governance import OPERATOR_ANNOTATIONS, Verb
from mlops_operator.api.metadata import (
    APPROVED_BY_ANNOTATION,
    REJECTED_BY_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
)
from tests.unit.chart.rendered import BASE, by_kind, documents, rbac_problems

DOCS = documents(BASE.read_text())
ROLES = by_kind(DOCS, "ClusterRole") + by_kind(DOCS, "Role")
MLOPS = ("trainingjobs", "modelversions", "modeldeployments", "driftpolicies")

# What the controllers use, by (apiGroup, resource). Review any change against the handlers.
OPERATOR_GRANTS = {
    **{("mlops.dev", r): {"get", "list", "watch", "patch"} for r in MLOPS},
    ("mlops.dev", "trainingjobs"): {"get", "list", "watch", "patch", "create", "delete"},
    ("mlops.dev", "modelversions"): {"get", "list", "watch", "patch", "create"},
    **{("mlops.dev", f"{r}/status"): {"get", "patch"} for r in MLOPS},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "persistentvolumeclaims"): {"get", "create"},
    # spec.feedback's request-id key: created once, never read back.
    ("", "secrets"): {"create"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("monitoring.coreos.com", "servicemonitors"): {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    },
    ("gateway.networking.k8s.io", "httproutes"): {"get", "create", "patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}


def _grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def _role(name: str) -> dict[str, Any]:
    (found,) = [r for r in ROLES if r["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("role", ROLES, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_no_role_has_wildcards_cluster_wide_secrets_or_escalation(role: dict[str, Any]) -> None:
    assert rbac_problems(role) == []


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, "wildcard in apiGroups"),
        ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, "wildcard in resources"),
        (
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
            "wildcard in verbs",
        ),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "cluster-wide Secret"),
        (
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"]},
            "escalating verbs",
        ),
        ({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, "nonResourceURLs"),
    ],
)
def test_the_checker_finds_each_kind_of_problem(rule: dict[str, Any], problem: str) -> None:
    role = {"kind": "ClusterRole", "metadata": {"name": "bad"}, "rules": [rule]}
    (found,) = rbac_problems(role)
    assert problem in found


def test_the_operator_gets_exactly_the_verbs_its_controllers_use() -> None:
    assert _grants(_role("mlops-operator")) == OPERATOR_GRANTS


def test_the_operator_role_is_bound_to_its_service_account_only() -> None:
    (binding,) = by_kind(DOCS, "ClusterRoleBinding")
    (account,) = by_kind(DOCS, "ServiceAccount")
    assert binding["roleRef"]["name"] == "mlops-operator"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "mlops-system"}
    ]


def test_the_deployment_runs_one_leader_elected_replica_under_restricted() -> None:
    (deployment,) = by_kind(DOCS, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    # Leader election on: a rolling update's new pod waits as a standby until the old one goes.
    assert spec["strategy"] == {"type": "RollingUpdate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "mlops-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "healthz"}
    assert {"name": "healthz", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["MLOPS_ARTIFACT_PVC"] == "mlops-artifacts"
    assert env["MLOPS_TRAINER_IMAGE"] == "ghcr.io/mlops-operator/trainer:0.1.0"
    assert env["MLOPS_LEADER_ELECTION"] == "true"
    assert env["MLOPS_LEADER_ELECTION_LEASE"] == "mlops-operator"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_the_lease_role_reaches_only_its_own_lease() -> None:
    role = _role("mlops-operator-leader-election")
    assert role["kind"] == "Role"
    assert role["metadata"]["namespace"] == "mlops-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["mlops-operator"],
            "verbs": ["get", "patch"],
        },
    ]
    (binding,) = [
        b for b in by_kind(DOCS, "RoleBinding") if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["subjects"][0]["name"] == "mlops-operator"


def test_user_roles_join_view_and_edit_and_only_approvers_hold_the_governance_verbs() -> None:
    aggregation = "rbac.authorization.k8s.io/aggregate-to-"
    labels = {r["metadata"]["name"]: r["metadata"]["labels"] for r in ROLES}
    assert labels["mlops-operator-viewer"][f"{aggregation}view"] == "true"
    assert labels["mlops-operator-editor"][f"{aggregation}edit"] == "true"
    assert not any(key.startswith(aggregation) for key in labels["mlops-operator-approver"])
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    governance = {verb.value for verb in Verb}
    for name in ("mlops-operator-viewer", "mlops-operator-editor", "mlops-operator-approver"):
        for (_, resource), verbs in _grants(_role(name)).items():
            assert not (resource.endswith("/status") and verbs & writes), (name, resource)
            if name != "mlops-operator-approver":
                assert not verbs & governance, (name, resource, verbs)
    approver = _grants(_role("mlops-operator-approver"))
    assert approver[("mlops.dev", "modelversions")] == {
        "get", "list", "watch", "patch", Verb.APPROVE, Verb.REJECT
    }  # fmt: skip
    assert approver[("mlops.dev", "modeldeployments")] == {
        "get", "list", "watch", "patch", Verb.PROMOTE, Verb.ROLLBACK
    }  # fmt: skip


def _policies() -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in by_kind(DOCS, "ValidatingAdmissionPolicy")}


def test_every_policy_is_bound_to_deny_in_every_namespace_by_default() -> None:
    policies = _policies()
    assert sorted(policies) == [
        f"mlops-operator-{name}" for name in ("annotations", "approvals", "promotions", "status")
    ]
    bindings = by_kind(DOCS, "ValidatingAdmissionPolicyBinding")
    assert {b["spec"]["policyName"] for b in bindings} == set(policies)
    for binding in bindings:
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {}
    for policy in policies.values():
        assert policy["spec"]["failurePolicy"] == "Fail"


def test_the_policies_use_the_governance_catalogue() -> None:
    """The chart's CEL names the annotations and verbs the operator and the CLI use."""
    approvals = json.dumps(_policies()["mlops-operator-approvals"])
    for name in (APPROVED_BY_ANNOTATION, REJECTED_BY_ANNOTATION, REVOKED_BY_ANNOTATION):
        assert f"'{name}'" in approvals
    for verb in (Verb.APPROVE, Verb.REJECT):
        assert f"check('{verb}')" in approvals
    promotions = json.dumps(_policies()["mlops-operator-promotions"])
    assert f"'{REQUESTED_BY_ANNOTATION}'" in promotions
    assert f"'{Verb.ROLLBACK}' : '{Verb.PROMOTE}'" in promotions
    annotations = _policies()["mlops-operator-annotations"]["spec"]["validations"][0]
    listed = [f"'{name}'" for name in OPERATOR_ANNOTATIONS]
    assert f"[{', '.join(listed)}]" in annotations["expression"]


def test_only_the_operators_account_writes_status() -> None:
    status = _policies()["mlops-operator-status"]["spec"]
    assert status["matchConstraints"]["resourceRules"][0]["resources"] == [
        f"{kind}/status" for kind in MLOPS
    ]
    assert status["validations"][0]["expression"] == (
        'request.userInfo.username in ["system:serviceaccount:mlops-system:mlops-operator"]'
    )


def test_the_base_carries_the_four_crds_without_helm_metadata() -> None:
    crds = by_kind(DOCS, "CustomResourceDefinition")
    assert sorted(c["spec"]["names"]["kind"] for c in crds) == sorted(
        ["TrainingJob", "ModelVersion", "ModelDeployment", "DriftPolicy"]
    )
    text = BASE.read_text()
    assert "helm.sh/" not in text
    assert "managed-by: Helm" not in text
