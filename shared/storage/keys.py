"""Object keys: ``/``-separated relative paths that are safe on a file system and on S3.

A key is 1..1024 UTF-8 bytes (S3's limit), has no empty, ``.`` or ``..`` segment, no segment starting
with ``.`` (names starting with a dot are reserved for the stores' own bookkeeping), no leading or
trailing ``/``, no backslash and no control character. Prefixes are keys or the empty string, with an
optional trailing ``/``.
"""

from __future__ import annotations

import re

MAX_KEY_BYTES = 1024
_FORBIDDEN_CHARACTER = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters and the backslash


def validate_key(key: str) -> str:
    """Return ``key`` unchanged, or raise :class:`ValueError` saying what is wrong with it."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"object key longer than {MAX_KEY_BYTES} bytes")
    if _FORBIDDEN_CHARACTER.search(key):
        raise ValueError(f"object key {key!r} contains a backslash or a control character")
    for segment in key.split("/"):
        if not segment:
            raise ValueError(f"object key {key!r} is absolute or has an empty segment")
        if segment.startswith("."):
            raise ValueError(f"object key {key!r} has a segment starting with '.' ('.', '..' or reserved)")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` unchanged if it is empty or a valid key with an optional trailing ``/``."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix
