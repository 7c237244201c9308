"""Pure views of mlops objects (as the API returns them): rows and lineage trees.

Objects are read as plain dicts, not through the API models: a view must still show an object
that an older or newer operator wrote, and every field it reads may be absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STATUS_COLUMNS",
    "LineageNode",
    "format_table",
    "lineage",
    "lineage_json",
    "model_statuses",
    "render_tree",
]

Obj = Mapping[str, Any]

STATUS_COLUMNS = (
    ("namespace", "NAMESPACE"),
    ("model", "MODEL"),
    ("versions", "VERSIONS"),
    ("latest", "LATEST"),
    ("champion", "CHAMPION"),
    ("challenger", "CHALLENGER"),
    ("serving", "SERVING"),
    ("training", "TRAINING"),
    ("drift", "DRIFT"),
)


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _condition(obj: Obj, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == type_), None)


def _key(obj: Obj) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["spec"].get("modelName", "")


def _version_label(version: Obj | None) -> str:
    if version is None:
        return "-"
    return f"v{version['spec'].get('version', '?')} {_status(version).get('phase', 'Pending')}"


def _serving(deployment: Obj) -> dict[str, str]:
    status = _status(deployment)
    champion = status.get("champion")
    challenger = status.get("challenger")
    ready = _condition(deployment, "Ready")
    return {
        "champion": f"v{champion['version']}" if champion else "-",
        "challenger": (
            f"v{challenger['version']} {challenger.get('weight', 0)}% {challenger.get('phase', '')}"
            if challenger
            else "-"
        ),
        "serving": (
            f"{status.get('readyReplicas', 0)}/{deployment['spec'].get('replicas', 1)}"
            f" {ready['reason'] if ready else 'Pending'}"
        ),
    }


def _drift(policy: Obj | None) -> str:
    if policy is None:
        return "-"
    if (policy.get("spec") or {}).get("suspend"):
        return "suspended"
    detected = _condition(policy, "DriftDetected")
    headline = _status(policy).get("headline")
    word = {"True": "drift", "False": "ok"}.get(detected["status"] if detected else "", "unknown")
    if headline and headline.get("value") is not None:
        return f"{word} {headline['name']}={headline['value']:.3g}/{headline.get('threshold')}"
    return word


def model_statuses(
    training_jobs: Iterable[Obj],
    versions: Iterable[Obj],
    deployments: Iterable[Obj],
    policies: Iterable[Obj],
) -> list[dict[str, Any]]:
    """One row per (namespace, model): versions, what serves, the last training and drift."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(key: tuple[str, str]) -> dict[str, Any]:
        if key not in rows:
            rows[key] = {"namespace": key[0], "model": key[1], "versions": 0, "latest": "-"}
            rows[key].update(champion="-", challenger="-", serving="-", training="-", drift="-")
        return rows[key]

    latest: dict[tuple[str, str], Obj] = {}
    for version in versions:
        key = _key(version)
        row(key)["versions"] += 1
        if key not in latest or version["spec"]["version"] > latest[key]["spec"]["version"]:
            latest[key] = version
    for key, version in latest.items():
        row(key)["latest"] = _version_label(version)
    for job in sorted(training_jobs, key=lambda j: j["metadata"].get("creationTimestamp", "")):
        phase = _status(job).get("phase", "Pending")
        row(_key(job))["training"] = f"{job['metadata']['name']} {phase}"
    by_deployment: dict[tuple[str, str], tuple[str, str]] = {}
    for deployment in deployments:
        key = _key(deployment)
        row(key).update(_serving(deployment))
        by_deployment[(key[0], deployment["metadata"]["name"])] = key
    for policy in policies:
        namespace = policy["metadata"].get("namespace", "")
        target = by_deployment.get((namespace, policy["spec"].get("deployment", "")))
        if target is not None:
            row(target)["drift"] = _drift(policy)
    return [rows[key] for key in sorted(rows)]


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """`rows` as kubectl prints tables: upper-case headers, columns padded with three spaces."""
    cells = [[header for _, header in columns]]
    cells += [[str(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


@dataclass
class LineageNode:
    """One step of a lineage: a label and what came out of it."""

    label: str
    children: list[LineageNode] = field(default_factory=list)


def _metric(version: Obj) -> str:
    primary = version["spec"].get("primaryMetric") or {}
    value = primary.get("value")
    return f"{primary.get('name')}={value:.4g}" if isinstance(value, int | float) else ""


def _role(deployment: Obj, version: Obj) -> str | None:
    """What `version` is to `deployment`: champion, challenger, served before, or nothing."""
    status = _status(deployment)
    name = version["metadata"]["name"]
    if (status.get("champion") or {}).get("modelVersion") == name:
        return "champion"
    challenger = status.get("challenger") or {}
    if challenger.get("modelVersion") == name:
        return f"challenger {challenger.get('weight', 0)}% {challenger.get('phase', '')}".rstrip()
    number = version["spec"].get("version")
    if any(entry.get("version") == number for entry in status.get("history") or []):
        return "served before"
    if version["spec"].get("targetDeployment") == deployment["metadata"]["name"]:
        return "candidate"
    return None


def lineage(version: Obj, training_job: Obj | None, deployments: Iterable[Obj]) -> LineageNode:
    """dataset → TrainingJob → ModelVersion → ModelDeployments, from the version's lineage."""
    spec = version["spec"]
    record = spec.get("lineage") or {}
    name = version["metadata"]["name"]
    label = f"ModelVersion {name}  v{spec.get('version')}  {_metric(version)}"
    label += f"  {_status(version).get('phase', 'Pending')}"
    if record.get("parentVersion"):
        label += f"  (retrained from {record['parentVersion']})"
    node = LineageNode(label)
    for deployment in sorted(deployments, key=lambda d: d["metadata"]["name"]):
        role = _role(deployment, version)
        if role is not None and deployment["spec"].get("modelName") == spec.get("modelName"):
            node.children.append(
                LineageNode(f"ModelDeployment {deployment['metadata']['name']}  {role}")
            )
    if not record:
        return LineageNode("no lineage: an imported model", [node])
    job_name = record.get("trainingJob")
    if job_name:
        if training_job is None:
            job_label = f"TrainingJob {job_name}  (deleted)"
        else:
            job_label = f"TrainingJob {job_name}  {_status(training_job).get('phase', 'Pending')}"
        job_label += f"  {record.get('estimator')} seed={record.get('seed')}"
        node = LineageNode(job_label, [node])
    dataset = record.get("dataset") or {}
    return LineageNode(
        f"dataset {dataset.get('uri')}  sha256:{str(dataset.get('sha256', ''))[:12]}"
        f"  {dataset.get('rows')} rows × {dataset.get('columns')} columns",
        [node],
    )


def lineage_json(
    version: Obj, training_job: Obj | None, deployments: Iterable[Obj]
) -> dict[str, Any]:
    """The same lineage for scripts: each step's identity and state, no formatting."""
    spec = version["spec"]
    record = spec.get("lineage") or {}
    name = version["metadata"]["name"]
    roles = [
        {"name": d["metadata"]["name"], "role": role}
        for d in sorted(deployments, key=lambda d: d["metadata"]["name"])
        if d["spec"].get("modelName") == spec.get("modelName")
        and (role := _role(d, version)) is not None
    ]
    return {
        "dataset": record.get("dataset"),
        "trainingJob": (
            {
                "name": record["trainingJob"],
                "exists": training_job is not None,
                "phase": _status(training_job).get("phase") if training_job else None,
                "estimator": record.get("estimator"),
                "params": record.get("params", {}),
                "seed": record.get("seed"),
            }
            if record.get("trainingJob")
            else None
        ),
        "modelVersion": {
            "name": name,
            "namespace": version["metadata"].get("namespace"),
            "model": spec.get("modelName"),
            "version": spec.get("version"),
            "phase": _status(version).get("phase"),
            "metrics": spec.get("metrics", {}),
            "artifact": spec.get("artifact"),
            "parentVersion": record.get("parentVersion"),
        },
        "deployments": roles,
    }


def render_tree(node: LineageNode) -> str:
    """The tree as text, one node per line, children under their parent."""
    lines = [node.label]

    def walk(children: Sequence[LineageNode], prefix: str) -> None:
        for index, child in enumerate(children):
            last = index == len(children) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{child.label}")
            walk(child.children, prefix + ("   " if last else "│  "))

    walk(node.children, "")
    return "\n".join(lines)
