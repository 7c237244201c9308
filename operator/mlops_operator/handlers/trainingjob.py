"""The TrainingJob controller: a trainer Job per TrainingJob, then a ModelVersion.

Two handlers share the work:

- `reconcile_training_job` (TrainingJob created, changed, or found at startup)
  creates the trainer Job under a deterministic name (an existing Job of that
  name, owned by this TrainingJob, counts as done: never a second one), makes
  sure the artifact claim exists, and keeps the Job's ``suspend`` and generation
  mark in step with the spec. It writes the status only for what no Job will
  report: a spec it refuses, a Job deleted under it.
- `follow_trainer_job` watches the operator's trainer Jobs (labels
  ``app.kubernetes.io/managed-by=mlops-operator``, ``component=trainer``) and
  turns each change into the owner TrainingJob's status (``jobName``, phase,
  conditions); once the Job ended it reads the trainer's termination message
  from the pod, creates the ModelVersion on success, records the outcome, and
  only then gives the Job its ``ttlSecondsAfterFinished``.

One writer for the status of a running TrainingJob means no write races; the
TrainingJob is read from the watch's copy (`training_jobs_by_uid`), and the Job
watch remembers what it last wrote for each Job (in memory), so a Job change
that alters nothing the status shows (the Job controller's own bookkeeping)
costs no API call at all.

Why a watch on Jobs rather than a timer or daemon per TrainingJob: a watch costs
one stream per namespace whatever the number of TrainingJobs, and the handler
runs only when a Job changes, where 1,000 running TrainingJobs would need 1,000
pollers; and at startup Kopf lists every Job, so a Job that ended while the
operator was down is handled then. The TTL doubles as the "recorded" mark: a
Job without it is unfinished business, one with it is skipped without a call.
Kopf runs one object's events one at a time, and only this handler creates
ModelVersions, so two runs for one TrainingJob never race each other.

Crash safety, line by line: the Job is created before ``jobName`` is written,
so a Job missing while ``jobName`` is set was deleted, not forgotten (the
TrainingJob fails rather than training twice). The ModelVersion is found by
the TrainingJob's uid before any number is allocated, so a re-run after a crash
between creating it and writing the status finds it. Version numbers are
allocated by creating ``<model>-v<N>`` and moving to N+1 on AlreadyExists
(`mlops_operator.decisions.versions`). Every status write is conditional on
the resourceVersion read just before (optimistic concurrency), and a finished
TrainingJob's status is never written back to an unfinished phase.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from pydantic import ValidationError

from mlops_operator.api.conditions import ConditionType, Reason
from mlops_operator.api.events import Event
from mlops_operator.api.metadata import (
    JOB_UID_LABEL,
    TRAINING_JOB_GENERATION_ANNOTATION,
    TRAINING_JOB_UID_ANNOTATION,
)
from mlops_operator.api.resource import API_VERSION, GROUP, VERSION
from mlops_operator.api.trainingjob import Dataset, DatasetSource, TrainingJob, TrainingJobPhase
from mlops_operator.decisions.outbound import image_refusal
from mlops_operator.decisions.versions import (
    candidates,
    next_version,
    produced_by,
    version_name,
    version_numbers,
)
from mlops_operator.handlers.context import OperatorContext
from mlops_operator.handlers.kit import StatusOf, Written, now, post, write_status
from mlops_operator.handlers.reconciling import parse, reconciles, retrying
from mlops_operator.k8s import Conflict, KubeClient, NotFound
from mlops_operator.resources.common import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MODEL_LABEL,
    ArtifactStorage,
    artifact_pvc,
    label_value,
)
from mlops_operator.resources.trainingjob import (
    CONTAINER,
    TRAINER_COMPONENT,
    Outcome,
    UnsupportedSpec,
    build_job,
    build_model_version,
    is_finished,
    job_name,
    observe_job,
    owner_uid,
    training_status,
)
from mlops_operator.runtime.settings import OperatorSettings
from mlops_operator.trainer.result import TrainingSucceeded

__all__ = ["follow_trainer_job", "reconcile_training_job"]

logger = logging.getLogger(__name__)

_KIND = "TrainingJob"
_TERMINAL = (TrainingJobPhase.SUCCEEDED.value, TrainingJobPhase.FAILED.value)
_CONFLICT_RETRY_SECONDS = 30


def _terminal(body: Mapping[str, Any]) -> bool:
    return (body.get("status") or {}).get("phase") in _TERMINAL


def _phase(body: Mapping[str, Any]) -> str | None:
    phase = (body.get("status") or {}).get("phase")
    return str(phase) if phase is not None else None


def _status_for(
    training: TrainingJob,
    outcome: Outcome,
    *,
    job: str | None,
    generation: int | None,
    model_version: str | None = None,
) -> StatusOf:
    """The status of `outcome`, except over a finished TrainingJob unless `outcome` is final too."""

    def compute(current: Mapping[str, Any]) -> dict[str, Any] | None:
        if _terminal(current) and not outcome.terminal:
            return None
        return training_status(
            training,
            current.get("status"),
            outcome,
            job_name=job,
            generation=generation,
            model_version=model_version,
            now=now(),
        )

    return compute


async def _ensure_claim(context: OperatorContext, namespace: str) -> None:
    """Create the artifact claim when the namespace has none (the operator never deletes it).

    A claim seen in the last minute (`OperatorContext.claims`) is not looked up
    again: a burst of TrainingJobs in one namespace needs one lookup, and a claim
    deleted by hand is still re-created within a minute.
    """
    kube, settings = context.kube, context.settings
    if context.claims.get(namespace):
        return
    try:
        await kube.get("v1", "PersistentVolumeClaim", settings.artifact_pvc, namespace)
    except NotFound:
        claim = artifact_pvc(
            namespace,
            settings.artifact_pvc,
            size=settings.artifact_pvc_size,
            storage_class=settings.artifact_storage_class,
        )
        # Conflict: created meanwhile; what matters is that it exists.
        with contextlib.suppress(Conflict):
            await kube.create(claim)
    context.claims.put(namespace, True)


def _fail_outcome(reason: Reason, message: str) -> Outcome:
    return Outcome(TrainingJobPhase.FAILED, reason, message, finished=now())


async def _record_outcome(
    kube: KubeClient,
    body: Mapping[str, Any],
    training: TrainingJob,
    outcome: Outcome,
    *,
    job: str | None,
) -> Written | None:
    """Write the status of an `outcome` the handler found itself (not the Job's) over the
    TrainingJob as stored (`body` may lag it)."""
    compute = _status_for(training, outcome, job=job, generation=training.generation)
    return await write_status(kube, body, compute, cached=True)


async def _fail(
    kube: KubeClient,
    body: Mapping[str, Any],
    training: TrainingJob,
    reason: Reason,
    message: str,
    *,
    job: str,
) -> None:
    """Record that `training` failed before its Job could report, with one Warning Event."""
    outcome = _fail_outcome(reason, message)
    written = await _record_outcome(kube, body, training, outcome, job=job)
    if written is not None and _phase(written.before) not in _TERMINAL:
        post(written.after, Event.warning(reason, message))


async def _create_job(
    kube: KubeClient, manifest: dict[str, Any], training: TrainingJob
) -> tuple[dict[str, Any], bool] | None:
    """The trainer Job, created unless it exists; (the Job, whether it was created now).

    None when a Job of that name exists that this TrainingJob does not control (by uid):
    the operator leaves it alone, and the caller reports the conflict.
    """
    try:
        return await kube.create(manifest), True
    except Conflict:
        pass
    name = manifest["metadata"]["name"]
    existing = await kube.get("batch/v1", "Job", name, training.namespace)
    if owner_uid(existing) != training.metadata.get("uid"):
        return None
    return existing, False


async def _name_conflict(
    kube: KubeClient, training: TrainingJob, body: kopf.Body, job: str
) -> None:
    """Report (condition and Event) that a Job named `job` is someone else's; retry later."""
    message = (
        f"a Job named {job} exists and is not controlled by this TrainingJob (uid"
        f" {training.metadata.get('uid')}); the operator leaves it alone and trains once it is"
        " gone"
    )
    outcome = Outcome(TrainingJobPhase.PENDING, Reason.NAME_CONFLICT, message)
    # No jobName: the Job of that name is not this TrainingJob's, so it was never created.
    written = await _record_outcome(kube, body, training, outcome, job=None)
    if written is not None and written.changed:
        post(body, Event.warning(Reason.NAME_CONFLICT, message))
    raise kopf.TemporaryError(message, delay=_CONFLICT_RETRY_SECONDS)


async def _sync_job(kube: KubeClient, job: Mapping[str, Any], training: TrainingJob) -> None:
    """Bring the Job's ``suspend`` and generation mark in step with the TrainingJob's spec.

    A change of either is a change of the Job, which `follow_trainer_job` records.
    """
    generation = str(training.generation or 0)
    annotations = job.get("metadata", {}).get("annotations") or {}
    if (
        bool(job.get("spec", {}).get("suspend")) == training.spec.suspend
        and annotations.get(TRAINING_JOB_GENERATION_ANNOTATION) == generation
    ):
        return
    patch = {
        "metadata": {"annotations": {TRAINING_JOB_GENERATION_ANNOTATION: generation}},
        "spec": {"suspend": training.spec.suspend},
    }
    await kube.patch("batch/v1", "Job", job["metadata"]["name"], training.namespace, patch)


def _ttl(training: TrainingJob, settings: OperatorSettings) -> int:
    keep = training.spec.ttl_seconds_after_finished
    return settings.job_ttl_seconds if keep is None else keep


async def _keep_job(kube: KubeClient, training: TrainingJob, settings: OperatorSettings) -> None:
    """Give the finished trainer Job the TrainingJob's current ``ttlSecondsAfterFinished``."""
    try:
        job = await kube.get("batch/v1", "Job", job_name(training), training.namespace)
    except NotFound:
        return  # already removed by its earlier TTL
    current = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if owner_uid(job) != training.metadata.get("uid") or current is None:
        return  # another TrainingJob's, or its outcome is not recorded yet (the watch sets it)
    wanted = _ttl(training, settings)
    if current != wanted:
        patch = {"spec": {"ttlSecondsAfterFinished": wanted}}
        await kube.patch("batch/v1", "Job", job["metadata"]["name"], training.namespace, patch)


async def _payload_logs(kube: KubeClient, training: TrainingJob) -> dict[str, str]:
    """Where each payload log the dataset reads is, when its ModelDeployment moved it.

    A ModelDeployment's ``payloadLogging.uri`` sends its servers' log there instead of
    the artifact store; the trainer must read it from the same place.
    """
    dataset = training.spec.dataset
    named: list[Dataset | DatasetSource] = [dataset, *(dataset.sources or [])]
    deployments = {s.from_payload_log.deployment for s in named if s.from_payload_log is not None}
    found: dict[str, str] = {}
    for name in sorted(deployments):
        try:
            mdep = await kube.get(API_VERSION, "ModelDeployment", name, training.namespace)
        except NotFound:
            continue  # its log in the artifact store may outlive it: read it there
        uri = ((mdep.get("spec") or {}).get("payloadLogging") or {}).get("uri")
        if uri:
            found[name] = str(uri)
    return found


async def _start(training: TrainingJob, body: kopf.Body, context: OperatorContext) -> None:
    kube, settings = context.kube, context.settings
    name = job_name(training)
    if _terminal(body):
        if (body.get("status") or {}).get("observedGeneration") != training.generation:
            # A finished TrainingJob's spec changes only in `ttlSecondsAfterFinished` (the
            # rest is frozen; `suspend` no longer matters): the kept Job follows it.
            await _keep_job(kube, training, settings)
            generation = {"observedGeneration": training.generation}
            await write_status(kube, body, lambda _: generation, cached=True)
        return
    storage = context.storage
    if training.spec.image is not None:
        refusal = image_refusal(training.spec.image, settings.allowed_image_prefixes)
        if refusal is not None:
            await _fail(kube, body, training, Reason.IMAGE_NOT_ALLOWED, refusal, job=name)
            return
    try:
        logs = await _payload_logs(kube, training)
        image = training.spec.image or settings.trainer_image
        manifest = build_job(
            training,
            storage,
            image,
            logs,
            settings.trainer_pod,
            security=settings.workload_security_context,
        )
    except UnsupportedSpec as error:
        await _fail(kube, body, training, Reason.INVALID_SPEC, str(error), job=name)
        return
    if (body.get("status") or {}).get("jobName"):
        try:
            await kube.get("batch/v1", "Job", name, training.namespace)
        except NotFound:
            message = f"the trainer Job {name} was deleted before it finished; create a new"
            message += " TrainingJob to train again"
            await _fail(kube, body, training, Reason.TRAINING_FAILED, message, job=name)
            return
    if storage.uses_pvc:
        await _ensure_claim(context, training.namespace)
    found = await _create_job(kube, manifest, training)
    if found is None:
        await _name_conflict(kube, training, body, name)
        return
    job, created = found
    await _sync_job(kube, job, training)
    if created:
        post(body, Event.normal(Reason.STARTED, f"created trainer Job {name}"))


@reconciles(TrainingJob)
async def reconcile_training_job(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **_: Any
) -> None:
    """Reconcile a TrainingJob after it was created, changed, or found at startup."""
    training = parse(TrainingJob, body, patch, ConditionType.SUCCEEDED)
    await _start(training, body, memo)


async def _model_version(
    kube: KubeClient,
    training: TrainingJob,
    result: TrainingSucceeded,
    *,
    storage: ArtifactStorage,
    image: str,
) -> str:
    """The name of the ModelVersion `training` produced: found, else created under a new number."""
    model = training.spec.model_name
    existing = await kube.list(
        API_VERSION, "ModelVersion", training.namespace, labels={MODEL_LABEL: label_value(model)}
    )
    uid = str(training.metadata.get("uid"))
    mine = produced_by(existing, uid, TRAINING_JOB_UID_ANNOTATION)
    if mine is not None:
        return str(mine["metadata"]["name"])
    for number in candidates(next_version(version_numbers(existing, model))):
        name = version_name(model, number)
        manifest = build_model_version(
            training, result, name=name, version=number, storage=storage, image=image
        )
        try:
            await kube.create(manifest)
        except Conflict as error:
            if error.reason != "AlreadyExists":
                raise
            taken = await kube.get(API_VERSION, "ModelVersion", name, training.namespace)
            if produced_by([taken], uid, TRAINING_JOB_UID_ANNOTATION) is not None:
                # Created meanwhile for this very TrainingJob (a second operator process,
                # or a retried request whose first attempt went through): it is ours.
                return name
            continue  # another TrainingJob took this number first
        return name
    raise kopf.TemporaryError(f"no free version number for model {model} after {number}", delay=1)


def _image_of(job: Mapping[str, Any]) -> str:
    for container in job["spec"]["template"]["spec"]["containers"]:
        if container["name"] == CONTAINER:
            return str(container["image"])
    raise ValueError(f"Job {job['metadata']['name']} has no {CONTAINER} container")


async def _finish(
    context: OperatorContext,
    body: Mapping[str, Any],
    training: TrainingJob,
    job: Mapping[str, Any],
    generation: int | None,
) -> None:
    """Read the ended Job's result, create the ModelVersion, record the outcome over the
    TrainingJob as `body` shows it (just read), release the Job."""
    kube, settings = context.kube, context.settings
    name = job["metadata"]["name"]
    # By the Job's uid, not its name: pods of an earlier Job of that name may linger.
    pods = await kube.list(
        "v1", "Pod", training.namespace, labels={JOB_UID_LABEL: str(job["metadata"]["uid"])}
    )
    outcome = observe_job(job, pods)
    version = None
    if outcome.result is not None:
        try:
            version = await _model_version(
                kube, training, outcome.result, storage=context.storage, image=_image_of(job)
            )
        except (ValueError, ValidationError) as error:
            outcome = _fail_outcome(
                Reason.TRAINING_FAILED,
                f"the trained model cannot be recorded as a ModelVersion: {error}",
            )
    compute = _status_for(training, outcome, job=name, generation=generation, model_version=version)
    written = await write_status(kube, body, compute)
    ttl = {"spec": {"ttlSecondsAfterFinished": _ttl(training, settings)}}
    await kube.patch("batch/v1", "Job", name, training.namespace, ttl)
    if written is None or _phase(written.before) in _TERMINAL:
        return  # recorded by an earlier run, whose Event was posted then
    if version is not None:
        message = str(written.after.get("status", {}).get("message") or version)
        post(written.after, Event.normal(Reason.TRAINED, message))
    else:
        post(written.after, Event.warning(outcome.reason, outcome.message))


def _generation_of(job: Mapping[str, Any]) -> int | None:
    """The TrainingJob generation the Job was last brought in step with (its annotation)."""
    annotation = (job["metadata"].get("annotations") or {}).get(TRAINING_JOB_GENERATION_ANNOTATION)
    return int(annotation) if annotation and annotation.isdigit() else None


TrainingJobIndex = kopf.Index[str, Mapping[str, Any]]


@kopf.index(GROUP, VERSION, "trainingjobs")
def training_jobs_by_uid(body: kopf.Body, **_: Any) -> dict[str, Mapping[str, Any]]:
    """TrainingJobs by uid as last seen, read by the Job watch instead of a GET per Job change."""
    return {str(body.metadata.uid): dict(body)}


async def _follow(
    context: OperatorContext,
    event_type: str | None,
    job: Mapping[str, Any],
    known: TrainingJobIndex,
) -> None:
    kube = context.kube
    job_uid = str(job["metadata"].get("uid"))
    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None:
        context.recorded.forget(job_uid)
        return  # its outcome is recorded
    outcome = None if is_finished(job) else observe_job(job)
    # What the status shows of an unfinished Job: when it is what was last written for
    # this Job, there is nothing to read or write.
    shown = None if outcome is None else (_generation_of(job), outcome)
    if event_type == "DELETED":
        context.recorded.forget(job_uid)
    elif shown is not None and context.recorded.get(job_uid) == shown:
        return
    uid = owner_uid(job)
    owner = next(
        (r for r in job["metadata"].get("ownerReferences") or [] if r.get("uid") == uid), None
    )
    if uid is None or owner is None:
        return
    namespace = job["metadata"]["namespace"]
    # The watch's copy may lag a write: a write from it is conditional on its
    # resourceVersion and retried from a fresh read, so a stale copy costs a retry,
    # never a wrong status. A deleted Job's verdict depends on the stored phase, and a
    # finished one's ModelVersion on the spec, alone: those read the TrainingJob.
    fresh = event_type == "DELETED" or outcome is None
    body = None if fresh else next(iter(known.get(uid, ())), None)
    cached = body is not None
    if body is None:
        try:
            body = await kube.get(API_VERSION, _KIND, owner["name"], namespace)
        except NotFound:
            return
    if body["metadata"].get("uid") != uid or body["metadata"].get("deletionTimestamp"):
        return
    try:
        training = TrainingJob.model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError:
        return  # the TrainingJob handler reports an invalid spec
    generation = _generation_of(job) or training.generation
    name = job["metadata"]["name"]
    if event_type == "DELETED":
        if not _terminal(body):
            message = f"the trainer Job {name} was deleted before it finished; create a new"
            message += " TrainingJob to train again"
            await _fail(kube, body, training, Reason.TRAINING_FAILED, message, job=name)
        return
    if outcome is None:
        await _finish(context, body, training, job, generation)
        return
    compute = _status_for(training, outcome, job=name, generation=generation)
    written = await write_status(kube, body, compute, cached=cached)
    if written is not None:
        context.recorded.put(job_uid, shown)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: TRAINER_COMPONENT},
)
async def follow_trainer_job(
    event: Mapping[str, Any], body: kopf.Body, memo: OperatorContext, **kwargs: Any
) -> None:
    """Turn a trainer Job's change into its TrainingJob's status (and, at the end, a version).

    Kopf does not retry event handlers, so transient failures (the API server
    restarting, say) are retried here until they pass (`retrying`); other failures
    are left to the Job's next change or the operator's next start, when Kopf lists
    every Job (the Job keeps no TTL until its outcome is recorded). While one event
    is retried, newer events of that Job wait, and are handled after it, from the
    Job as it is then.
    """
    job = dict(body)
    known = cast(TrainingJobIndex, kwargs["training_jobs_by_uid"])  # Kopf passes indexes by name
    await retrying(memo, lambda: _follow(memo, event.get("type"), job, known))
