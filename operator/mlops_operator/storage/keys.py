"""Store keys: relative, slash-separated paths that can never leave the store's root.

Keys may come from a custom resource, so they are checked as untrusted input:
no absolute paths, no ``..``, no URL schemes, no backslashes or control
characters. A key that passes :func:`check_key` names a place under the root
on every fsspec backend.
"""

from __future__ import annotations

import re

__all__ = ["InvalidKeyError", "check_key", "join_key"]

_MAX_KEY_LENGTH = 1024
# One segment: printable characters except the path separators and the characters that
# shells, URLs or Windows give a meaning to.
_SEGMENT = re.compile(r"^[^/\\\x00-\x1f\x7f:*?\"<>|]+$")


class InvalidKeyError(ValueError):
    """A store key that is malformed or would escape the store's root."""


def check_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative key, else raise :class:`InvalidKeyError`."""
    if not key:
        raise InvalidKeyError("a store key must not be empty")
    if len(key) > _MAX_KEY_LENGTH:
        raise InvalidKeyError(f"store key is {len(key)} characters long; at most {_MAX_KEY_LENGTH}")
    if key.startswith("/"):
        raise InvalidKeyError(
            f"store key {key!r} is absolute; expected a path relative to the root"
        )
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKeyError(
                f"store key {key!r} has an empty, '.' or '..' segment; expected plain names"
                " separated by single slashes"
            )
        if not _SEGMENT.match(segment):
            raise InvalidKeyError(
                f"store key {key!r} contains a character not allowed in a key"
                " (backslash, colon, control or wildcard characters)"
            )
    return key


def join_key(*parts: str) -> str:
    """Join key segments with ``/`` and check the result."""
    return check_key("/".join(parts))
