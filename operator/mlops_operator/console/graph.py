"""The loop of one model as one graph: dataset → TrainingJob → ModelVersion → ModelDeployment →
DriftPolicy → retrain → the next version.

Built from what the objects record, nothing inferred: a version's lineage names its
dataset (URI and sha256), its TrainingJob and the version it was retrained from; a
deployment's status names the versions it served; a policy names its deployment; a
retrain TrainingJob carries its policy's label. A payload-log dataset names the
deployment whose traffic it is, which closes the loop back to serving.

Laid out in five columns, one per kind (pure arithmetic, no layout engine); the page
draws it as SVG, and lists the same edges as text for screen readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mlops_operator.console.store import Snapshot
from mlops_operator.console.views import retraining_of, roles

__all__ = ["Edge", "Graph", "Node", "loop_graph"]

COLUMNS = ("dataset", "TrainingJob", "ModelVersion", "ModelDeployment", "DriftPolicy")
NODE_WIDTH = 172
NODE_HEIGHT = 46
_LABEL_CHARS = 22
_COLUMN_GAP = 52
_ROW_GAP = 22
_MARGIN = 16
_LOOP_SPACE = 24
_LOOP_STEP = 12

Obj = Mapping[str, Any]


@dataclass
class Node:
    """One box: its kind (column), label, detail line and link."""

    id: str
    kind: str
    label: str
    detail: str = ""
    href: str | None = None
    title: str = ""
    """The full text, where the label is cut (a dataset's URI)."""
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class Edge:
    """One arrow and what it means."""

    source: str
    target: str
    relation: str
    back: bool = False
    """Drawn as the loop's return (right to left, under the boxes)."""


@dataclass
class Graph:
    """Nodes laid out in columns and the edges between them."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    _bottom: float = 0.0

    def add(self, node: Node) -> Node:
        return self.nodes.setdefault(node.id, node)

    def link(self, source: str, target: str, relation: str) -> None:
        if source in self.nodes and target in self.nodes:
            edge = Edge(source, target, relation, back=self._column(target) < self._column(source))
            if edge not in self.edges:
                self.edges.append(edge)

    def _column(self, node_id: str) -> int:
        return COLUMNS.index(self.nodes[node_id].kind)

    def path(self, edge: Edge) -> str:
        """The SVG path of an edge: a curve forward, straight down within a column, or a loop
        under the boxes back (each loop a little lower, so they stay apart)."""
        source, target = self.nodes[edge.source], self.nodes[edge.target]
        if source.kind == target.kind:
            x = source.x + NODE_WIDTH / 2
            return f"M{x:.0f},{source.y + NODE_HEIGHT:.0f} L{x:.0f},{target.y:.0f}"
        if not edge.back:
            x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT / 2
            x2, y2 = target.x, target.y + NODE_HEIGHT / 2
            middle = (x1 + x2) / 2
            return (
                f"M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            )
        loops = [e for e in self.edges if e.back]
        low = self._bottom + _LOOP_SPACE + _LOOP_STEP * loops.index(edge)
        x1, y1 = source.x + NODE_WIDTH / 2, source.y + NODE_HEIGHT
        x2, y2 = target.x + NODE_WIDTH / 2, target.y + NODE_HEIGHT
        return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{low:.0f} {x2:.0f},{low:.0f} {x2:.0f},{y2:.0f}"

    def layout(self) -> None:
        """Place each node in its kind's column, in the order added."""
        rows = [0] * len(COLUMNS)
        for node in self.nodes.values():
            column = COLUMNS.index(node.kind)
            node.x = _MARGIN + column * (NODE_WIDTH + _COLUMN_GAP)
            node.y = _MARGIN + rows[column] * (NODE_HEIGHT + _ROW_GAP)
            rows[column] += 1
        self.width = _MARGIN * 2 + len(COLUMNS) * NODE_WIDTH + (len(COLUMNS) - 1) * _COLUMN_GAP
        tallest = max(rows, default=0)
        self._bottom = _MARGIN + tallest * (NODE_HEIGHT + _ROW_GAP) - _ROW_GAP
        loops = sum(1 for e in self.edges if e.back)
        self.height = self._bottom + _MARGIN + _LOOP_SPACE + _LOOP_STEP * loops


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _phase(obj: Obj | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "Pending")


def _created(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp", ""))


def _cut(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _dataset_node(graph: Graph, dataset: Mapping[str, Any]) -> str:
    sha = str(dataset.get("sha256", ""))
    uri = str(dataset.get("uri", ""))
    node_id = f"dataset:{sha or uri}"
    detail = f"sha256:{sha[:12]}" if sha else "not snapshotted yet"
    if dataset.get("rows") is not None:
        detail += f" · {dataset.get('rows')} rows"
    graph.add(Node(node_id, "dataset", _cut(uri), detail, title=uri))
    return node_id


def _job_dataset(job: Obj) -> dict[str, Any]:
    dataset = _spec(job).get("dataset") or {}
    if dataset.get("uri"):
        return {"uri": dataset["uri"]}
    logged = dataset.get("fromPayloadLog") or {}
    if logged:
        namespace = (job.get("metadata") or {}).get("namespace", "")
        return {
            "uri": f"payloadlog://{namespace}/{logged.get('deployment')}?window={logged.get('window')}"
        }
    pvc = dataset.get("pvc") or {}
    return {"uri": f"pvc://{pvc.get('claimName')}/{pvc.get('path')}"} if pvc else {}


def _logged_from(uri: str) -> str | None:
    """The deployment whose traffic a ``payloadlog://<namespace>/<deployment>`` dataset is."""
    parts = urlsplit(uri)
    if parts.scheme != "payloadlog":
        return None
    return parts.path.strip("/") or None


def loop_graph(snapshot: Snapshot, namespace: str, model: str, prefix: str) -> Graph:
    """The graph of `model` in `namespace`; links start with `prefix` (``/ns/<namespace>``)."""
    graph = Graph()
    versions = sorted(
        (v for v in snapshot.of("ModelVersion", namespace) if _spec(v).get("modelName") == model),
        key=lambda v: int(_spec(v).get("version") or 0),
    )
    jobs = {
        _name(j): j
        for j in snapshot.of("TrainingJob", namespace)
        if _spec(j).get("modelName") == model
    }
    deployments = [
        d for d in snapshot.of("ModelDeployment", namespace) if _spec(d).get("modelName") == model
    ]
    names = {_name(d) for d in deployments}
    policies = [
        p for p in snapshot.of("DriftPolicy", namespace) if _spec(p).get("deployment") in names
    ]
    for version in versions:
        lineage = _spec(version).get("lineage") or {}
        if lineage.get("dataset"):
            _dataset_node(graph, lineage["dataset"])
        job_name = lineage.get("trainingJob")
        if job_name:
            job = jobs.get(str(job_name))
            graph.add(
                Node(
                    f"tj:{job_name}",
                    "TrainingJob",
                    _cut(str(job_name)),
                    _phase(job) if job else "deleted",
                    title=str(job_name),
                )
            )
    for name, job in sorted(jobs.items(), key=lambda item: _created(item[1])):
        if f"tj:{name}" not in graph.nodes:
            if _job_dataset(job):
                _dataset_node(graph, _job_dataset(job))
            graph.add(Node(f"tj:{name}", "TrainingJob", _cut(name), _phase(job), title=name))
    for version in versions:
        spec = _spec(version)
        primary = spec.get("primaryMetric") or {}
        value = primary.get("value")
        metric = f" · {value:.3f}" if isinstance(value, int | float) else ""
        graph.add(
            Node(
                f"mv:{_name(version)}",
                "ModelVersion",
                _cut(_name(version)),
                f"v{spec.get('version')} · {_phase(version)}{metric}",
                f"{prefix}/versions/{_name(version)}",
                title=_name(version),
            )
        )
    for deployment in deployments:
        champion = ((deployment.get("status") or {}).get("champion") or {}).get("version")
        graph.add(
            Node(
                f"mdep:{_name(deployment)}",
                "ModelDeployment",
                _cut(_name(deployment)),
                f"champion v{champion}" if champion else "no champion",
                f"{prefix}/deployments/{_name(deployment)}",
            )
        )
    for policy in policies:
        retrains = int(((policy.get("status") or {}).get("retrainsInPeriod")) or 0)
        graph.add(
            Node(
                f"dp:{_name(policy)}",
                "DriftPolicy",
                _cut(_name(policy)),
                f"{retrains} retrain(s) in period",
                f"{prefix}/driftpolicies/{_name(policy)}",
            )
        )
    _edges(graph, versions, jobs, deployments, policies)
    graph.layout()
    return graph


def _edges(
    graph: Graph,
    versions: list[Obj],
    jobs: Mapping[str, Obj],
    deployments: list[Obj],
    policies: list[Obj],
) -> None:
    for version in versions:
        lineage = _spec(version).get("lineage") or {}
        name = f"mv:{_name(version)}"
        producer = f"tj:{lineage.get('trainingJob')}"
        if lineage.get("dataset"):
            graph.link(_dataset_node(graph, lineage["dataset"]), producer, "trained on")
        graph.link(producer, name, "produced")
        if lineage.get("parentVersion"):
            graph.link(f"mv:{lineage['parentVersion']}", name, "retrained into")
        for deployment, role in roles(version, deployments):
            graph.link(name, f"mdep:{deployment}", role)
    for job_name, job in jobs.items():
        if f"tj:{job_name}" in graph.nodes and not any(
            e.target == f"tj:{job_name}" and e.relation == "trained on" for e in graph.edges
        ):
            dataset = _job_dataset(job)
            if dataset:
                graph.link(_dataset_node(graph, dataset), f"tj:{job_name}", "trained on")
        retraining = retraining_of(job)
        if retraining is not None:
            graph.link(f"dp:{retraining.policy}", f"tj:{job_name}", "retrain")
    for node in list(graph.nodes.values()):
        if node.kind == "dataset":
            source = _logged_from(node.title)
            if source:
                graph.link(f"mdep:{source}", node.id, "logged traffic")
    for policy in policies:
        graph.link(f"mdep:{_spec(policy).get('deployment')}", f"dp:{_name(policy)}", "watched by")
