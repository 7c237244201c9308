"""A TrainingJob's children, and what its trainer Job says back.

- `build_job`: the ``batch/v1`` Job that runs the trainer. Its name is the
  TrainingJob's own (deterministic, so a re-run finds it), it is owned by the
  TrainingJob (deleting one deletes the Job and its pods), its pod meets the
  ``restricted`` Pod Security Standard and reads every setting from the
  environment `TrainerSettings.to_env` renders. An exit code of 1 is a training
  that cannot succeed (bad data, a parameter the estimator refuses), so the pod
  failure policy fails the Job at once instead of retrying the same error;
  ``backoffLimit`` covers everything else (a node lost, an out-of-memory kill).
  The Job gets its ``ttlSecondsAfterFinished`` only once the controller has
  recorded its outcome, so it can never vanish before it was read.
- `observe_job`: the Job and its pods as an `Outcome`. The trainer's result is
  its termination message (`mlops_operator.trainer.result`), read from the pod
  status: the operator never opens artifacts.
- `training_status`: the TrainingJob's status for an outcome.
- `build_model_version`: the ModelVersion a successful training produces. It
  is not owned by the TrainingJob (its lineage must outlive it); it names it.

With ``dataset.fromPayloadLog`` the trainer reads the deployment's payload log
from the artifact store it already mounts (`payload_log_root`), joined with the
labelled feedback, through a ``payloadlog+`` dataset URI; the lineage records
``payloadlog://<namespace>/<deployment>?window=…`` and the snapshot's sha256 is
the exact data version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from mlops_operator.api.conditions import (
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    set_condition,
)
from mlops_operator.api.durations import parse_duration
from mlops_operator.api.estimators import SCALE_INVARIANT
from mlops_operator.api.metadata import (
    TRAINING_JOB_GENERATION_ANNOTATION,
    TRAINING_JOB_UID_ANNOTATION,
)
from mlops_operator.api.modelversion import (
    Artifact,
    DatasetLineage,
    FeatureKind,
    FeatureSummary,
    Lineage,
    ModelVersionSpec,
    PrimaryMetric,
    SignatureSummary,
    SourceLineage,
    TensorDtype,
    TensorSummary,
    recorded_recipe,
)
from mlops_operator.api.pods import DEFAULT_WORKLOAD_SECURITY, PodOverrides, WorkloadSecurityContext
from mlops_operator.api.resource import API_VERSION
from mlops_operator.api.trainingjob import (
    Dataset,
    DatasetSource,
    PayloadLogSource,
    Task,
    TrainingJob,
    TrainingJobPhase,
    TrainingJobStatus,
)
from mlops_operator.podcontract import DATASET_MOUNT_ROOT, DATASET_VOLUME, TRAINER_OUTPUT_DIR
from mlops_operator.resources.common import (
    ArtifactStorage,
    label_value,
    labels,
    owner_reference,
    restricted_job,
    scratch_mount,
    scratch_volume,
)
from mlops_operator.resources.payloadlog import payload_log_root
from mlops_operator.trainer.payloadlog_uri import payload_log_dataset_uri
from mlops_operator.trainer.result import (
    SignatureDigest,
    TrainingFailed,
    TrainingSucceeded,
    parse_termination_message,
)
from mlops_operator.trainer.settings import DataSource, TrainerSettings

__all__ = [
    "CONTAINER",
    "TRAINER_COMPONENT",
    "Outcome",
    "UnsupportedSpec",
    "build_job",
    "build_model_version",
    "dataset_lineage_uri",
    "is_finished",
    "job_name",
    "observe_job",
    "owner_uid",
    "primary_metric",
    "trainer_settings",
    "training_status",
]

TRAINER_COMPONENT = "trainer"
CONTAINER = "trainer"
_TERMINAL = (TrainingJobPhase.SUCCEEDED, TrainingJobPhase.FAILED)
_UID_CHARS = 8
# The trainer's reasons that are the TrainingJob's own; any other is `TrainingFailed`.
_TRAINER_REASONS = {
    "DatasetNotFound": Reason.DATASET_UNAVAILABLE,
    "StorageFailed": Reason.STORAGE_FAILED,
}


# `preprocessing.scaleNumeric`: unset leaves it to the estimator (scale-sensitive ones only).
_SCALING: dict[bool | None, Literal["auto", "standard", "none"]] = {
    None: "auto",
    True: "standard",
    False: "none",
}


def _scaling(training: TrainingJob) -> Literal["auto", "standard", "none"]:
    scale = training.spec.preprocessing.scale_numeric
    if scale and training.spec.estimator.name in SCALE_INVARIANT:
        # Admission refuses `true` with these; only objects stored while the CRD defaulted the
        # field to true carry it, and meant "scale when it helps".
        return "auto"
    return _SCALING[scale]


class UnsupportedSpec(ValueError):
    """A spec the API accepts but this controller cannot run; the message says what to change."""


def job_name(training: TrainingJob) -> str:
    """The trainer Job's name: the TrainingJob's and the start of its uid (shortened with a hash
    beyond 63 characters).

    The uid makes it the Job of this TrainingJob, not of an earlier one of the same name:
    GitOps tools delete and re-create objects under one name, and the earlier TrainingJob's
    Job may outlive it for a while (garbage collection) or for good (orphaned). Deterministic
    all the same, so a re-run after a crash finds the Job it created.
    """
    uid = str(training.metadata.get("uid") or "")
    if not uid:
        raise ValueError(f"TrainingJob {training.name!r} has no uid; read it back from the API")
    return label_value(f"{training.name}-{uid.replace('-', '')[:_UID_CHARS]}")


AnySource = Dataset | DatasetSource
"""A single-source dataset, or one source of several: the same three ways to name data."""


def _source_lineage_uri(source: AnySource, namespace: str) -> str:
    if source.uri is not None:
        return source.uri
    if source.pvc is not None:
        return f"pvc://{source.pvc.claim_name}/{source.pvc.path}"
    log = _payload_log(source)
    return f"payloadlog://{namespace}/{log.deployment}?window={log.window}"


def dataset_lineage_uri(training: TrainingJob) -> str:
    """The dataset as the lineage records it: the URI given, ``pvc://<claim>/<path>``, or
    ``payloadlog://<namespace>/<deployment>?window=<window>``; several joined by `` + ``."""
    dataset = training.spec.dataset
    if dataset.sources:
        return " + ".join(_source_lineage_uri(s, training.namespace) for s in dataset.sources)
    return _source_lineage_uri(dataset, training.namespace)


def _payload_log(source: AnySource) -> PayloadLogSource:
    log = source.from_payload_log
    if log is None:
        raise UnsupportedSpec("`dataset` names no source; give `uri`, `pvc` or `fromPayloadLog`")
    return log


def _source_uri(
    source: AnySource,
    training: TrainingJob,
    storage: ArtifactStorage,
    payload_logs: Mapping[str, str],
) -> str:
    if source.pvc is not None:
        return f"file://{DATASET_MOUNT_ROOT}/{source.pvc.claim_name}/{source.pvc.path}"
    if source.uri is not None:
        return source.uri
    log = _payload_log(source)
    try:
        window = parse_duration(log.window)
    except ValueError as error:
        raise UnsupportedSpec(f"`dataset.fromPayloadLog.window`: {error}") from error
    root = payload_logs.get(log.deployment) or payload_log_root(
        storage, training.namespace, log.deployment
    )
    return payload_log_dataset_uri(
        root, target=training.spec.target, window_seconds=window, min_rows=log.min_rows
    )


def _data(
    training: TrainingJob, storage: ArtifactStorage, payload_logs: Mapping[str, str]
) -> dict[str, Any]:
    """The trainer's dataset settings: one URI and its format, or the list of sources."""
    dataset = training.spec.dataset
    if not dataset.sources:
        return {
            "dataset_uri": _source_uri(dataset, training, storage, payload_logs),
            "dataset_format": dataset.format.value,
        }
    return {
        "sources": [
            DataSource(
                uri=_source_uri(source, training, storage, payload_logs),
                format=source.format.value,
                sample=source.sample,
                lineage_uri=_source_lineage_uri(source, training.namespace),
            )
            for source in dataset.sources
        ]
    }


def trainer_settings(
    training: TrainingJob,
    storage: ArtifactStorage,
    image: str,
    payload_logs: Mapping[str, str] | None = None,
) -> TrainerSettings:
    """The trainer's settings for `training` (rendered into the pod's environment).

    `payload_logs`: where a ModelDeployment's payload log is when its ``payloadLogging.uri``
    moved it out of the artifact store, by deployment name.
    """
    spec = training.spec
    try:
        return TrainerSettings(
            **_data(training, storage, payload_logs or {}),
            target=spec.target,
            estimator=spec.estimator.name,
            params=spec.estimator.params,
            features=spec.features,
            categorical=spec.categorical_features,
            test_size=spec.test_size,
            seed=spec.seed,
            cv_folds=spec.cv_folds or 0,
            scaling=_scaling(training),
            imputation=spec.preprocessing.impute.numeric.value,
            categorical_imputation=spec.preprocessing.impute.categorical.value,
            model_name=spec.model_name,
            output_dir=Path(TRAINER_OUTPUT_DIR),
            store_uri=storage.store_uri,
            training_job=f"{training.namespace}/{training.name}",
            image=image,
        )
    except ValidationError as error:
        raise UnsupportedSpec(f"the trainer refuses these settings: {error}") from error


def _volumes(training: TrainingJob, storage: ArtifactStorage) -> tuple[list[Any], list[Any]]:
    volumes = [scratch_volume(), *storage.volumes()]
    mounts = [scratch_mount(), *storage.mounts()]
    dataset = training.spec.dataset
    named: list[AnySource] = [dataset, *(dataset.sources or [])]
    claims = sorted({s.pvc.claim_name for s in named if s.pvc is not None})
    for index, claim in enumerate(claims):
        name = DATASET_VOLUME if index == 0 else f"{DATASET_VOLUME}-{index}"
        volumes.append(
            {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mounts.append(
            {"name": name, "mountPath": f"{DATASET_MOUNT_ROOT}/{claim}", "readOnly": True}
        )
    return volumes, mounts


def build_job(
    training: TrainingJob,
    storage: ArtifactStorage,
    image: str,
    payload_logs: Mapping[str, str] | None = None,
    defaults: PodOverrides | None = None,
    security: WorkloadSecurityContext = DEFAULT_WORKLOAD_SECURITY,
) -> dict[str, Any]:
    """The ``batch/v1`` Job that runs the trainer for `training` (raises `UnsupportedSpec`);
    `defaults`, the operator's trainer pod defaults, then the spec's overrides go over its pod,
    which runs with `security`'s ids."""
    spec = training.spec
    env = trainer_settings(training, storage, image, payload_logs).to_env()
    volumes, mounts = _volumes(training, storage)
    meta_labels = labels(spec.model_name, component=TRAINER_COMPONENT, training_job=training.name)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "volumeMounts": mounts,
        # A crash before the trainer writes its result still leaves the log's tail.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    # The dataset's Secret comes last: a key both define takes the dataset's value.
    env_from = storage.env_from()
    if spec.dataset.credentials_secret:
        env_from.append({"secretRef": {"name": spec.dataset.credentials_secret}})
    if env_from:
        container["envFrom"] = env_from
    resources = PodOverrides(resources=spec.resources) if spec.resources else None
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "suspend": spec.suspend,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": [1]},
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    metadata = {
        "name": job_name(training),
        "namespace": training.namespace,
        "labels": meta_labels,
        "annotations": {TRAINING_JOB_GENERATION_ANNOTATION: str(training.generation or 0)},
        "ownerReferences": [owner_reference(training)],
    }
    layers = (defaults, spec.pod_overrides, resources)
    return restricted_job(
        metadata, container, volumes, job_spec, layers, security=security, cpu_threads=True
    )


def owner_uid(job: Mapping[str, Any]) -> str | None:
    """The uid of the TrainingJob that controls the Job, if any (a mere owner does not count)."""
    for ref in job.get("metadata", {}).get("ownerReferences") or []:
        if (
            ref.get("kind") == "TrainingJob"
            and ref.get("apiVersion") == API_VERSION
            and ref.get("controller") is True
        ):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


@dataclass(frozen=True)
class Outcome:
    """Where the trainer Job is, and what the trainer said when it ended."""

    phase: TrainingJobPhase
    reason: Reason
    message: str
    started: datetime | None = None
    finished: datetime | None = None
    result: TrainingSucceeded | None = None
    suspended: bool = False

    @property
    def terminal(self) -> bool:
        """Whether the Job is over (succeeded or failed)."""
        return self.phase in _TERMINAL


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _job_condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_ and condition.get("status") == "True":
            found: Mapping[str, Any] = condition
            return found
    return None


def is_finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job completed or failed for good."""
    return _job_condition(job, "Complete") is not None or _job_condition(job, "Failed") is not None


def _terminations(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The trainer container's terminated states, latest first."""
    found = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if status.get("name") == CONTAINER and terminated:
                found.append(terminated)
    return sorted(found, key=lambda t: str(t.get("finishedAt") or ""), reverse=True)


def _parsed(terminated: Mapping[str, Any]) -> TrainingSucceeded | TrainingFailed | None:
    try:
        return parse_termination_message(str(terminated.get("message") or ""))
    except ValidationError:
        return None


def _succeeded(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Outcome:
    started = _time((job.get("status") or {}).get("startTime"))
    finished = _time((job.get("status") or {}).get("completionTime"))
    for terminated in _terminations(pods):
        result = _parsed(terminated)
        if terminated.get("exitCode") == 0 and isinstance(result, TrainingSucceeded):
            if not result.metrics:
                break
            return Outcome(
                TrainingJobPhase.SUCCEEDED, Reason.TRAINED, "", started, finished, result
            )
    return Outcome(
        TrainingJobPhase.FAILED,
        Reason.TRAINING_FAILED,
        "the trainer Job completed but its pod left no usable result (a termination message"
        " with the model and its metrics); see the pod's log",
        started,
        finished,
    )


def _failed(
    job: Mapping[str, Any], failed: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> Outcome:
    started = _time((job.get("status") or {}).get("startTime"))
    finished = _time(failed.get("lastTransitionTime"))
    if failed.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return Outcome(
            TrainingJobPhase.FAILED,
            Reason.DEADLINE_EXCEEDED,
            f"the trainer ran longer than activeDeadlineSeconds ({deadline} s) and was stopped",
            started,
            finished,
        )
    for terminated in _terminations(pods):
        result = _parsed(terminated)
        if isinstance(result, TrainingFailed):
            reason = _TRAINER_REASONS.get(result.reason, Reason.TRAINING_FAILED)
            return Outcome(TrainingJobPhase.FAILED, reason, result.message, started, finished)
        if terminated.get("message") and result is None:
            text = str(terminated["message"]).strip()
            return Outcome(
                TrainingJobPhase.FAILED,
                Reason.TRAINING_FAILED,
                f"the trainer exited with code {terminated.get('exitCode')}: {text[-1024:]}",
                started,
                finished,
            )
    detail = failed.get("message") or failed.get("reason") or "no detail"
    message = f"the trainer Job failed ({detail}) and no pod left a message"
    last = next(iter(_terminations(pods)), None)
    if last is not None and last.get("exitCode") is not None:
        code = int(last["exitCode"])
        # 128+9: the kernel's OOM killer, or anything else that sent SIGKILL.
        killed = " (SIGKILL: out of memory, or the process was killed)" if code == 137 else ""
        message += f"; the last trainer exited with code {code}{killed}"
    return Outcome(TrainingJobPhase.FAILED, Reason.TRAINING_FAILED, message, started, finished)


def observe_job(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]] = ()) -> Outcome:
    """The Job's state as an `Outcome`; `pods` (the Job's pods) are read once it finished."""
    status = job.get("status") or {}
    suspended = bool((job.get("spec") or {}).get("suspend"))
    if _job_condition(job, "Complete") is not None:
        return _succeeded(job, pods)
    failed = _job_condition(job, "Failed")
    if failed is not None:
        return _failed(job, failed, pods)
    started = _time(status.get("startTime"))
    if suspended:
        return Outcome(
            TrainingJobPhase.PENDING,
            Reason.SUSPENDED,
            "spec.suspend is true: the trainer does not run until it is set to false",
            started,
            suspended=True,
        )
    if int(status.get("ready") or 0) > 0:
        return Outcome(
            TrainingJobPhase.RUNNING, Reason.JOB_RUNNING, "the trainer is running", started
        )
    return Outcome(TrainingJobPhase.PENDING, Reason.PENDING, "the trainer pod is starting", started)


def primary_metric(metrics: Mapping[str, float], training: TrainingJob) -> str:
    """The headline metric: the one the champion comparison uses, else accuracy or r2."""
    gates = training.spec.gates
    preferred: list[str] = []
    if gates and gates.compare_to_champion and gates.compare_to_champion.metric:
        preferred.append(gates.compare_to_champion.metric)
    preferred.append("accuracy" if training.spec.task is Task.CLASSIFICATION else "r2")
    for name in preferred:
        if name in metrics:
            return name
    if not metrics:
        raise ValueError("the trainer reported no metrics; a ModelVersion needs at least one")
    return min(metrics)


def _signature(digest: SignatureDigest | None) -> SignatureSummary | None:
    if digest is None:
        return None
    return SignatureSummary(
        task=Task(digest.task),
        features=[
            FeatureSummary(
                name=name,
                kind=FeatureKind.CATEGORICAL if name in digest.categorical else FeatureKind.NUMERIC,
            )
            for name in digest.features
        ],
        classes=digest.classes,
        inputs=[TensorSummary(name=n, dtype=TensorDtype(d), shape=s) for n, d, s in digest.inputs],
        outputs=[
            TensorSummary(name=n, dtype=TensorDtype(d), shape=s) for n, d, s in digest.outputs
        ],
    )


def build_model_version(
    training: TrainingJob,
    result: TrainingSucceeded,
    *,
    name: str,
    version: int,
    storage: ArtifactStorage,
    image: str,
) -> dict[str, Any]:
    """The ModelVersion `name` (``<model>-v<version>``) for `training`'s successful `result`.

    Not owned by `training`: the version and its lineage outlive the TrainingJob.
    """
    if result.model_key is None:
        raise ValueError("the trainer wrote no model to the artifact store (no model_key)")
    spec = training.spec
    primary = primary_metric(result.metrics, training)
    version_spec = ModelVersionSpec(
        model_name=spec.model_name,
        version=version,
        artifact=Artifact(
            uri=storage.uri_of(result.model_key),
            sha256=result.sha256,
            size_bytes=result.size_bytes,
            opset=result.opset,
        ),
        signature=_signature(result.signature),
        metrics=result.metrics,
        primary_metric=PrimaryMetric(name=primary, value=result.metrics[primary]),
        lineage=Lineage(
            dataset=DatasetLineage(
                uri=dataset_lineage_uri(training),
                sha256=result.dataset_sha256,
                rows=result.dataset_rows,
                columns=result.dataset_columns,
                format=None if spec.dataset.format.value == "auto" else spec.dataset.format.value,
                sources=_source_lineage(training, result),
            ),
            **recorded_recipe(spec),
            image=image,
            code_version=result.code_version,
            training_job=training.name,
            parent_version=spec.parent_version,
            libraries=result.libraries,
        ),
        target_deployment=spec.target_deployment,
        gates=spec.gates,
        validator_pod_overrides=spec.validator_pod_overrides,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": name,
            "namespace": training.namespace,
            "labels": labels(spec.model_name, training_job=training.name, model_version=name),
            "annotations": {TRAINING_JOB_UID_ANNOTATION: str(training.metadata.get("uid", ""))},
        },
        "spec": version_spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _source_lineage(training: TrainingJob, result: TrainingSucceeded) -> list[SourceLineage] | None:
    dataset = training.spec.dataset
    named: list[AnySource] = [*dataset.sources] if dataset.sources else [dataset]
    if not result.dataset_sources or len(named) != len(result.dataset_sources):
        return None
    return [
        SourceLineage(
            uri=_source_lineage_uri(source, training.namespace),
            sha256=sha256,
            rows=rows,
            sample=getattr(source, "sample", 1.0),
            used_rows=used,
        )
        for source, (sha256, rows, used) in zip(named, result.dataset_sources, strict=True)
    ]


def _summary(outcome: Outcome, model_version: str | None) -> str:
    if outcome.phase is TrainingJobPhase.SUCCEEDED and outcome.result is not None:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(outcome.result.metrics.items()))
        return f"trained {model_version}: {metrics}"
    return outcome.message


def training_status(
    training: TrainingJob,
    current: Mapping[str, Any] | None,
    outcome: Outcome,
    *,
    job_name: str | None,
    generation: int | None,
    model_version: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The TrainingJob's status for `outcome`, keeping the transition times of `current`.

    `generation` is the TrainingJob generation the Job reflects (its ``suspend``).
    """
    try:
        previous = TrainingJobStatus.model_validate(current or {})
    except ValidationError:
        previous = TrainingJobStatus()  # a status this version cannot read is rewritten whole
    message = _summary(outcome, model_version)
    succeeded = {
        TrainingJobPhase.PENDING: ConditionStatus.UNKNOWN,
        TrainingJobPhase.RUNNING: ConditionStatus.UNKNOWN,
        TrainingJobPhase.SUCCEEDED: ConditionStatus.TRUE,
        TrainingJobPhase.FAILED: ConditionStatus.FALSE,
    }[outcome.phase]
    conditions = set_condition(
        previous.conditions,
        type_=ConditionType.SUCCEEDED,
        status=succeeded,
        reason=outcome.reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    running = outcome.phase is TrainingJobPhase.RUNNING
    conditions = set_condition(
        conditions,
        type_=ConditionType.RUNNING,
        status=ConditionStatus.TRUE if running else ConditionStatus.FALSE,
        reason=outcome.reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    if outcome.suspended or find_condition(conditions, ConditionType.SUSPENDED) is not None:
        conditions = set_condition(
            conditions,
            type_=ConditionType.SUSPENDED,
            status=ConditionStatus.TRUE if outcome.suspended else ConditionStatus.FALSE,
            reason=Reason.SUSPENDED if outcome.suspended else outcome.reason,
            message=message,
            observed_generation=generation,
            now=now,
        )
    result = outcome.result
    status = TrainingJobStatus(
        observed_generation=generation,
        conditions=conditions,
        phase=outcome.phase,
        job_name=job_name,
        start_time=outcome.started or previous.start_time,
        completion_time=outcome.finished if outcome.terminal else None,
        model_version=model_version,
        metrics=result.metrics if result else {},
        dataset_sha256=result.dataset_sha256 if result else None,
        message=message[:4096] or None,
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)
