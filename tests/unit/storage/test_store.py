"""The artifact store.

Aspects: round trips on a local directory and on a non-local fsspec backend;
content addressing (a wrong digest is refused, a present digest is kept); a
write that fails halfway (a broken source, a full filesystem) leaves nothing
under the final name and no temporary file, and its error is the one reported
even when the temporary cannot be removed; keys can never leave the root
(malformed keys, symlinks); listing.
"""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_operator.localcluster import diskimages
from mlops_operator.storage import (
    ArtifactStore,
    InvalidKeyError,
    StorageError,
    check_key,
    join_key,
    sha256_bytes,
)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "store"))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_and_read_back_on_a_local_directory(store: ArtifactStore, tmp_path: Path) -> None:
    stored = store.put_bytes("models/iris/model.onnx", b"onnx bytes")

    assert stored.sha256 == sha256_bytes(b"onnx bytes")
    assert stored.size == len(b"onnx bytes")
    assert stored.uri == f"file://{tmp_path}/store/models/iris/model.onnx"
    assert store.local_path(stored.key) == tmp_path / "store/models/iris/model.onnx"
    assert store.read_bytes(stored.key, sha256=stored.sha256) == b"onnx bytes"
    assert store.sha256(stored.key) == stored.sha256
    assert _files(tmp_path / "store") == ["models/iris/model.onnx"]


def test_a_file_url_root_is_the_same_directory(tmp_path: Path) -> None:
    ArtifactStore(f"file://{tmp_path}").put_bytes("a/b", b"1")

    assert ArtifactStore(str(tmp_path)).read_bytes("a/b") == b"1"


def test_put_file_streams_a_local_file(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 17))

    stored = store.put_file("datasets/big.bin", source)

    assert stored.sha256 == sha256_bytes(source.read_bytes())
    assert store.read_bytes("datasets/big.bin") == source.read_bytes()


def test_put_file_of_a_missing_source_says_so(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        store.put_file("x", tmp_path / "missing")


def test_a_non_local_backend_works_the_same_way() -> None:
    store = ArtifactStore(f"memory://store-{uuid.uuid4().hex}")

    stored = store.put_bytes("models/m/card.json", b"{}")

    assert stored.uri.startswith("memory://")
    assert store.local_path("models/m/card.json") is None
    assert store.read_bytes("models/m/card.json") == b"{}"
    assert store.keys("models") == ["models/m/card.json"]


def test_content_addressed_write_refuses_other_content(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match=r"expected 0+$"):
        store.put_bytes("models/m/model.onnx", b"data", sha256="0" * 64)

    assert not store.exists("models/m/model.onnx")
    assert _files(tmp_path / "store") == []


def test_content_addressed_write_keeps_what_is_already_there(
    store: ArtifactStore, tmp_path: Path
) -> None:
    digest = sha256_bytes(b"data")
    store.put_bytes("datasets/d", b"data", sha256=digest)
    inode = (tmp_path / "store/datasets/d").stat().st_ino

    again = store.put_bytes("datasets/d", b"data", sha256=digest)

    assert again.sha256 == digest
    assert (tmp_path / "store/datasets/d").stat().st_ino == inode


def test_a_plain_write_replaces_the_previous_content(store: ArtifactStore) -> None:
    store.put_bytes("card.json", b"old")
    store.put_bytes("card.json", b"new")

    assert store.read_bytes("card.json") == b"new"


class _FailingSource(io.RawIOBase):
    """A source that yields some data, then fails like a broken network stream."""

    def __init__(self) -> None:
        self._calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._calls += 1
        if self._calls > 2:
            raise OSError("connection reset")
        return b"x" * 1000


def test_a_write_failing_halfway_leaves_nothing_behind(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes("models/m/model.onnx", b"previous")

    with pytest.raises(StorageError, match="connection reset"):
        store.put_stream("models/m/model.onnx", _FailingSource())

    assert store.read_bytes("models/m/model.onnx") == b"previous"
    assert _files(tmp_path / "store") == ["models/m/model.onnx"]


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB ext4 filesystem, as the local node gives a 1Mi claim."""
    reason = diskimages.unavailable_reason(tmp_path)
    if reason is not None:
        pytest.skip(f"no loop-mounted ext4 here: {reason}")
    volume = tmp_path / "volume"
    diskimages.create(volume, 1 << 20)
    yield volume
    diskimages.remove(volume)


def test_a_full_store_refuses_the_write_and_keeps_nothing_of_it(small_volume: Path) -> None:
    store = ArtifactStore(str(small_volume))

    with pytest.raises(StorageError, match="No space left on device"):
        store.put_bytes("models/m/model.onnx", os.urandom(2 << 20))

    assert _files(small_volume) == []


def test_a_temporary_that_cannot_be_removed_does_not_hide_the_error(small_volume: Path) -> None:
    folder = small_volume / "models" / "m"
    folder.mkdir(parents=True)
    # Append-only: files can be created in it but, even by root, not removed.
    subprocess.run(["chattr", "+a", str(folder)], check=True)
    try:
        with pytest.raises(StorageError, match="No space left on device"):
            ArtifactStore(str(small_volume)).put_bytes("models/m/model.onnx", os.urandom(2 << 20))
        assert [p.name.startswith(".") for p in folder.iterdir()] == [True]
    finally:
        subprocess.run(["chattr", "-a", str(folder)], check=True)


def test_reading_a_missing_or_altered_artifact_fails_clearly(
    store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match="no artifact missing"):
        store.read_bytes("missing")
    store.put_bytes("a", b"content")
    (tmp_path / "store/a").write_bytes(b"tampered")

    with pytest.raises(StorageError, match=r"has sha256 \w+, expected"):
        store.read_bytes("a", sha256=sha256_bytes(b"content"))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "models/../../outside",
        "models/./x",
        "models//x",
        "models/",
        "models\\..\\x",
        "s3://bucket/key",
        "C:/x",
        "a\x00b",
        "a\nb",
        "x" * 1025,
    ],
)
def test_keys_that_could_escape_or_confuse_are_refused(store: ArtifactStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)
    with pytest.raises(InvalidKeyError):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.read_bytes(key)


def test_join_key_checks_the_joined_key() -> None:
    assert join_key("models", "iris", "0" * 64) == f"models/iris/{'0' * 64}"
    with pytest.raises(InvalidKeyError):
        join_key("models", "..", "x")
    with pytest.raises(InvalidKeyError):
        join_key("/etc", "passwd")


def test_a_symlink_inside_the_root_cannot_lead_outside(
    store: ArtifactStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "store").mkdir()
    (tmp_path / "store/link").symlink_to(outside)

    with pytest.raises(InvalidKeyError, match="outside the store's root"):
        store.put_bytes("link/file", b"x")
    assert list(outside.iterdir()) == []


def test_keys_lists_artifacts_but_not_temporary_files(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes("models/b/2", b"2")
    store.put_bytes("models/a/1", b"1")
    (tmp_path / "store/models/a/.1.deadbeef.tmp").write_bytes(b"partial")

    assert store.keys("models") == ["models/a/1", "models/b/2"]
    assert store.keys("nothing-here") == []


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="cannot open artifact store 'nosuchscheme://x'"):
        ArtifactStore("nosuchscheme://x")
