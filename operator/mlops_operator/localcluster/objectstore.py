"""The local cluster's object store: versitygw, a real S3 server, over a directory of its state.

`mlops cluster up --object-store` starts it (built from its Go module and cached like the
cluster binaries). It listens on the bridge (``10.244.0.1:9000``, beside DNS on :53 and the
API server's forward on :6443), so pods and the host reach it at the same address. Its
credentials are made once per cluster (random, kept in ``object-store.json`` of the state
directory, mode 0600) and handed to whoever needs them as the variables every S3 client
reads: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION`` (`ObjectStore.env`; as a Secret for pods: `ObjectStore.secret`).
One bucket, ``mlops``, exists from the start. Its data is throw-away, like etcd's.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_operator.localcluster import network
from mlops_operator.localcluster.files import write_atomically

__all__ = ["BUCKET", "PORT", "ObjectStore", "command", "credentials", "data_dir", "prepare"]

PORT = 9000
BUCKET = "mlops"
REGION = "us-east-1"
HEALTH_PATH = "/health"


@dataclass(frozen=True)
class ObjectStore:
    """Where the object store answers and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = REGION
    bucket: str = BUCKET

    @property
    def uri(self) -> str:
        """The bucket as an fsspec URI."""
        return f"s3://{self.bucket}"

    def env(self) -> dict[str, str]:
        """The variables S3 clients (botocore, s3fs, the AWS CLI) read."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def secret(self, namespace: str, name: str) -> dict[str, Any]:
        """A Secret holding `env`, for a workload's ``envFrom``."""
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": self.env(),
        }


def data_dir(state_dir: Path) -> Path:
    """The directory holding the buckets (one folder each)."""
    return state_dir / "object-store"


def _credentials_file(state_dir: Path) -> Path:
    return state_dir / "object-store.json"


def credentials(state_dir: Path) -> ObjectStore:
    """The cluster's object store, its credentials made on first use."""
    path = _credentials_file(state_dir)
    try:
        return ObjectStore(**json.loads(path.read_text()))
    except (FileNotFoundError, TypeError, ValueError):
        pass
    store = ObjectStore(
        endpoint=f"http://{network.GATEWAY}:{PORT}",
        access_key=f"mlops{secrets.token_hex(6)}",
        secret_key=secrets.token_urlsafe(30),
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(asdict(store), indent=2))
    return store


def prepare(state_dir: Path) -> None:
    """Create the bucket (a bucket of the posix backend is a directory)."""
    (data_dir(state_dir) / BUCKET).mkdir(parents=True, exist_ok=True)


def command(binary: Path, state_dir: Path) -> list[str]:
    """versitygw serving the data directory over S3 on the bridge, with a health endpoint."""
    return [
        str(binary),
        f"--port={network.GATEWAY}:{PORT}",
        f"--health={HEALTH_PATH}",
        f"--region={REGION}",
        "posix",
        str(data_dir(state_dir)),
    ]


def server_env(state_dir: Path) -> dict[str, str]:
    """The server's environment: its root account from `credentials` (never on the command line)."""
    store = credentials(state_dir)
    return {
        **os.environ,
        "ROOT_ACCESS_KEY": store.access_key,
        "ROOT_SECRET_KEY": store.secret_key,
    }


def health_url() -> str:
    """The endpoint that answers 200 while the server runs."""
    return f"http://{network.GATEWAY}:{PORT}{HEALTH_PATH}"
