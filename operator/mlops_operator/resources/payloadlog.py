"""Where a ModelDeployment's payload log lives, for the servers that write it and the trainer that reads it.

One place in the artifact store per deployment: ``payload-logs/<namespace>/<deployment>``
(the namespace keeps deployments apart when several namespaces share an object store).
The servers write ``<model>/<version>/<day>/*.jsonl`` under it; a TrainingJob with
``dataset.fromPayloadLog`` reads all of it, within its window.
"""

from __future__ import annotations

from mlops_operator.resources.common import ArtifactStorage

__all__ = ["PAYLOAD_LOG_FOLDER", "payload_log_key", "payload_log_root"]

PAYLOAD_LOG_FOLDER = "payload-logs"


def payload_log_key(namespace: str, deployment: str) -> str:
    """The store key under which the deployment's servers log."""
    # Both parts are DNS names (checked by the API), so the key needs no further checking.
    return f"{PAYLOAD_LOG_FOLDER}/{namespace}/{deployment}"


def payload_log_root(storage: ArtifactStorage, namespace: str, deployment: str) -> str:
    """The log's root as a workload pod sees it (on the mounted claim, or in the object store)."""
    return f"{storage.store_uri}/{payload_log_key(namespace, deployment)}"
