"""Approvals, status and manual promotions are decided by the API server, tried as the users.

A TrainingJob an editor creates, gated by ``requireApproval``, yields a version held for approval.
Then, each request impersonating the user:

- the editor's approval is refused by the API server (no ``approve`` verb), under their own name
  or an approver's; the approver's approval under someone else's name is refused too;
- nobody but the operator writes status: not the approver (RBAC), not a user granted
  ``modelversions/status`` by a Role of their own, not a cluster admin (the admission policy);
- the approver's approval (``mlops approve``, logged in with the approver's own token) goes
  through, and the status, an Event and the audit log record the authenticated name;
  withdrawing it needs the verb and ``revoked-by`` naming the requester (``mlops approve
  --revoke``); a rejection (``mlops reject``) is final and recorded the same way;
- pinning a ModelDeployment's version by hand is a ``promote`` the editor may not make, and the
  approver makes it only naming themselves in ``mlops.dev/requested-by`` (``mlops promote``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.api.metadata import (
    APPROVED_BY_ANNOTATION,
    REJECTED_BY_ANNOTATION,
    REQUESTED_BY_ANNOTATION,
    REVOKED_BY_ANNOTATION,
)
from mlops_operator.audit import read_entries
from tests.integration.governance.conftest import Governed
from tests.integration.operator.conftest import REPO, RunningOperator
from tests.kube import kubectl, wait_for

EXAMPLES = REPO / "manifests" / "examples" / "iris"
POLICY = "ValidatingAdmissionPolicy"


def _example(name: str, namespace: str, **spec: Any) -> str:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"] |= spec
    return json.dumps(doc)


def _wait_phase(governed: Governed, name: str, phase: str, timeout: float = 120) -> dict[str, Any]:
    wait_for(lambda: governed.phase(name) == phase, timeout=timeout, what=f"{name} {phase}")
    return governed.get("modelversion", name)


def _annotate(*pairs: str) -> list[str]:
    return ["annotate", "modelversion", "iris-v1", *pairs]


def _status_patch(kind: str, name: str) -> list[str]:
    body = {"status": {"phase": "Validated"}} if kind == "modelversion" else {"status": {}}
    return ["patch", kind, name, "--subresource=status", "--type=merge", "-p", json.dumps(body)]


def test_approval_status_and_promotion_are_the_api_servers_decisions(
    governed: Governed, governed_operator: RunningOperator, tmp_path: Path
) -> None:
    ns, editor, approver = governed.namespace, governed.editor, governed.approver
    store = governed.store()
    gates = {"metrics": [{"metric": "accuracy", "op": ">=", "threshold": 0.8}],
             "requireApproval": True}  # fmt: skip
    governed.allowed(editor, "apply", "-f", "-", stdin=_example("trainingjob", ns, gates=gates))
    held = _wait_phase(governed, "iris-v1", "AwaitingApproval", timeout=300)
    ready = {c["type"]: c for c in held["status"]["conditions"]}["Ready"]
    assert "holding the `approve` verb" in ready["message"]

    # An editor (the built-in edit role) cannot approve, under any name.
    for name in (editor, approver):
        refusal = governed.refused(editor, *_annotate(f"{APPROVED_BY_ANNOTATION}={name}"))
        assert POLICY in refusal
        assert (
            "needs the approve verb on modelversions.mlops.dev"
            f" (role {governed.approver_role}); {editor}" in refusal
        )
    # An approver cannot approve in someone else's name.
    refusal = governed.refused(approver, *_annotate(f"{APPROVED_BY_ANNOTATION}=someone-else"))
    assert f"must name the user making the request ({approver}), not someone-else" in refusal

    # Status is the operator's alone: RBAC refuses the approver; the policy refuses even a user
    # whom a Role grants the status subresource, and a cluster admin.
    refusal = governed.refused(approver, *_status_patch("modelversion", "iris-v1"))
    assert re.search(r'cannot (get|patch) resource "modelversions/status"', refusal), refusal
    writer = f"status-writer@{ns}"
    kubectl(governed.kubeconfig, "create", "role", "status-writer", "-n", ns, "--verb=get,patch",
            "--resource=modelversions.mlops.dev/status,modeldeployments.mlops.dev/status")  # fmt: skip
    kubectl(governed.kubeconfig, "create", "rolebinding", "status-writer", "-n", ns,
            "--role=status-writer", f"--user={writer}")  # fmt: skip
    # RBAC must allow the writer (the API server's RBAC cache fills from a watch) before the
    # refusal below can only be the policy's.
    wait_for(
        lambda: kubectl(governed.kubeconfig, "auth", "can-i", "patch", "modelversions.mlops.dev",
                        "--subresource=status", "-n", ns, f"--as={writer}",
                        check=False).returncode == 0,
        timeout=30, what="the status-writer RoleBinding to take effect",
    )  # fmt: skip
    for user in (writer, "cluster-admin@example"):
        extra = ("--as-group=system:masters",) if user.startswith("cluster-admin") else ()
        refusal = governed.refused(user, *extra, *_status_patch("modelversion", "iris-v1"))
        assert "is observation written by the mlops operator alone" in refusal
        assert f"{user} may not write it" in refusal
    assert governed.phase("iris-v1") == "AwaitingApproval"

    # The approver approves, in their own name (`mlops approve` logged in with their token):
    # recorded as the API server authenticated them.
    assert f"approved by {approver}" in governed.mlops("approve", "iris-v1")
    approved = _wait_phase(governed, "iris-v1", "Validated")["status"]
    assert approved["approval"]["by"] == approver
    assert [(r["action"], r["by"]) for r in approved["reviews"]] == [("Approve", approver)]
    wait_for(
        lambda: any(e["reason"] == "Approved" and e["message"] == f"approved by {approver}"
                    for e in governed.events("ModelVersion", "iris-v1")),
        timeout=30, what="the Approved Event",
    )  # fmt: skip

    # Withdrawing it needs the verb, and says who withdrew it.
    assert POLICY in governed.refused(
        editor, *_annotate(f"{APPROVED_BY_ANNOTATION}-", f"{REVOKED_BY_ANNOTATION}={editor}")
    )
    refusal = governed.refused(approver, *_annotate(f"{APPROVED_BY_ANNOTATION}-"))
    assert f"must set mlops.dev/revoked-by to your own user name ({approver})" in refusal
    assert f"approval revoked by {approver}" in governed.mlops("approve", "--revoke", "iris-v1")
    revoked = _wait_phase(governed, "iris-v1", "AwaitingApproval")["status"]
    assert "approval" not in revoked
    assert revoked["reviews"][-1] == {**revoked["reviews"][-1], "action": "Revoke", "by": approver}

    # A rejection: the verb, the name, and final.
    assert POLICY in governed.refused(editor, *_annotate(f"{REJECTED_BY_ANNOTATION}={editor}"))
    assert f"rejected by {approver}" in governed.mlops("reject", "iris-v1")
    rejected = _wait_phase(governed, "iris-v1", "Rejected")["status"]
    assert [r["action"] for r in rejected["reviews"]] == ["Approve", "Revoke", "Reject"]
    assert "a rejection is final" in governed.refused(
        approver, *_annotate(f"{REJECTED_BY_ANNOTATION}-")
    )

    # The audit log (in the artifact store) has every decision with the authenticated name.
    log = store / "audit" / ns / "modelversions" / "iris-v1.jsonl"

    def audited() -> list[tuple[str, str]] | None:
        if not log.exists():
            return None
        entries = [(e.action, e.actor) for e in read_entries(log)[0]]
        return entries if len(entries) == 3 else None

    assert wait_for(audited, timeout=180, what="three reviews in the audit log") == [
        ("Approve", approver),
        ("Revoke", approver),
        ("Reject", approver),
    ]

    # Which version serves, by hand: the promote verb, and the requester's own name.
    governed.allowed(editor, "apply", "-f", "-", stdin=_example("modeldeployment", ns))
    pin = json.dumps({"spec": {"promotion": "Manual", "version": 1}})
    refusal = governed.refused(editor, "patch", "mdep", "iris", "--type=merge", "-p", pin)
    assert (
        "is a promote and needs that verb on modeldeployments.mlops.dev"
        f" (role {governed.approver_role}); {editor}" in refusal
    )
    refusal = governed.refused(approver, "patch", "mdep", "iris", "--type=merge", "-p", pin)
    assert f"must set mlops.dev/requested-by to your own user name ({approver})" in refusal
    assert f"version 1 requested by {approver}" in governed.mlops("promote", "iris", "--to", "1")
    pinned = governed.get("mdep", "iris")
    assert pinned["spec"]["version"] == 1
    assert pinned["metadata"]["annotations"][REQUESTED_BY_ANNOTATION] == approver
    back = governed.mlops("promote", "iris", "--auto")
    assert f"promotion Auto, requested by {approver}" in back
    assert governed.get("mdep", "iris")["spec"]["promotion"] == "Auto"
    assert "is observation written by the mlops operator alone" in governed.refused(
        approver, "--as-group=system:masters", *_status_patch("modeldeployment", "iris")
    )
