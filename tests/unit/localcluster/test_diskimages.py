"""The local StorageClass's volumes: real ext4 images, loop-mounted, through their lifecycle."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from mlops_operator.localcluster import diskimages
from mlops_operator.localcluster.cluster import LocalCluster
from tests.kube import wait_for


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A volumes root where images can be made (skips where loop devices are unavailable)."""
    reason = diskimages.unavailable_reason(tmp_path)
    if reason is not None:
        pytest.skip(f"no loop-mounted ext4 here: {reason}")
    yield tmp_path
    diskimages.unmount_all(tmp_path)


def _attached(root: Path) -> list[str]:
    """Files under `root` behind a loop device, as losetup lists them."""
    listing = subprocess.run(
        ["losetup", "--list", "--noheadings", "--output", "BACK-FILE"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.strip() for line in listing.stdout.splitlines() if str(root) in line]


def _wait_detached(root: Path) -> None:
    """No loop device left behind an image under `root`.

    Waited for: a device that still backs the mounted filesystem when it is detached is
    only marked to clear itself, and the kernel lets it go once the unmounted filesystem's
    last reference is dropped, which may be a moment after umount returns (seen under load).
    """
    wait_for(lambda: not _attached(root), timeout=30, what=f"no loop device under {root}")


def _write_until_full(out: BinaryIO) -> None:
    for _ in range(48):  # 3 MiB, past a 2 MiB image
        out.write(bytes(64 << 10))
        out.flush()


@pytest.mark.parametrize(
    ("quantity", "size"),
    [("1Gi", 1 << 30), ("10Mi", 10 << 20), ("1M", 1 << 20), ("1500Ki", 2 << 20), ("1", 1 << 20)],
)
def test_image_size_is_the_claim_rounded_up_to_whole_mib(quantity: str, size: int) -> None:
    assert diskimages.volume_bytes(quantity) == size


def test_a_volume_holds_its_size_survives_a_remount_and_is_removed_without_trace(
    root: Path,
) -> None:
    volume = root / "ns_claim_uid"
    diskimages.create(volume, 2 << 20)
    diskimages.create(volume, 2 << 20)  # again, as after a crash before the PV was created
    assert os.path.ismount(volume)
    assert volume.stat().st_mode & 0o777 == 0o777

    with (
        pytest.raises(OSError, match="No space left on device") as full,
        (volume / "fill").open("wb") as out,
    ):
        _write_until_full(out)
    assert full.value.errno == errno.ENOSPC
    kept = (volume / "fill").stat().st_size
    assert 0 < kept <= 2 << 20

    # The node stopped (or was killed): nothing stays mounted or attached...
    assert diskimages.unmount_all(root) == [volume]
    assert not os.path.ismount(volume)
    _wait_detached(root)
    # ...and the data is there again once it mounts the image.
    diskimages.ensure_mounted(volume)
    assert (volume / "fill").stat().st_size == kept

    diskimages.remove(volume)
    diskimages.remove(volume)  # again, as after a crash before the PV was deleted
    assert list(root.iterdir()) == []
    _wait_detached(root)


def test_a_missing_image_is_not_mounted_over_its_bare_mount_point(root: Path) -> None:
    volume = root / "lost"
    volume.mkdir()
    with pytest.raises(diskimages.DiskImageError, match="does not exist"):
        diskimages.ensure_mounted(volume)
    assert not os.path.ismount(volume)


def test_cluster_down_unmounts_what_a_killed_node_left(root: Path) -> None:
    cluster = LocalCluster(root / "state", with_node=False)
    volume = cluster.layout.data_root / "volumes" / "ns_claim_uid"
    volume.parent.mkdir(parents=True)
    diskimages.create(volume, 1 << 20)

    cluster.down()

    assert not os.path.ismount(volume)
    _wait_detached(root)
    assert not cluster.layout.data_root.exists()
