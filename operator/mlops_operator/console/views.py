"""What each page shows, from a `Snapshot`: pure, so every page is tested without a server.

Objects are read as plain dicts, as `kubectl get -o json` returns them, not through
the API models: a page must still show an object an older or newer operator wrote,
so every field may be absent. Each function returns the page's context for its
template; formatting (numbers, times) is the templates' business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops_operator.api.metadata import (
    DRIFT_POLICY_LABEL,
    RETRAIN_REASON_ANNOTATION,
    RETRAIN_VALUES_ANNOTATION,
)
from mlops_operator.console.store import Snapshot
from mlops_operator.resources.common import TRAINING_JOB_LABEL

__all__ = [
    "ModelGroup",
    "Retraining",
    "deployment_page",
    "live_periods",
    "model_groups",
    "policy_page",
    "retraining_of",
    "version_page",
    "version_row",
]

Obj = Mapping[str, Any]
_LIVE_ACTIONS = ("Deploy", "Promote", "Rollback")


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj | None) -> Mapping[str, Any]:
    return (obj or {}).get("status") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name", ""))


def _number(version: Obj) -> int:
    value = _spec(version).get("version")
    return value if isinstance(value, int) else 0


def conditions(obj: Obj | None) -> list[Mapping[str, Any]]:
    """The object's conditions, as stored."""
    return list(_status(obj).get("conditions") or [])


def _condition(obj: Obj | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions(obj) if c.get("type") == type_), None)


@dataclass(frozen=True)
class Retraining:
    """Why a TrainingJob exists when a DriftPolicy created it."""

    policy: str
    reason: str
    values: Mapping[str, float]
    created: str


def retraining_of(job: Obj | None) -> Retraining | None:
    """The DriftPolicy retrain behind `job`, from its label and annotations; None for others."""
    if job is None:
        return None
    policy = (_meta(job).get("labels") or {}).get(DRIFT_POLICY_LABEL)
    if not policy:
        return None
    annotations = _meta(job).get("annotations") or {}
    try:
        values = json.loads(annotations.get(RETRAIN_VALUES_ANNOTATION) or "{}")
    except ValueError:
        values = {}
    return Retraining(
        policy=str(policy),
        reason=str(annotations.get(RETRAIN_REASON_ANNOTATION, "")),
        values={k: v for k, v in values.items() if isinstance(v, int | float)},
        created=str(_meta(job).get("creationTimestamp", "")),
    )


def roles(version: Obj, deployments: Iterable[Obj]) -> list[tuple[str, str]]:
    """(deployment, role) for each deployment of the version's model that knows it."""
    name = _name(version)
    number = _number(version)
    found = []
    for deployment in deployments:
        if _spec(deployment).get("modelName") != _spec(version).get("modelName"):
            continue
        status = _status(deployment)
        challenger = status.get("challenger") or {}
        if (status.get("champion") or {}).get("modelVersion") == name:
            role = "champion"
        elif challenger.get("modelVersion") == name:
            role = f"challenger {challenger.get('weight', 0)}%"
        elif any(e.get("version") == number for e in status.get("history") or []):
            role = "served before"
        else:
            continue
        found.append((_name(deployment), role))
    return found


def _gates(version: Obj) -> dict[str, Any]:
    results = list(_status(version).get("gateResults") or [])
    failed = [r for r in results if not r.get("passed")]
    return {"results": results, "passed": len(results) - len(failed), "failed": failed}


def version_row(
    version: Obj, jobs: Mapping[str, Obj], deployments: Sequence[Obj]
) -> dict[str, Any]:
    """One line of a model's versions table."""
    spec, status = _spec(version), _status(version)
    lineage = spec.get("lineage") or {}
    job = jobs.get(str(lineage.get("trainingJob", "")))
    primary = spec.get("primaryMetric") or {}
    return {
        "name": _name(version),
        "namespace": _meta(version).get("namespace", ""),
        "version": _number(version),
        "phase": status.get("phase") or "Pending",
        "primary": primary,
        "metrics": dict(sorted((spec.get("metrics") or {}).items())),
        "gates": _gates(version),
        "approval": status.get("approval"),
        "awaiting_approval": status.get("phase") == "AwaitingApproval",
        "roles": roles(version, deployments),
        "training_job": lineage.get("trainingJob"),
        "retraining": retraining_of(job),
        "parent": lineage.get("parentVersion"),
        "dataset_sha": str((lineage.get("dataset") or {}).get("sha256", "")),
        "created": _meta(version).get("creationTimestamp", ""),
    }


@dataclass
class ModelGroup:
    """One model of one namespace: its versions, deployments, policies and training."""

    namespace: str
    model: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[Obj] = field(default_factory=list)
    policies: list[Obj] = field(default_factory=list)
    training: list[Obj] = field(default_factory=list)
    """TrainingJobs that produced no version (yet): running, pending or failed."""


def _model_of(obj: Obj) -> str:
    spec = _spec(obj)
    return str(spec.get("modelName", ""))


def model_groups(snapshot: Snapshot, namespace: str | None = None) -> list[ModelGroup]:
    """Every model in the scope (or `namespace`), versions newest first."""
    groups: dict[tuple[str, str], ModelGroup] = {}

    def group(obj: Obj, model: str) -> ModelGroup:
        key = (str(_meta(obj).get("namespace", "")), model)
        if key not in groups:
            groups[key] = ModelGroup(*key)
        return groups[key]

    deployments = snapshot.of("ModelDeployment", namespace)
    deployment_model: dict[tuple[str, str], str] = {}
    for deployment in deployments:
        group(deployment, _model_of(deployment)).deployments.append(deployment)
        key = (str(_meta(deployment).get("namespace", "")), _name(deployment))
        deployment_model[key] = _model_of(deployment)
    jobs_by_namespace: dict[str, dict[str, Obj]] = {}
    for job in snapshot.of("TrainingJob", namespace):
        jobs_by_namespace.setdefault(str(_meta(job).get("namespace", "")), {})[_name(job)] = job
        if not _status(job).get("modelVersion"):
            group(job, _model_of(job)).training.append(job)
    for version in snapshot.of("ModelVersion", namespace):
        ns = str(_meta(version).get("namespace", ""))
        owner = group(version, _model_of(version))
        owner.versions.append(
            version_row(version, jobs_by_namespace.get(ns, {}), owner.deployments)
        )
    for policy in snapshot.of("DriftPolicy", namespace):
        target = (str(_meta(policy).get("namespace", "")), str(_spec(policy).get("deployment")))
        model = deployment_model.get(target) or _model_of(
            (_spec(policy).get("retrain") or {}).get("template") or {}
        )
        group(policy, model).policies.append(policy)
    for found in groups.values():
        found.versions.sort(key=lambda row: -int(row["version"]))
    return [groups[key] for key in sorted(groups)]


def _same_model(snapshot: Snapshot, version: Obj) -> list[Obj]:
    namespace = str(_meta(version).get("namespace", ""))
    return [v for v in snapshot.of("ModelVersion", namespace) if _model_of(v) == _model_of(version)]


def version_page(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    """A version: lineage (back to the dataset and the parent), model card, validation report."""
    version = snapshot.get("ModelVersion", namespace, name)
    if version is None:
        return None
    spec = _spec(version)
    lineage = spec.get("lineage") or {}
    job_name = lineage.get("trainingJob")
    job = snapshot.get("TrainingJob", namespace, str(job_name)) if job_name else None
    parent_name = lineage.get("parentVersion")
    siblings = _same_model(snapshot, version)
    deployments = snapshot.of("ModelDeployment", namespace)
    return {
        "version": version,
        "row": version_row(version, {str(job_name): job} if job else {}, deployments),
        "lineage": lineage,
        "dataset": lineage.get("dataset") or {},
        "job": job,
        "job_name": job_name,
        "retraining": retraining_of(job),
        "parent": snapshot.get("ModelVersion", namespace, str(parent_name))
        if parent_name
        else None,
        "parent_name": parent_name,
        "children": [
            _name(v)
            for v in siblings
            if (_spec(v).get("lineage") or {}).get("parentVersion") == name
        ],
        "produced_by_label": (_meta(version).get("labels") or {}).get(TRAINING_JOB_LABEL),
        "signature": spec.get("signature") or {},
        "artifact": spec.get("artifact") or {},
        "gates": _gates(version),
        "declared_gates": spec.get("gates"),
        "conditions": conditions(version),
        "status": _status(version),
    }


def _time(stamp: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp))
    except ValueError:
        return None


def live_periods(history: Sequence[Obj], now: datetime) -> list[dict[str, Any]]:
    """Which version served from when to when, and the history entry that put it there.

    `history` is newest first, as the status keeps it; periods come out oldest first.
    """
    changes = [e for e in reversed(history) if e.get("action") in _LIVE_ACTIONS]
    periods = []
    for index, entry in enumerate(changes):
        start = _time(entry.get("time"))
        end = _time(changes[index + 1].get("time")) if index + 1 < len(changes) else None
        periods.append(
            {
                "version": entry.get("version"),
                "start": start,
                "end": end,
                "current": end is None,
                "seconds": ((end or now) - start).total_seconds() if start else None,
                "entry": entry,
            }
        )
    return periods


def deployment_page(
    snapshot: Snapshot, namespace: str, name: str, now: datetime
) -> dict[str, Any] | None:
    """A deployment: champion and challenger, rollout steps, evidence, what was live when."""
    deployment = snapshot.get("ModelDeployment", namespace, name)
    if deployment is None:
        return None
    spec, status = _spec(deployment), _status(deployment)
    rollout = spec.get("rollout") or {}
    history = list(status.get("history") or [])
    versions = {
        _number(v): _name(v)
        for v in snapshot.of("ModelVersion", namespace)
        if _model_of(v) == _model_of(deployment)
    }
    challenger = status.get("challenger")
    steps = list((rollout.get("canary") or {}).get("steps") or [])
    return {
        "deployment": deployment,
        "spec": spec,
        "status": status,
        "champion": status.get("champion"),
        "challenger": challenger,
        "strategy": rollout.get("strategy") or "Recreate",
        "steps": steps,
        "current_step": (challenger or {}).get("step") if challenger else None,
        "analysis": rollout.get("analysis") or {},
        "shadow": rollout.get("shadow"),
        "floors": spec.get("rollbackFloors"),
        "history": history,
        "rollbacks": [e for e in history if e.get("action") == "Rollback"],
        "periods": live_periods(history, now),
        "versions": versions,
        "conditions": conditions(deployment),
        "policies": [
            p for p in snapshot.of("DriftPolicy", namespace) if _spec(p).get("deployment") == name
        ],
    }


def policy_page(snapshot: Snapshot, namespace: str, name: str) -> dict[str, Any] | None:
    """A DriftPolicy: triggers, cooldown, budget, the retrains it started (charts come apart)."""
    policy = snapshot.get("DriftPolicy", namespace, name)
    if policy is None:
        return None
    spec, status = _spec(policy), _status(policy)
    target = snapshot.get("ModelDeployment", namespace, str(spec.get("deployment", "")))
    retrains = [
        job
        for job in snapshot.of("TrainingJob", namespace)
        if (_meta(job).get("labels") or {}).get(DRIFT_POLICY_LABEL) == name
    ]
    retrains.sort(key=lambda j: str(_meta(j).get("creationTimestamp", "")), reverse=True)
    budget = spec.get("budget") or {}
    return {
        "policy": policy,
        "spec": spec,
        "status": status,
        "target": target,
        "model": _model_of(target) if target else None,
        "triggers": list(status.get("triggers") or []),
        "configured": spec.get("triggers") or {},
        "headline": status.get("headline"),
        "last_retrain": status.get("lastRetrain"),
        "budget": {
            "used": status.get("retrainsInPeriod", 0),
            "count": budget.get("count", 1),
            "period": budget.get("period", "24h"),
        },
        "cooldown": spec.get("cooldown"),
        "retrains": [
            {
                "job": job,
                "retraining": retraining_of(job),
                "version": _status(job).get("modelVersion"),
            }
            for job in retrains
        ],
        "conditions": conditions(policy),
        "drift": _condition(policy, "DriftDetected"),
    }
