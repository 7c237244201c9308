"""The TrainingJob a DriftPolicy creates when a trigger fires: its template, made concrete.

- **Name.** ``<policy>-<slot>``, where the slot is the evaluation's time divided by the
  policy's interval: an operator that crashes after creating the job and evaluates
  again in the same slot asks for the same name and gets ``AlreadyExists``, never a
  second job. (The decision chain's "no retrain running" check covers later slots.)
- **Data.** With ``retrain.useLoggedData`` the job trains on what the target served
  (``dataset.fromPayloadLog`` over the policy's window, the requests joined with their
  labelled feedback), so the new model learns the new distribution; when the template
  names a dataset too, both are combined (``dataset.sources``: the template's data,
  sampled by ``loggedDataSample``, then the logged window), so a class that was rare in
  the window is not forgotten, and the lineage records each source's sha256.
- **Candidate.** ``targetDeployment`` defaults to the watched ModelDeployment, so the
  version produced is compared with that deployment's champion by its gates.
- **Parent.** ``parentVersion`` names the champion that served when the trigger fired,
  so the version produced records in its lineage which version it was retrained from.
- **Record.** Labels tie the job to the policy, the model and the deployment; the
  annotations keep the reason and the measured values, and the ModelVersion's lineage
  then points back at the job. No owner reference: deleting the policy must not delete
  the lineage of versions it produced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mlops_operator.api.driftpolicy import DriftPolicy
from mlops_operator.api.metadata import (
    DRIFT_POLICY_LABEL,
    RETRAIN_REASON_ANNOTATION,
    RETRAIN_VALUES_ANNOTATION,
)
from mlops_operator.api.resource import API_VERSION
from mlops_operator.resources.common import label_value, labels

__all__ = ["build_retraining_job", "retraining_job_name"]


_NAME_PREFIX = 50


def retraining_job_name(policy_name: str, now: datetime, interval_seconds: float) -> str:
    """``<policy>-<slot>``: the same within one evaluation interval, different after it."""
    slot = int(now.timestamp() // max(interval_seconds, 1.0))
    return f"{policy_name[:_NAME_PREFIX].rstrip('-')}-{slot:x}"


def _combined(
    original: dict[str, Any], logged: dict[str, Any], sample: float | None
) -> dict[str, Any]:
    """``dataset.sources``: the template's dataset (or its sources), then the logged window."""
    secret = original.pop("credentialsSecret", None)
    if "sources" in original:
        sources = list(original["sources"])
    else:
        sources = [original | ({"sample": sample} if sample is not None else {})]
    combined: dict[str, Any] = {"sources": [*sources, logged]}
    if secret is not None:
        combined["credentialsSecret"] = secret
    return combined


def build_retraining_job(
    policy: DriftPolicy,
    *,
    name: str,
    reason: str,
    values: Mapping[str, float | None],
    parent_version: str | None = None,
) -> dict[str, Any]:
    """The TrainingJob manifest for `policy`'s retrain template, retraining `parent_version`."""
    spec = policy.spec
    if spec.retrain is None:
        raise ValueError(f"DriftPolicy {policy.name} has no `retrain` template to create from")
    body: dict[str, Any] = spec.retrain.template.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    if spec.retrain.use_logged_data:
        logged = {"fromPayloadLog": {"deployment": spec.deployment, "window": spec.window}}
        original = body.get("dataset")
        if original is None:
            body["dataset"] = logged
        else:
            body["dataset"] = _combined(original, logged, spec.retrain.logged_data_sample)
    body.setdefault("targetDeployment", spec.deployment)
    if parent_version is not None:
        body["parentVersion"] = parent_version
    model = spec.retrain.template.model_name
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": policy.namespace,
            "labels": {
                **labels(model, deployment=spec.deployment),
                DRIFT_POLICY_LABEL: label_value(policy.name),
            },
            "annotations": {
                RETRAIN_REASON_ANNOTATION: reason[:1024],
                RETRAIN_VALUES_ANNOTATION: json.dumps(dict(values), sort_keys=True),
            },
        },
        "spec": body,
    }
