"""Build the three images (`images/Dockerfile`) with buildah, on a Debian base made here.

No image registry is reachable here, so the base image cannot be pulled: it is made from
Debian's packages instead. ``debootstrap`` writes a minimal bookworm root file system with
Python and its venv module; it is kept as a tarball in the per-user cache (keyed by suite,
packages and mirror, like the cluster binaries), imported into buildah's local storage as
``localhost/mlops-operator/base:<key>`` and named by its digest, which is what the Dockerfile's
``BASE_IMAGE`` asks for. buildah builds without a daemon; ``--isolation chroot`` runs the RUN
steps in a chroot, which works where user namespaces and a container runtime do not. With
``--layers`` the stages are cached, so a rebuild after a code change only rebuilds the wheel.
Each image then gets this build's labels and ``MLOPS_BUILD_COMMIT`` in a metadata-only
commit (`_stamp`: buildah 1.28's cache would keep the first build's), and the images a
rebuild left without a name are removed (`_remove_superseded`).

Users with Docker build the same Dockerfile on ``python:3.11-slim`` (docs/install.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops_operator.buildinfo import BUILD_COMMIT_ENV, checkout_revision
from mlops_operator.localcluster import progress
from mlops_operator.localcluster.binaries import cache_root
from mlops_operator.localcluster.prerequisites import ensure_packages

__all__ = [
    "BASE_PACKAGES",
    "BASE_SUITE",
    "IMAGES",
    "BuiltImage",
    "base_image",
    "base_rootfs",
    "build_images",
    "debian_mirror",
    "ensure_tools",
]

BASE_SUITE = "bookworm"
# Python with its venv module (the images' environments), CA certificates (https:// datasets,
# object stores over TLS), and libgomp1 (the OpenMP runtime scikit-learn's and onnxruntime's
# wheels load).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")
IMAGES = ("operator", "trainer", "server")
BASE_REPOSITORY = "localhost/mlops-operator/base"
# images/Dockerfile's runtime stage labels every image with it (the install stages' cache
# images carry no label).
_VENDOR_LABEL = "org.opencontainers.image.vendor=mlops-operator"
_TOOLS = {"buildah": "buildah", "debootstrap": "debootstrap"}
_REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class BuiltImage:
    """One image in buildah's local storage."""

    target: str
    name: str
    digest: str


def ensure_tools() -> None:
    """buildah and debootstrap from Debian, installed when missing (root)."""
    ensure_packages(_TOOLS, purpose="building the images")


def debian_mirror() -> str:
    """The Debian mirror: ``MLOPS_DEBIAN_MIRROR``, else the first one apt is configured with."""
    explicit = os.environ.get("MLOPS_DEBIAN_MIRROR")
    if explicit:
        return explicit
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def _key(mirror: str) -> str:
    recipe = json.dumps([BASE_SUITE, sorted(BASE_PACKAGES), mirror, "minbase"])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def base_rootfs() -> Path:
    """The cached tarball of the base root file system (made by debootstrap on first use)."""
    mirror = debian_mirror()
    tarball = cache_root() / "images" / f"debian-{BASE_SUITE}-{_key(mirror)}.tar"
    if tarball.is_file():
        return tarball
    ensure_tools()
    staging = tarball.with_suffix(".partial")
    rootfs = staging / "rootfs"
    bootstrapped = staging / ".bootstrapped"
    if not bootstrapped.is_file():
        # A half-made root file system is never reused: debootstrap starts afresh.
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _debootstrap(rootfs, mirror)
        bootstrapped.write_text(f"{BASE_SUITE} {mirror}\n")
    partial_tar = staging / "rootfs.tar"
    progress.run_step(
        "packing the base root file system",
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial_tar), "."],
    )
    partial_tar.rename(tarball)
    shutil.rmtree(staging, ignore_errors=True)
    return tarball


def _debootstrap(rootfs: Path, mirror: str) -> None:
    progress.run_step(
        f"debootstrap {BASE_SUITE} ({', '.join(BASE_PACKAGES)})",
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            BASE_SUITE,
            str(rootfs),
            mirror,
        ],
    )
    # What an image does not need: downloaded packages, package lists, logs.
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "var/log"):
        for path in (rootfs / leftover).glob("*"):
            if path.is_file():
                path.unlink()


def _buildah(*args: str) -> str:
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _digest(reference: str) -> str:
    """The manifest digest of an image in local storage."""
    found = json.loads(_buildah("inspect", "--type", "image", reference))
    digest: str = found["FromImageDigest"]
    return digest


def base_image() -> str:
    """The base image in buildah's storage, by digest (imported from `base_rootfs` when missing)."""
    ensure_tools()
    tarball = base_rootfs()
    name = f"{BASE_REPOSITORY}:{tarball.stem.rsplit('-', 1)[-1]}"
    present = subprocess.run(
        ["buildah", "inspect", "--type", "image", name], capture_output=True, check=False
    )
    if present.returncode != 0:
        with progress.heartbeat(f"importing the base image {name}"):
            container = _buildah("from", "scratch")
            try:
                _buildah("add", container, str(tarball), "/")
                _buildah(
                    "config",
                    "--env",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--env",
                    "LANG=C.UTF-8",
                    "--cmd",
                    "/bin/sh",
                    container,
                )
                _buildah("commit", "--quiet", container, name)
            finally:
                subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    return f"{BASE_REPOSITORY}@{_digest(name)}"


_BUILD_CA = "/run/mlops-build/ca.crt"
_SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def _trust_args() -> list[str]:
    """The host's CA bundle for the RUN steps' downloads, when the host names one.

    Behind a TLS-inspecting proxy the base image's CAs do not verify PyPI. The bundle pip
    here trusts (PIP_CERT, SSL_CERT_FILE or REQUESTS_CA_BUNDLE, else the system's, which
    holds the CAs an administrator added) is mounted read-only for the build only and named
    by the PIP_CERT build argument: the images never carry it.
    """
    candidates = [os.environ.get(v) for v in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")]
    for bundle in (*candidates, _SYSTEM_CA):
        if bundle and Path(bundle).is_file():
            return ["--volume", f"{bundle}:{_BUILD_CA}:ro", "--build-arg", f"PIP_CERT={_BUILD_CA}"]
    return []


def build_images(
    repo: str,
    tag: str,
    targets: Sequence[str] = IMAGES,
    *,
    base: str | None = None,
    context: Path = _REPO,
) -> list[BuiltImage]:
    """Build `targets` of images/Dockerfile as ``<repo>/<target>:<tag>``; what was built."""
    unknown = set(targets) - set(IMAGES)
    if unknown:
        raise ValueError(f"no image target {sorted(unknown)}; choose from {', '.join(IMAGES)}")
    ensure_tools()
    base = base or base_image()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    revision = checkout_revision() or "unknown"
    built = []
    for target in targets:
        name = f"{repo.rstrip('/')}/{target}:{tag}"
        progress.run_step(
            f"buildah build {target}",
            [
                "buildah",
                "build",
                "--isolation",
                "chroot",
                "--layers",
                # A failed build's working containers would stay in buildah's storage.
                "--force-rm",
                "--format",
                "oci",
                "-f",
                str(context / "images" / "Dockerfile"),
                "--target",
                target,
                "--build-arg",
                f"BASE_IMAGE={base}",
                "--build-arg",
                f"VERSION={tag}",
                "--build-arg",
                f"REVISION={revision}",
                "--build-arg",
                f"CREATED={created}",
                *_trust_args(),
                "-t",
                name,
                str(context),
            ],
        )
        _stamp(
            name,
            labels={
                "org.opencontainers.image.version": tag,
                "org.opencontainers.image.revision": revision,
                "org.opencontainers.image.created": created,
            },
            env={BUILD_COMMIT_ENV: revision},
        )
        built.append(BuiltImage(target, name, _digest(name)))
    _remove_superseded()
    return built


def _stamp(name: str, *, labels: dict[str, str], env: dict[str, str]) -> None:
    """Set this build's own labels and environment on `name`, in a metadata-only commit.

    The Dockerfile sets them from build arguments, which is right with Docker. buildah 1.28
    (Debian bookworm's) keys its layer cache on a step's text, not on the build arguments the
    step expands: the LABEL and ENV steps were taken from the first build that ran them, so
    every later image carried that build's commit, version and date (and a model trained by
    it recorded the wrong ``lineage.codeVersion``).
    """
    container = _buildah("from", "--pull-never", "--quiet", name)
    try:
        settings = [f"--label={k}={v}" for k, v in labels.items()]
        settings += [f"--env={k}={v}" for k, v in env.items()]
        _buildah("config", *settings, container)
        _buildah("commit", "--quiet", container, name)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def _remove_superseded() -> None:
    """Remove the project's images that no name points to any more (earlier builds').

    Every build leaves the image its names pointed to before without a name; each holds
    its own copy of the Python environment (hundreds of MB), and repeated builds filled the
    disk. Only images with the project's label are candidates: the install stages' layer
    cache carries none and stays. An image a local node still runs (a working container of
    `localcluster.images`) is refused by buildah and removed by a later build.
    """
    superseded = _buildah(
        "images", "--quiet", "--no-trunc", "--filter", "dangling=true",
        "--filter", f"label={_VENDOR_LABEL}",
    ).split()  # fmt: skip
    for image in superseded:
        subprocess.run(["buildah", "rmi", image], capture_output=True, check=False)
