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

This module is the one catalogue of those names: the controllers, the CLI and
the chart's policies (checked by ``tests/unit/chart``) all use these values.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "APPROVED_BY",
    "AUDITED",
    "OPERATOR_ANNOTATIONS",
    "REJECTED_BY",
    "REQUESTED_BY",
    "REVOKED_BY",
    "TRAINING_JOB_UID",
    "Verb",
]

APPROVED_BY = "mlops.dev/approved-by"
"""On a ModelVersion: the user who approved it (verb `Verb.APPROVE`)."""
REJECTED_BY = "mlops.dev/rejected-by"
"""On a ModelVersion: the user who rejected it (verb `Verb.REJECT`); final."""
REVOKED_BY = "mlops.dev/revoked-by"
"""On a ModelVersion: the user who withdrew its approval, set when `APPROVED_BY` is removed
(verb `Verb.APPROVE`)."""
REQUESTED_BY = "mlops.dev/requested-by"
"""On a ModelDeployment: the user who changed which version it serves by hand (``promotion``
or ``version``; verb `Verb.PROMOTE` or `Verb.ROLLBACK`)."""
TRAINING_JOB_UID = "mlops.dev/training-job-uid"
"""On a ModelVersion: the uid of the TrainingJob that produced it. Only the operator may set
it, so its presence says the operator made the version from a training run it observed."""
AUDITED = "mlops.dev/audited"
"""On an object with an audit log: the id of the newest entry handed to an audit Job."""

OPERATOR_ANNOTATIONS = (TRAINING_JOB_UID, AUDITED)
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
