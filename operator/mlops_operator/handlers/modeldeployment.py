"""The ModelDeployment controller: serve a model and roll new versions out, safely.

One timer per ModelDeployment ticks every `TICK_SECONDS`; each tick is
*gather → decide → record → act*:

1. **Gather**: the model's ModelVersions, the ready pods of each serving
   Deployment and, when `decisions.rollout.analysis_window` says a judgement is
   due, the challenger's (and champion's) live counts from Prometheus
   (``MLOPS_PROMETHEUS_URL``) or from the pods' ``/metrics``. Versions and
   Deployments come from Kopf indexes (kept by watches, like an informer's
   cache), not from a list per tick.
2. **Decide**: `decisions.rollout.advance` returns the next status and the
   Deployments it implies.
3. **Record**: the status is written first (history, conditions, champion,
   challenger); Events follow, the new decisions are counted
   (`runtime.metrics`) and handed to an audit Job (`handlers.audit`).
4. **Act**: server-side apply of the Service and each version's Deployment
   (deterministic names), deletion of any serving Deployment the status no longer
   wants; a child applied unchanged in the last minute is not applied again
   (`handlers.children`), so a settled ModelDeployment's tick makes no API call.

A ModelDeployment is *settled* when no challenger is being rolled out. A settled
one whose inputs (its own resourceVersion, its versions' and its Deployments')
did not change since its last tick skips ticks for up to `context.SETTLED_TICK_SECONDS`:
200 idle deployments then cost a few percent of a CPU, while any change (a new
version, a spec edit, a pod becoming ready) is still acted on at the next tick.

Because the Deployments follow from the recorded status alone, an operator
killed at any line resumes where the status says: a step is recorded before its
replicas change, and a judgement is taken only once per recorded window.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import kopf
from pydantic import ValidationError

from mlops_operator.api.conditions import ConditionType, Reason
from mlops_operator.api.durations import parse_duration
from mlops_operator.api.events import Event
from mlops_operator.api.metadata import REQUESTED_BY_ANNOTATION, VERSION_LABEL
from mlops_operator.api.modeldeployment import (
    ChallengerPhase,
    ModelDeployment,
    ModelDeploymentStatus,
)
from mlops_operator.api.modelversion import ModelVersion, ModelVersionPhase
from mlops_operator.api.resource import GROUP, VERSION
from mlops_operator.decisions.analysis import (
    Judgement,
    LiveCounts,
    Outcome,
    judge_challenger,
    judge_floors,
)
from mlops_operator.decisions.outbound import scrape_url
from mlops_operator.decisions.rollout import (
    Candidate,
    Plan,
    advance,
    analysis_window,
)
from mlops_operator.handlers import children
from mlops_operator.handlers.audit import audit_deployment
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.kit import now, post, stored_status, write_status
from mlops_operator.handlers.reconciling import parse, reconciles
from mlops_operator.handlers.routing import route_traffic
from mlops_operator.k8s import ApiError, Conflict, KubeClient
from mlops_operator.prometheus import PrometheusError, ScrapeError
from mlops_operator.prometheus.live import prometheus_counts, scraped_counts
from mlops_operator.resources.common import (
    COMPONENT_LABEL,
    DEPLOYMENT_LABEL,
    ArtifactStorage,
    controller_uid,
    label_value,
)
from mlops_operator.resources.labels import (
    evaluator_deployment,
    evaluator_name,
    evaluator_selector,
    labels_key_secret,
    labels_key_secret_name,
)
from mlops_operator.resources.modeldeployment import (
    SERVER_COMPONENT,
    SERVER_PORT,
    Forwarding,
    artifact_refusal,
    deployment_name,
    grpc_port,
    recorded_status,
    service_monitor,
    serving_deployment,
    serving_selector,
    serving_service,
    version_service,
    version_service_url,
)
from mlops_operator.runtime.metrics import count_deployment_decisions

__all__ = ["TICK_SECONDS", "accept_model_deployment", "reconcile_model_deployment"]

logger = logging.getLogger(__name__)

TICK_SECONDS = 2.0


VersionIndex = kopf.Index[tuple[str, str], Mapping[str, Any]]
DeploymentIndex = kopf.Index[tuple[str, str], Mapping[str, Any]]


@kopf.index(GROUP, VERSION, "modelversions")
def model_versions_by_model(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """ModelVersions by (namespace, model name), for the ticks of ModelDeployments."""
    model = (body.get("spec") or {}).get("modelName")
    return {(str(namespace), str(model)): dict(body)} if model else {}


@kopf.index(
    "apps",
    "v1",
    "deployments",
    labels={COMPONENT_LABEL: SERVER_COMPONENT, DEPLOYMENT_LABEL: kopf.PRESENT},
)
def serving_deployments(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Serving Deployments by (namespace, deployment label): what a tick reads of them."""
    meta = body.metadata
    summary = {
        "metadata": {
            "name": meta.name,
            "labels": dict(meta.labels),
            "generation": meta.get("generation", 0),
            "resourceVersion": meta.get("resourceVersion"),
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        # Labels can be copied by anyone; the controller's uid tells ours from a lookalike.
        "controller": controller_uid(body),
        "status": dict(body.status),
    }
    return {(str(namespace), meta.labels[DEPLOYMENT_LABEL]): summary}


def _versions(raws: Sequence[Mapping[str, Any]]) -> dict[str, ModelVersion]:
    """The ModelVersions (as the index holds them) that parse, by name."""
    found = {}
    for raw in raws:
        try:
            mv = ModelVersion.model_validate(raw)
        except ValidationError:
            continue
        found[mv.name] = mv
    return found


def _candidate(mv: ModelVersion) -> Candidate:
    phase = mv.status.phase if mv.status else ModelVersionPhase.PENDING
    # The validator's measurement, never the self-reported spec.metrics (gates judge numbers
    # the operator can vouch for).
    measured = mv.status.measured_metrics if mv.status else {}
    return Candidate(mv.name, mv.spec.version, phase, dict(measured))


def _ready(deployments: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Ready pods of the current template per version (0 until the Deployment caught up)."""
    ready: dict[int, int] = {}
    for deployment in deployments:
        labels = deployment["metadata"].get("labels") or {}
        status = deployment.get("status") or {}
        if deployment.get("metadata", {}).get("deletionTimestamp"):
            continue
        try:
            version = int(labels[VERSION_LABEL])
        except (KeyError, ValueError):
            continue
        current = status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        pods = min(int(status.get("readyReplicas") or 0), int(status.get("updatedReplicas") or 0))
        ready[version] = pods if current else 0
    return ready


async def _pod_urls(kube: KubeClient, mdep: ModelDeployment, version: int) -> list[str]:
    pods = await kube.list("v1", "Pod", mdep.namespace, labels=serving_selector(mdep, version))
    if mdep.spec.feedback is not None:
        # The evaluator's realized accuracy is read with the version's own counters.
        pods += await kube.list("v1", "Pod", mdep.namespace, labels=evaluator_selector(mdep))
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    # Only addresses that are IPs make a URL (a pod's status is input like its annotations).
    targets = [scrape_url(p["status"].get("podIP"), SERVER_PORT) for p in running]
    return [t.url for t in targets if t.url is not None]


async def _counts(
    context: OperatorContext, mdep: ModelDeployment, version: int, window: float
) -> LiveCounts:
    url = context.settings.prometheus_url
    if url:
        return await prometheus_counts(
            context.prometheus(url),
            namespace=mdep.namespace,
            model=mdep.spec.model_name,
            version=str(version),
            window=window,
        )
    urls = await _pod_urls(context.kube, mdep, version)
    return await scraped_counts(urls, model=mdep.spec.model_name, version=str(version))


async def _judge_challenger(
    context: OperatorContext, mdep: ModelDeployment, status: ModelDeploymentStatus, window: float
) -> Judgement:
    if status.challenger is None or status.champion is None:
        return Judgement(Outcome.INCONCLUSIVE, {}, message="no challenger to judge")
    try:
        challenger = await _counts(context, mdep, status.challenger.version, window)
        champion = await _counts(context, mdep, status.champion.version, window)
    except (PrometheusError, ScrapeError) as error:
        return Judgement(Outcome.INCONCLUSIVE, {}, message=f"metrics unavailable: {error}")
    analysis = mdep.spec.rollout.analysis
    shadow = status.challenger.phase is ChallengerPhase.SHADOWING
    # At 100 % the champion serves nothing to compare with.
    psi_due = analysis.max_prediction_psi is not None and status.challenger.weight < 100
    return judge_challenger(analysis, challenger, champion, compare=shadow or psi_due)


async def _judge_floors(
    context: OperatorContext, mdep: ModelDeployment, status: ModelDeploymentStatus
) -> Judgement | None:
    floors = mdep.spec.rollback_floors
    champion = status.champion
    if floors is None or champion is None or status.challenger is not None:
        return None
    key = str(mdep.metadata.get("uid"))
    if context.floor_checks.get(key):
        return None
    context.floor_checks.put(key, True)
    window = min(parse_duration(floors.window), (now() - champion.since).total_seconds())
    try:
        counts = await _counts(context, mdep, champion.version, window)
    except (PrometheusError, ScrapeError) as error:
        logger.warning("rollback floors of %s not checked: %s", mdep.name, error)
        return None
    return judge_floors(floors, counts)


async def _record(
    context: OperatorContext, mdep: ModelDeployment, body: kopf.Body, plan: Plan
) -> bool:
    """Write the plan's status, decided from `body`, then post its Events.

    False when the ModelDeployment changed since `body` was read (Kopf's copy may lag the
    previous tick's own write): the plan was made from an old status and is dropped
    (`kit.write_status`), so a decision is never recorded twice; the next tick decides
    again from the new one.
    """
    if await write_status(context.kube, body, recorded_status(mdep, plan.status)) is None:
        return False
    for event in plan.events:
        post(body, event)
    return True


async def _converge(
    context: OperatorContext,
    mdep: ModelDeployment,
    plan: Plan,
    versions: Mapping[str, ModelVersion],
    existing: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Apply the children the plan wants and delete the ones it no longer does; the conflicts
    (names held by objects this deployment does not control, which are left alone)."""
    settings = context.settings
    storage = context.storage
    uid = str(mdep.metadata.get("uid"))
    grpc = grpc_port(mdep, settings.server_grpc_port)
    conflicts: list[str | None] = [
        # The request-id key first: the serving pods read it at start, and a pod that starts
        # before its Secret exists waits (CreateContainerConfigError) until the kubelet retries.
        await _converge_labels(context, mdep, storage),
        await children.apply(context, serving_service(mdep, grpc), exists=True),
    ]
    routed, conflict = await route_traffic(
        context, mdep, plan.weights, split=plan.canary_to is not None
    )
    conflicts.append(conflict)
    mirror, canary = _forwarding(mdep, plan, routed=routed)
    wanted: set[str] = set()
    present = {d["metadata"]["name"] for d in existing}
    for served in plan.served:
        mv = versions.get(served.model_version)
        if mv is None:
            logger.warning("ModelVersion %s of %s is gone", served.model_version, mdep.name)
            continue
        is_champion = plan.status.champion and served.version == plan.status.champion.version
        name = deployment_name(mdep.name, served.version)
        wanted.add(name)
        conflicts.append(
            await children.apply(context, version_service(mdep, served.version, grpc), exists=True)
        )
        manifest = serving_deployment(
            mdep,
            version=served.version,
            model_version=served.model_version,
            artifact_uri=mv.spec.artifact.uri,
            artifact_sha256=mv.spec.artifact.sha256,
            replicas=served.replicas,
            traffic=served.traffic,
            image=settings.server_image,
            storage=storage,
            mirror=mirror if is_champion else None,
            canary=canary if is_champion else None,
            defaults=settings.server_pod,
            grpc_port=grpc,
            security=settings.workload_security_context,
        )
        seen = name in present
        conflicts.append(
            await children.apply(context, manifest, exists=seen, controller=uid if seen else None)
        )
    for name in present - wanted:
        # The Service first: a crash in between leaves the Deployment, found again next tick.
        await children.delete(context, "v1", "Service", name, mdep.namespace, owner=uid)
        await children.delete(context, "apps/v1", "Deployment", name, mdep.namespace, owner=uid)
    if mdep.spec.monitoring.service_monitor.enabled:
        try:
            conflicts.append(await children.apply(context, service_monitor(mdep), exists=True))
        except ApiError as error:
            logger.warning("no ServiceMonitor for %s (is the CRD installed?): %s", mdep.name, error)
    return [c for c in conflicts if c is not None]


async def _refusals(
    context: OperatorContext,
    mdep: ModelDeployment,
    ready: Mapping[int, int],
    plan_versions: Sequence[int],
) -> dict[int, str]:
    """Why the pods of a version that is not fully ready refuse its artifact, by version.

    Only versions short of ready pods are looked at (one list each), so a settled
    deployment costs nothing here.
    """
    found: dict[int, str] = {}
    for version in plan_versions:
        if ready.get(version, 0) >= max(mdep.spec.replicas, 1):
            continue
        pods = await context.kube.list(
            "v1", "Pod", mdep.namespace, labels=serving_selector(mdep, version)
        )
        refusal = artifact_refusal(pods)
        if refusal is not None:
            found[version] = refusal
    return found


def _forwarding(
    mdep: ModelDeployment, plan: Plan, *, routed: bool
) -> tuple[Forwarding | None, Forwarding | None]:
    """What the champion's servers mirror (a shadow) and forward (a canary, unless a mesh
    applies the HTTPRoute's weights)."""
    mirror = canary = None
    if plan.mirror_to is not None:
        shadow = mdep.spec.rollout.shadow
        percent = shadow.mirror_percent if shadow else 100
        mirror = Forwarding(version_service_url(mdep, plan.mirror_to.version), percent)
    weight = plan.weights.get(plan.canary_to.version, 0) if plan.canary_to else 0
    if plan.canary_to is not None and weight and not routed:
        canary = Forwarding(version_service_url(mdep, plan.canary_to.version), weight)
    return mirror, canary


async def _converge_labels(
    context: OperatorContext, mdep: ModelDeployment, storage: ArtifactStorage
) -> str | None:
    """The request-id key (created once, never read back) and the evaluator, with `feedback`;
    a name conflict of the evaluator, if any."""
    name = evaluator_name(mdep.name)
    if mdep.spec.feedback is None:
        owner = str(mdep.metadata.get("uid"))
        await children.delete(context, "apps/v1", "Deployment", name, mdep.namespace, owner=owner)
        return None
    secret = labels_key_secret_name(mdep)
    marker = f"v1/Secret/{mdep.namespace}/{secret}"
    if context.applied.get(marker) is None:
        # Created before: its key must stay, or every id issued so far would be 404.
        with contextlib.suppress(Conflict):
            await context.kube.create(labels_key_secret(mdep, os.urandom(32)))
        context.applied.put(marker, "created")
    settings = context.settings
    manifest = evaluator_deployment(
        mdep,
        image=settings.server_image,
        storage=storage,
        security=settings.workload_security_context,
    )
    return await children.apply(context, manifest, exists=True)


@kopf.timer(GROUP, VERSION, "modeldeployments", interval=TICK_SECONDS)
async def reconcile_model_deployment(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **kwargs: Any
) -> None:
    """One tick of the ModelDeployment (see the module docstring).

    Kopf passes each index as the keyword argument named after its function.
    """
    namespace, spec = str(body.metadata.namespace), body.get("spec") or {}
    raw_versions = list(
        cast(VersionIndex, kwargs["model_versions_by_model"]).get(
            (namespace, str(spec.get("modelName"))), ()
        )
    )
    uid = str(body.metadata.uid)
    existing = [
        d
        for d in cast(DeploymentIndex, kwargs["serving_deployments"]).get(
            (namespace, label_value(str(body.metadata.name))), ()
        )
        if d["controller"] == uid
    ]
    inputs = (
        body.metadata.get("resourceVersion"),
        *sorted(str(raw["metadata"].get("resourceVersion")) for raw in raw_versions),
        *sorted(str(d["metadata"].get("resourceVersion")) for d in existing),
    )
    if memo.ticks.get(uid) == (inputs, True):
        return
    mdep = parse(ModelDeployment, body, patch, ConditionType.READY)
    status = stored_status(body, ModelDeploymentStatus)
    versions = _versions(raw_versions)
    at = now()
    window = analysis_window(mdep.spec, status, at)
    judgement = await _judge_challenger(memo, mdep, status, window) if window else None
    floors = await _judge_floors(memo, mdep, status)
    annotations = body.metadata.annotations or {}
    ready = _ready(existing)
    served = [v for v in (status.champion, status.challenger) if v is not None]
    plan = advance(
        mdep.spec,
        status,
        candidates=[_candidate(mv) for mv in versions.values()],
        ready=ready,
        now=at,
        generation=mdep.generation,
        judgement=judgement,
        floors=floors,
        actor=annotations.get(REQUESTED_BY_ANNOTATION) or f"spec generation {mdep.generation}",
        conflicts=memo.conflicts.get(uid) or (),
        refused=await _refusals(memo, mdep, ready, [v.version for v in served]),
    )
    if not await _record(memo, mdep, body, plan):
        return
    count_deployment_decisions(
        mdep.namespace, mdep.spec.model_name, mdep.name, status.history, plan.status.history
    )
    await audit_deployment(memo, mdep, plan.status.history)
    conflicts = await _converge(memo, mdep, plan, versions, existing)
    for conflict in set(conflicts) - set(memo.conflicts.get(uid) or ()):
        post(body, Event.warning(Reason.NAME_CONFLICT, conflict))
    memo.conflicts.put(uid, tuple(conflicts))
    settled = plan.status.challenger is None and not conflicts
    memo.ticks.put(uid, (inputs, settled))


@reconciles(ModelDeployment)
async def accept_model_deployment(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """On create, spec change or restart: refuse (once, with an Event) a spec the model rejects.

    The timer does the work; this handler makes a refusal immediate, and Kopf's
    bookkeeping of handled specs (annotations) and the reconcile metrics cover the kind.
    """
    parse(ModelDeployment, body, patch, ConditionType.READY)
