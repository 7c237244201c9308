"""The ``local`` StorageClass's volumes: a sparse ext4 image per PersistentVolume, loop-mounted.

A CSI driver hands a pod a filesystem of the size claimed, so a write past it fails
with ``ENOSPC``. The local node does the same: each volume is a sparse file of the
claim's size (rounded up to whole MiB, at least 1 MiB), formatted ext4 with no
reserved blocks (the pods' non-root users get all of it) and loop-mounted at the
PersistentVolume's path, which pods bind-mount like any directory. The image takes
host disk only for what is written (thin provisioning): the host's disk can still
run out before a claim does.

Every step is idempotent and safe to re-run after a crash at any line:

- an image is formatted under a dot-prefixed temporary name and renamed once
  formatted, so an image under its final name is always a filesystem;
- only what is not mounted is mounted, under a lock (pods start concurrently);
- removal unmounts, detaches any loop device still backing the image, then deletes
  image and directory, each step skipping what is already done.

`unmount_all` is the teardown of the node and of ``mlops cluster down``: every
mount under the data root, deepest first, then every loop device whose backing
file lies there. Where loop devices or ``mkfs.ext4`` are unavailable,
`unavailable_reason` says why and the node provisions plain directories instead,
which enforce no capacity (the PersistentVolume's annotations say so).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

from mlops_operator.localcluster.podspec import parse_quantity

__all__ = [
    "BACKING_ANNOTATION",
    "DIRECTORY",
    "EXT4_IMAGE",
    "FALLBACK_ANNOTATION",
    "DiskImageError",
    "create",
    "ensure_mounted",
    "image_of",
    "remove",
    "unavailable_reason",
    "unmount_all",
    "volume_bytes",
]

# On a PersistentVolume: how the node backs it, and why capacity is not enforced if not.
BACKING_ANNOTATION = "mlops.dev/local-volume"
FALLBACK_ANNOTATION = "mlops.dev/local-volume-fallback"
EXT4_IMAGE = "ext4-image"
DIRECTORY = "directory"

_MIB = 1 << 20
_TOOLS = ("mkfs.ext4", "mount", "umount", "losetup")
# Lazy initialisation keeps a 10 GiB image at a few MB; `noinit_itable` stops the kernel
# from zeroing the inode tables in the background, which would fill the sparse file.
_MKFS_OPTIONS = ("-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1")
_MOUNT_OPTIONS = "loop,nosuid,nodev,noinit_itable"
_mounting = threading.Lock()


class DiskImageError(RuntimeError):
    """A volume's image could not be made, mounted or removed; the message says why."""


def volume_bytes(quantity: str) -> int:
    """The image size for a claim of ``quantity``: rounded up to whole MiB, at least 1 MiB.

    ext4 needs a few hundred KiB of its own, so a smaller image would hold nothing.
    """
    requested = parse_quantity(quantity)
    return max(1, math.ceil(requested / _MIB)) * _MIB


def image_of(directory: Path) -> Path:
    """The image file behind the volume mounted at ``directory``."""
    return directory.with_name(f"{directory.name}.ext4")


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.strip() or f"exit code {proc.returncode}"
        raise DiskImageError(f"{' '.join(argv)}: {detail}")


def create(directory: Path, size: int) -> None:
    """Make the volume at ``directory``: a ``size``-byte ext4 image, mounted there, world-writable."""
    image = image_of(directory)
    if not image.exists():
        temporary = image.with_name(f".{image.name}.tmp")
        with temporary.open("wb") as handle:
            handle.truncate(size)
        _run("mkfs.ext4", *_MKFS_OPTIONS, str(temporary))
        temporary.replace(image)
    ensure_mounted(directory)
    # Pods run as any user; the fsGroup each pod brings narrows this at start.
    directory.chmod(0o777)


def ensure_mounted(directory: Path) -> None:
    """Mount the image of ``directory`` there unless it already is."""
    image = image_of(directory)
    with _mounting:
        if os.path.ismount(directory):
            return
        if not image.is_file():
            raise DiskImageError(f"the volume's image {image} does not exist")
        directory.mkdir(parents=True, exist_ok=True)
        _run("mount", "-o", _MOUNT_OPTIONS, str(image), str(directory))


def _unmount(directory: Path) -> None:
    with _mounting:
        # Bounded: a mount stacked twice (which the lock prevents) still comes off.
        for _ in range(4):
            if not os.path.ismount(directory):
                return
            try:
                _run("umount", str(directory))
            except DiskImageError:
                # Still in use by a process that outlived its pod: detach now, release later.
                _run("umount", "--lazy", str(directory))


def _backing_files() -> dict[str, Path]:
    """Attached loop devices (``/dev/loopN``) and the files behind them."""
    found = {}
    for entry in Path("/sys/block").glob("loop*"):
        try:
            backing = (entry / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue  # not attached
        found[f"/dev/{entry.name}"] = Path(backing.removesuffix(" (deleted)"))
    return found


def _detach(under: Path) -> None:
    """Detach every loop device whose backing file is ``under`` or lies beneath it."""
    under = under.resolve()  # the kernel reports the backing file's real path
    for device, backing in _backing_files().items():
        if backing == under or under in backing.parents:
            try:
                _run("losetup", "--detach", device)
            except DiskImageError:
                # An unmounted image's device detaches itself (autoclear), maybe meanwhile.
                if _backing_files().get(device) == backing:
                    raise


def remove(directory: Path) -> None:
    """Unmount and delete the volume at ``directory`` with its data (image or plain directory)."""
    image = image_of(directory)
    _unmount(directory)
    _detach(image)
    image.unlink(missing_ok=True)
    image.with_name(f".{image.name}.tmp").unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)


def _mount_points() -> list[Path]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        points.append(Path(point))
    return points


def unmount_all(root: Path) -> list[Path]:
    """Unmount everything under ``root`` and detach the loop devices of images there.

    Returns the mount points that were unmounted.
    """
    root = root.resolve()
    mounted = [p for p in _mount_points() if root in p.parents]
    for point in sorted(set(mounted), key=lambda p: len(p.parts), reverse=True):
        _unmount(point)
    _detach(root)
    return mounted


def unavailable_reason(root: Path) -> str | None:
    """Why volumes under ``root`` cannot be ext4 images here, or None if they can.

    Tries the real thing (a 1 MiB image formatted, mounted and removed): being root
    is not enough in a container without loop devices.
    """
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found"
    probe = root / ".probe"
    root.mkdir(parents=True, exist_ok=True)
    try:
        remove(probe)
        create(probe, _MIB)
    except (DiskImageError, OSError) as error:
        return str(error)
    finally:
        remove(probe)
    return None
