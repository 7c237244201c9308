"""One artifact store root, reached through fsspec.

Every write goes to a temporary name in the destination's folder, is read back
and checked against the sha256 of what was meant to be written, and only then
renamed to its final name. A failed write removes its temporary (a store that
refuses even that keeps it); a crash at any point leaves at most a dot-prefixed
``*.tmp`` file behind, never a half-written artifact under a final name. On a
local filesystem the data is fsynced before the rename, which is atomic there;
on object stores the final object appears only once the copy is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mlops_operator.storage.keys import InvalidKeyError, check_key

__all__ = ["ArtifactStore", "StorageError", "StoredObject", "sha256_bytes"]

_CHUNK = 1 << 20


class StorageError(RuntimeError):
    """An artifact could not be written, read or verified."""


@dataclass(frozen=True)
class StoredObject:
    """Where an artifact landed and what it holds."""

    key: str
    uri: str
    sha256: str
    size: int


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


class ArtifactStore:
    """Artifacts under one root URI (a directory, ``file://``, ``s3://``, ``memory://``...)."""

    def __init__(self, root: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        """Open the store at ``root``; ``storage_options`` go to the fsspec filesystem."""
        try:
            fs, path = fsspec.core.url_to_fs(root, **dict(storage_options or {}))
        except (ImportError, ValueError) as error:
            raise StorageError(f"cannot open artifact store {root!r}: {error}") from error
        self._fs: Any = fs
        self._root: str = path.rstrip("/") or "/"
        self._local = isinstance(fs, LocalFileSystem)

    @property
    def root_uri(self) -> str:
        """The root as a full URI (``file:///...`` for a local directory)."""
        return str(self._fs.unstrip_protocol(self._root))

    def uri(self, key: str) -> str:
        """The full URI of ``key``."""
        return str(self._fs.unstrip_protocol(self._path(key)))

    def local_path(self, key: str) -> Path | None:
        """The filesystem path of ``key`` when the store is a local directory, else None."""
        return Path(self._path(key)) if self._local else None

    def exists(self, key: str) -> bool:
        """Whether an artifact is stored under ``key``."""
        return bool(self._fs.exists(self._path(key)))

    def put_bytes(self, key: str, data: bytes, *, sha256: str | None = None) -> StoredObject:
        """Store ``data`` under ``key``, replacing what was there.

        With ``sha256`` the write is content-addressed: data with another digest is
        refused, and an existing object with that digest is kept as it is.
        """
        return self._write(key, [data], expected=sha256)

    def put_stream(self, key: str, source: BinaryIO, *, sha256: str | None = None) -> StoredObject:
        """Store what ``source`` yields until its end under ``key`` (see :meth:`put_bytes`)."""
        return self._write(key, _chunks(source), expected=sha256)

    def put_file(self, key: str, source: Path, *, sha256: str | None = None) -> StoredObject:
        """Store the local file ``source`` under ``key`` (see :meth:`put_bytes`)."""
        try:
            with source.open("rb") as handle:
                return self.put_stream(key, handle, sha256=sha256)
        except FileNotFoundError as error:
            raise StorageError(f"cannot store {key}: {source} does not exist") from error

    def read_bytes(self, key: str, *, sha256: str | None = None) -> bytes:
        """The content of ``key``; with ``sha256``, verified against it."""
        path = self._path(key)
        try:
            data: bytes = self._fs.cat_file(path)
        except FileNotFoundError as error:
            raise StorageError(f"no artifact {key} in {self.root_uri}") from error
        if sha256 is not None and (actual := sha256_bytes(data)) != sha256:
            raise StorageError(f"artifact {key} has sha256 {actual}, expected {sha256}")
        return data

    def sha256(self, key: str) -> str:
        """The sha256 of the stored content of ``key``, read back from the store."""
        return self._digest(self._path(key))

    def keys(self, prefix: str) -> list[str]:
        """Keys of the artifacts under the folder ``prefix``, sorted; temporary files excluded."""
        base = self._path(prefix)
        # Object-store filesystems (s3fs) cache listings per instance, and fsspec shares one
        # instance per set of options across the process: a listing must show the store now.
        self._fs.invalidate_cache(base)
        if not self._fs.isdir(base):
            return []
        found = (posixpath.relpath(path, self._root) for path in self._fs.find(base))
        return sorted(key for key in found if not posixpath.basename(key).startswith("."))

    def _path(self, key: str) -> str:
        path = f"{self._root.rstrip('/')}/{check_key(key)}"
        if self._local:
            # A symlink planted inside the root must not lead a key outside of it.
            real_root = os.path.realpath(self._root)
            real = os.path.realpath(path)
            if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
                raise InvalidKeyError(f"store key {key!r} resolves outside the store's root")
        return path

    def _digest(self, path: str) -> str:
        digest = hashlib.sha256()
        try:
            with self._fs.open(path, "rb") as handle:
                for chunk in _chunks(handle):
                    digest.update(chunk)
        except FileNotFoundError as error:
            raise StorageError(f"no artifact at {self._fs.unstrip_protocol(path)}") from error
        return digest.hexdigest()

    def _write(self, key: str, chunks: Iterable[bytes], *, expected: str | None) -> StoredObject:
        final = self._path(key)
        if expected is not None and self._fs.exists(final) and self._digest(final) == expected:
            return StoredObject(key, self.uri(key), expected, int(self._fs.size(final)))
        parent, name = posixpath.split(final)
        temporary = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            self._fs.makedirs(parent, exist_ok=True)
            digest, size = hashlib.sha256(), 0
            with self._fs.open(temporary, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                if self._local:
                    out.flush()
                    os.fsync(out.fileno())
            written = digest.hexdigest()
            if expected is not None and written != expected:
                raise StorageError(
                    f"refusing to store {key}: its sha256 is {written}, expected {expected}"
                )
            if (read_back := self._digest(temporary)) != written:
                raise StorageError(
                    f"{key} was corrupted while writing: wrote sha256 {written}, read back {read_back}"
                )
            self._fs.mv(temporary, final)
        except OSError as error:
            raise StorageError(f"cannot write {key} to {self.root_uri}: {error}") from error
        finally:
            self._discard(temporary)
        return StoredObject(key, self.uri(key), written, size)

    def _discard(self, temporary: str) -> None:
        # A store that refused the write may refuse the removal too (a filesystem turned
        # read-only): the temporary then stays, dot-prefixed, and the write's own error is
        # the one reported, not this one.
        with contextlib.suppress(OSError):
            if self._fs.exists(temporary):
                self._fs.rm(temporary)
