"""Which container images the local node can run, and how.

There is no container runtime and no registry here: the project's own images
are the project's own Python environment, so the node maps each of them to
its entrypoint in that environment. Any other image cannot be run and the pod
says so at once (reason ``ImageNotRunnableLocally``) instead of hanging.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_IMAGES", "NOT_RUNNABLE_REASON", "LocalImage", "resolve_image"]

NOT_RUNNABLE_REASON = "ImageNotRunnableLocally"

# The images' numeric non-root user, as their Dockerfiles declare it.
IMAGE_USER = 65532


@dataclass(frozen=True)
class LocalImage:
    """How to run one image's containers as local processes."""

    repository: str
    entrypoint: tuple[str, ...]
    user: int = IMAGE_USER


def _bin(name: str) -> str:
    return str(Path(sys.prefix) / "bin" / name)


DEFAULT_IMAGES = (
    LocalImage("mlops-operator/operator", (_bin("mlops"), "operator", "run")),
    LocalImage("mlops-operator/trainer", (_bin("python"), "-m", "mlops_operator.trainer")),
    LocalImage("mlops-operator/server", (_bin("mlops"), "serve")),
    # The project's environment with no entrypoint: for Jobs and tests that bring a command.
    LocalImage("mlops-operator/python", (_bin("python"),)),
)


def _repository(image: str) -> str:
    """`registry:5000/org/name:tag@sha256:...` -> `org/name` (the last two path parts)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return "/".join(name.split("/")[-2:])


def resolve_image(image: str) -> LocalImage | None:
    """The local mapping of `image`, or None when this node cannot run it.

    ``MLOPS_LOCAL_IMAGE_PREFIX`` renames the project's images (e.g. a fork
    publishing ``acme/mlops-trainer``): the repository ``<prefix>trainer``
    then maps to the trainer entrypoint.
    """
    repository = _repository(image)
    prefix = os.environ.get("MLOPS_LOCAL_IMAGE_PREFIX", "mlops-operator/")
    for known in DEFAULT_IMAGES:
        short = known.repository.split("/", 1)[1]
        if repository in (
            known.repository,
            f"{prefix}{short}".split("/", 1)[-1],
            f"{prefix}{short}",
        ):
            return known
    return None
