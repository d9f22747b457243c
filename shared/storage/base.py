"""The object-store interface: one protocol, a local-folder and an S3/MinIO implementation.

Keys are ``/``-separated relative paths (no leading ``/``, no ``..``). Reads and writes stream: no
method needs a whole study in memory. Every write returns the object's size and SHA-256.
"""

from __future__ import annotations

import abc
import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


class StorageError(Exception):
    """A storage operation failed for a reason that may pass (network, server): callers may retry."""


class ObjectNotFound(StorageError):
    """The key does not exist."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows of one object."""

    key: str
    size: int
    sha256: str | None = None
    content_type: str | None = None


class ObjectStore(abc.ABC):
    """Streaming object storage."""

    @abc.abstractmethod
    def put_stream(self, key: str, stream: BinaryIO, *, length: int = -1, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store ``stream`` (read to its end) under ``key``; returns size and SHA-256."""

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream", sha256: str | None = None
    ) -> ObjectInfo:
        """Store a small in-memory object; ``sha256``: the caller's digest of ``data``, which a store may use instead of hashing."""
        return self.put_stream(key, io.BytesIO(data), length=len(data), content_type=content_type)

    def put_file(self, key: str, path: str, *, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store a local file."""
        with open(path, "rb") as handle:
            return self.put_stream(key, handle, length=os.path.getsize(path), content_type=content_type)

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the object; the caller closes it."""

    def iter_chunks(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes in chunks (for streaming HTTP responses)."""
        with self.open(key) as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def get_bytes(self, key: str) -> bytes:
        """The whole object (only for small objects)."""
        with self.open(key) as handle:
            return handle.read()

    def download(self, key: str, path: str) -> None:
        """Copy the object to a local file (workers read studies from local disk); atomic: never a partial file."""
        target = os.fspath(path)
        folder, name = os.path.split(target)
        with self.open(key) as source:
            fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size (and SHA-256 when known); raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object (no error if absent)."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; returns how many."""
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    @abc.abstractmethod
    def check(self) -> None:
        """Raise :class:`StorageError` unless the store is reachable and writable (for /readyz)."""
