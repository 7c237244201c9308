"""Which container images the local node can run, and how.

There is no container runtime and no registry here. Two kinds of image run:

- **Built images.** An image named ``localhost/...`` that is in buildah's local storage
  (`make images IMAGE_REPO=localhost/mlops-operator` builds the project's three there) runs
  from its own root file system, as a container runtime would run it: its ENTRYPOINT, ENV
  and USER from the image's configuration, the process chrooted into a read-only bind of the
  image's files (the launcher; ``readOnlyRootFilesystem`` holds). The node mounts each such
  image once, through a buildah working container of its own.
- **The project's images by name.** Any other ``*/mlops-operator/{operator,trainer,server}``
  is the project's own Python environment: the node maps each to its entrypoint there, so a
  test never waits for an image build and always runs the code of the checkout.

Any other image cannot be run and the pod says so at once (reason
``ImageNotRunnableLocally``) instead of hanging.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops_operator.podcontract import IMAGE_USER

__all__ = [
    "BUILT_IMAGE_REGISTRY",
    "DEFAULT_IMAGES",
    "NOT_RUNNABLE_REASON",
    "LocalImage",
    "built_image",
    "release_built_images",
    "resolve_image",
]

NOT_RUNNABLE_REASON = "ImageNotRunnableLocally"

BUILT_IMAGE_REGISTRY = "localhost/"
"""Images named under it run from their own root file system when buildah has them."""
_CONTAINER_PREFIX = "mlops-local-node-"


@dataclass(frozen=True)
class LocalImage:
    """How to run one image's containers as local processes."""

    repository: str
    entrypoint: tuple[str, ...]
    user: int = IMAGE_USER
    # A built image: its CMD, root file system (mounted) and ENV; empty for a mapping.
    cmd: tuple[str, ...] = ()
    rootfs: str | None = None
    env: tuple[tuple[str, str], ...] = ()


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


_MOUNTED: dict[str, LocalImage] = {}


def _owner_prefix() -> str:
    """The working containers' name prefix of this machine's node in this network namespace.

    buildah's storage is the machine's; clusters in network namespaces of their own run
    side by side (`cluster._node_owner_file`), and `release_built_images` must only remove
    its own node's containers.
    """
    return f"{_CONTAINER_PREFIX}{Path('/proc/self/ns/net').stat().st_ino}-"


def _buildah(*args: str) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def built_image(image: str) -> LocalImage | None:
    """`image` from buildah's storage, its root file system mounted; None if it is not there."""
    if not image.startswith(BUILT_IMAGE_REGISTRY) or shutil.which("buildah") is None:
        return None
    try:
        config = json.loads(_buildah("inspect", "--type", "image", image))
    except subprocess.CalledProcessError:
        return None
    digest = str(config["FromImageDigest"]).removeprefix("sha256:")[:16]
    if digest not in _MOUNTED:
        # One working container per image and node: a stable name, so a restarted node
        # finds (and reuses) the one it made before.
        name = f"{_owner_prefix()}{digest}"
        found = subprocess.run(["buildah", "inspect", name], capture_output=True, check=False)
        if found.returncode != 0:
            _buildah("from", "--pull-never", "--quiet", "--name", name, image)
        oci = config["OCIv1"]["config"]
        user = str(oci.get("User") or "0").split(":", 1)[0]
        _MOUNTED[digest] = LocalImage(
            repository=_repository(image),
            entrypoint=tuple(oci.get("Entrypoint") or ()),
            cmd=tuple(oci.get("Cmd") or ()),
            user=int(user) if user.isdigit() else 0,
            rootfs=_buildah("mount", name),
            env=tuple((k, v) for k, _, v in (e.partition("=") for e in oci.get("Env") or [])),
        )
    return _MOUNTED[digest]


def release_built_images() -> None:
    """Unmount and remove the node's working containers (the node stops)."""
    _MOUNTED.clear()
    if shutil.which("buildah") is None:
        return
    names = subprocess.run(
        ["buildah", "containers", "--noheading", "--format", "{{.ContainerName}}"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for name in (n for n in names if n.startswith(_owner_prefix())):
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def resolve_image(image: str) -> LocalImage | None:
    """The local mapping of `image`, or None when this node cannot run it.

    ``MLOPS_LOCAL_IMAGE_PREFIX`` renames the project's images (e.g. a fork
    publishing ``acme/mlops-trainer``): the repository ``<prefix>trainer``
    then maps to the trainer entrypoint.
    """
    built = built_image(image)
    if built is not None:
        return built
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
