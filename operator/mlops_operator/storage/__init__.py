"""The artifact store: datasets and models, addressed by content, under one root.

The root is any fsspec URI: a directory (a PVC mounted into the trainer and
server pods, or a folder under the local cluster's data root), ``file://...``,
or ``s3://...`` and other object stores when their fsspec package is installed.
"""

from mlops_operator.storage.keys import InvalidKeyError, check_key, join_key
from mlops_operator.storage.store import ArtifactStore, StorageError, StoredObject, sha256_bytes

__all__ = [
    "ArtifactStore",
    "InvalidKeyError",
    "StorageError",
    "StoredObject",
    "check_key",
    "join_key",
    "sha256_bytes",
]
