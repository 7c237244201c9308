"""Governance: the annotations and RBAC verbs through which people decide, and who may use them.

Decisions a person takes (approve, reject or revoke an approval of a ModelVersion;
promote or roll back a ModelDeployment by hand) are written as annotations that
name the person, and each needs a verb of its own on the kind. The API server
enforces both, not the operator: the chart's ValidatingAdmissionPolicies
(``charts/mlops-operator/templates/admission``) admit a change of one of these
annotations only when the requester holds the verb (an authorization check of
the API server, like a CertificateSigningRequest's ``approve``) and the
annotation names exactly the authenticated user making the request. So the
name the operator records in the status and the audit log is the user the API
server authenticated, never free text.

The annotation keys live in the metadata catalogue (`mlops_operator.api.metadata`,
``*_BY_ANNOTATION``); this module names the verbs and which annotations only the
operator may set. The controllers, the CLI and the chart's policies (checked by
``tests/unit/chart``) all use these values.
"""

from __future__ import annotations

from enum import StrEnum

from mlops_operator.api.metadata import AUDITED_ANNOTATION, TRAINING_JOB_UID_ANNOTATION

__all__ = ["OPERATOR_ANNOTATIONS", "Verb"]


OPERATOR_ANNOTATIONS = (TRAINING_JOB_UID_ANNOTATION, AUDITED_ANNOTATION)
"""Annotations only the operator's identity may set or change (admission policy)."""


class Verb(StrEnum):
    """The custom RBAC verbs of governance (the chart's role ``<release>-approver``; cluster admins have all)."""

    APPROVE = "approve"
    """modelversions: approve a version held by ``requireApproval``, or revoke an approval."""
    REJECT = "reject"
    """modelversions: reject a version for good."""
    PROMOTE = "promote"
    """modeldeployments: pin a newer version than the one pinned or serving, or return to Auto."""
    ROLLBACK = "rollback"
    """modeldeployments: pin an older version than the one pinned or serving."""
