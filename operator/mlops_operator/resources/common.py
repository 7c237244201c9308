"""What every object the operator creates shares: labels, owner references, pod security, artifacts.

- **Labels.** Everything carries ``app.kubernetes.io/managed-by`` and ``part-of``
  plus ``mlops.dev/model`` and, where relevant, the TrainingJob, ModelVersion or
  ModelDeployment it belongs to, so ``kubectl get all -l mlops.dev/model=iris``
  shows a model's whole footprint. Label values are at most 63 characters, object
  names up to 253: `label_value` shortens long names with a hash suffix, and
  lookups by label go through the same function.
- **Pod security.** Workload pods meet the ``restricted`` Pod Security Standard
  (non-root, no privilege escalation, every capability dropped, seccomp
  ``RuntimeDefault``, read-only root filesystem) with an ``emptyDir`` at ``/tmp``
  for scratch space, so they run in namespaces that enforce it. Their user, group
  and fsGroup are the operator's setting (`WorkloadSecurityContext`): the images'
  user by default, none where the platform assigns them (OpenShift).
- **Artifacts.** One convention for every controller (`ArtifactStorage`): either
  a PersistentVolumeClaim (default ``mlops-artifacts``, created in each namespace
  that runs workloads when missing, never deleted) mounted at `ARTIFACT_MOUNT`, or
  an object-store root (``s3://bucket/prefix``) and no volume. Pods find the store
  in ``MLOPS_STORE_URI``; ModelVersions record ``pvc://<claim>/<key>`` (or the
  object-store URI of the key), which `resolve_artifact_uri` maps back to the
  mount inside a pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mlops_operator.api.metadata import (
    COMPONENT_LABEL,
    DEPLOYMENT_LABEL,
    MANAGED_BY_LABEL,
    MODEL_LABEL,
    MODEL_VERSION_LABEL,
    PART_OF_LABEL,
    TRAINING_JOB_LABEL,
)
from mlops_operator.api.pods import PodOverrides, WorkloadSecurityContext
from mlops_operator.api.resource import CustomResource
from mlops_operator.podcontract import (
    ARTIFACT_MOUNT,
    ARTIFACT_VOLUME,
    SCRATCH_MOUNT,
    SCRATCH_VOLUME,
    STORE_URI_ENV,
)
from mlops_operator.resources.pods import with_cpu_threads, with_overrides

__all__ = [
    "ARTIFACT_MOUNT",
    "ARTIFACT_VOLUME",
    "COMPONENT_LABEL",
    "DEPLOYMENT_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MODEL_LABEL",
    "MODEL_VERSION_LABEL",
    "PART_OF_LABEL",
    "PVC_SCHEME",
    "SCRATCH_MOUNT",
    "SCRATCH_VOLUME",
    "STORE_URI_ENV",
    "TRAINING_JOB_LABEL",
    "ArtifactStorage",
    "artifact_pvc",
    "controlled_by",
    "controller_uid",
    "label_value",
    "labels",
    "owner_reference",
    "resolve_artifact_uri",
    "restricted_container_security_context",
    "restricted_job",
    "restricted_pod_security_context",
    "scratch_mount",
    "scratch_volume",
]

MANAGED_BY = "mlops-operator"

PVC_SCHEME = "pvc"

_MAX_LABEL_VALUE = 63


def label_value(name: str) -> str:
    """`name` as a label value: unchanged when it fits in 63 characters, else cut with a hash suffix.

    Object names may be 253 characters long; label values only 63. The suffix keeps
    two long names that share a prefix apart.
    """
    if len(name) <= _MAX_LABEL_VALUE:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    head = name[: _MAX_LABEL_VALUE - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}"


def labels(
    model: str,
    *,
    component: str | None = None,
    training_job: str | None = None,
    model_version: str | None = None,
    deployment: str | None = None,
) -> dict[str, str]:
    """The labels of an object the operator creates for `model` (and for the named parents)."""
    found = {
        MANAGED_BY_LABEL: MANAGED_BY,
        PART_OF_LABEL: MANAGED_BY,
        MODEL_LABEL: label_value(model),
    }
    optional = {
        COMPONENT_LABEL: component,
        TRAINING_JOB_LABEL: training_job,
        MODEL_VERSION_LABEL: model_version,
        DEPLOYMENT_LABEL: deployment,
    }
    found |= {key: label_value(value) for key, value in optional.items() if value is not None}
    return found


def owner_reference(owner: CustomResource, *, controller: bool = True) -> dict[str, Any]:
    """An owner reference to `owner`: the garbage collector deletes the child with it.

    ``blockOwnerDeletion`` makes a foreground deletion of the owner wait for the child.
    """
    uid = owner.metadata.get("uid")
    if not uid:
        raise ValueError(
            f"{owner.crd.kind} {owner.name!r} has no metadata.uid; only an object read back"
            " from the API server can own children"
        )
    return {
        "apiVersion": owner.api_version,
        "kind": owner.crd.kind,
        "name": owner.name,
        "uid": uid,
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controlled_by(obj: Mapping[str, Any], owner: CustomResource) -> bool:
    """Whether `owner` (by uid, not name) is the controller of `obj` (an object as stored).

    Names are reused (an object deleted and created again, or someone else's object that
    happens to have the name); the uid is not. The operator changes or deletes a child
    only when this holds.
    """
    return controller_uid(obj) == owner.metadata.get("uid")


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid in `obj`'s controller owner reference, if it has one."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def restricted_pod_security_context(security: WorkloadSecurityContext) -> dict[str, Any]:
    """The pod-level settings the ``restricted`` Pod Security Standard asks for, with the ids
    `security` sets (an id it leaves unset is the image's, or the platform's, to decide)."""
    return {
        "runAsNonRoot": True,
        **security.pod_fields(),
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security_context() -> dict[str, Any]:
    """The container-level settings of the ``restricted`` standard, root filesystem read-only."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_job(
    metadata: dict[str, Any],
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    spec: Mapping[str, Any],
    overrides: Sequence[PodOverrides | None] = (),
    *,
    security: WorkloadSecurityContext,
    cpu_threads: bool = False,
) -> dict[str, Any]:
    """The ``batch/v1`` Job of one container the operator runs (trainer, validator, audit
    appender), the one template of all three: the Job's `spec` with a pod labelled as the Job
    (`metadata`), never restarted, no API token, no service links in its environment,
    ``restricted`` down to the container with `security`'s ids, and `overrides` merged over
    the pod in order; with `cpu_threads`, the numeric thread pools sized to the CPUs the
    container may use (`with_cpu_threads`)."""
    pod = {
        "metadata": {"labels": metadata["labels"]},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": restricted_pod_security_context(security),
            "containers": [
                container | {"securityContext": restricted_container_security_context()}
            ],
            "volumes": volumes,
        },
    }
    template = with_overrides(pod, container["name"], overrides)
    if cpu_threads:
        template = with_cpu_threads(template, container["name"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {**spec, "template": template},
    }


def scratch_volume(size_limit: str = "1Gi") -> dict[str, Any]:
    """The writable ``emptyDir`` a read-only container uses for temporary files."""
    return {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": size_limit}}


def scratch_mount() -> dict[str, Any]:
    """Where the scratch volume is mounted: ``/tmp``, where Python and libraries expect it."""
    return {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_MOUNT}


@dataclass(frozen=True)
class ArtifactStorage:
    """Where workloads read and write artifacts: a PVC (``claim``) or an object store (``uri``).

    ``uri`` wins when both are set: an object-store root needs no volume. With an object
    store, ``credentials_secret`` names a Secret (in the workload's namespace) whose keys
    become every workload container's environment: ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY`` and, for an S3-compatible server, ``AWS_ENDPOINT_URL``. The
    operator never reads it (it has no access to Secrets); without it the pods use whatever
    their platform provides (workload identity on the ServiceAccount).
    """

    claim: str | None = "mlops-artifacts"
    uri: str | None = None
    credentials_secret: str | None = None

    def __post_init__(self) -> None:
        if not self.claim and not self.uri:
            raise ValueError(
                "the artifact store needs a PersistentVolumeClaim name or an object-store URI"
            )

    @property
    def uses_pvc(self) -> bool:
        """Whether pods mount the claim (no object-store URI is configured)."""
        return not self.uri

    @property
    def store_uri(self) -> str:
        """What a workload pod gets as ``MLOPS_STORE_URI``."""
        return self.uri.rstrip("/") if self.uri else f"file://{ARTIFACT_MOUNT}"

    def env(self) -> list[dict[str, str]]:
        """The environment entries that tell a workload where the store is."""
        return [{"name": STORE_URI_ENV, "value": self.store_uri}]

    def env_from(self) -> list[dict[str, Any]]:
        """The container's ``envFrom``: the credentials Secret of an object store, if any."""
        if self.uses_pvc or not self.credentials_secret:
            return []
        return [{"secretRef": {"name": self.credentials_secret}}]

    def env_from_field(self) -> dict[str, Any]:
        """``{"envFrom": ...}`` to spread into a container of a workload that reads the store,
        or ``{}`` when the store needs no credentials (every such container takes it)."""
        found = self.env_from()
        return {"envFrom": found} if found else {}

    def volumes(self) -> list[dict[str, Any]]:
        """The pod volumes the store needs (none for an object store)."""
        if not self.uses_pvc:
            return []
        return [{"name": ARTIFACT_VOLUME, "persistentVolumeClaim": {"claimName": self.claim}}]

    def mounts(self, *, read_only: bool = False) -> list[dict[str, Any]]:
        """The container mounts the store needs (none for an object store)."""
        if not self.uses_pvc:
            return []
        return [{"name": ARTIFACT_VOLUME, "mountPath": ARTIFACT_MOUNT, "readOnly": read_only}]

    def writable_folder(self, key: str, mount_path: str) -> tuple[str, list[dict[str, Any]]]:
        """One folder of the store, writable, for a pod that mounts the store read-only.

        The URI the pod writes to and the mounts it needs: with the claim, a second mount
        of it that exposes only `key` at `mount_path`; with an object store, the key's URI
        and no mount (the store's own credentials decide what the pod may write).
        """
        if not self.uses_pvc:
            return f"{self.store_uri}/{key.strip('/')}", []
        mount = {
            "name": ARTIFACT_VOLUME,
            "mountPath": mount_path,
            "subPath": key.strip("/"),
            "readOnly": False,
        }
        return f"file://{mount_path}", [mount]

    def uri_of(self, key: str) -> str:
        """The URI a ModelVersion records for `key`: ``pvc://<claim>/<key>`` or the store's own."""
        key = key.strip("/")
        if self.uses_pvc:
            return f"{PVC_SCHEME}://{self.claim}/{key}"
        return f"{self.store_uri}/{key}"


def artifact_pvc(
    namespace: str, claim: str, *, size: str = "10Gi", storage_class: str | None = None
) -> dict[str, Any]:
    """The artifact PersistentVolumeClaim (the default StorageClass unless one is named).

    ``ReadWriteOnce``: on one node (the local cluster, small clusters) every pod
    can mount it; clusters that spread trainers and servers over nodes should
    create the claim themselves, ``ReadWriteMany``, before the operator needs it.
    """
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": claim,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, PART_OF_LABEL: MANAGED_BY},
        },
        "spec": spec,
    }


def resolve_artifact_uri(uri: str, *, mount: str = ARTIFACT_MOUNT) -> str:
    """Inside a pod, the URI to open for an artifact URI recorded in a ModelVersion.

    ``pvc://<claim>/<key>`` becomes ``file://<mount>/<key>`` (the claim is mounted
    there); any other URI is returned as it is.
    """
    parts = urlsplit(uri)
    if parts.scheme != PVC_SCHEME:
        return uri
    key = parts.path.strip("/")
    if not parts.netloc or not key:
        raise ValueError(f"{uri!r} is not an artifact URI; expected pvc://<claim>/<key>")
    return f"file://{mount.rstrip('/')}/{key}"
