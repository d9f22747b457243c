"""A local-folder object store: one file per object, written atomically; a sidecar only when needed.

Layout under ``root``: the object ``a/b`` is the file ``root/a/b``. It is written to a hidden temp file
beside it (``root/a/.b.<random>.tmp``: same folder, so the rename never crosses a file system) and
moved into place with ``os.replace``, so a reader sees the old object or the new one, never half of one.

Per object, the write costs one file creation, its writes, one ``fdatasync`` and one rename: the C-STORE
receiver writes an object per received instance and waits on this before it answers. So the size,
SHA-256 and content type that ``put`` returns (callers that need the checksum, such as the database's
instance rows, keep it from there) are written to a sidecar ``root/.meta/a/b.json`` only when the
content type is not the one the key's suffix implies (``.dcm``: ``application/dicom``, see
:data:`SUFFIX_CONTENT_TYPES`). Without a sidecar, or with one that no longer matches its file (a crash
between the two renames, a concurrent writer), ``stat`` computes the checksum from the file.

Unlike S3, a key cannot be both an object and a "folder" of other keys (``a`` and ``a/b``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from shared.storage.base import ObjectInfo, ObjectNotFound, ObjectStore, StorageError
from shared.storage.keys import validate_key, validate_prefix

CHUNK_BYTES = 1 << 20
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# The content type an object's key implies: objects stored with it need no sidecar.
SUFFIX_CONTENT_TYPES = {
    ".dcm": "application/dicom",
    ".json": "application/json",
    ".zip": "application/zip",
    ".png": "image/png",
    ".pdf": "application/pdf",
    ".npz": DEFAULT_CONTENT_TYPE,
}


class LocalStore(ObjectStore):
    """Objects as files under ``root`` (embedded mode, tests, single-host deployments)."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self._meta_root = self.root / ".meta"
        self._tmp_root = self.root / ".tmp"
        self._fsync = fsync  # flush each object to disk before it becomes visible (crash safety)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def put_stream(self, key: str, stream: BinaryIO, *, length: int = -1, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        return self._put(key, lambda out: self._write(out, stream), length=length, content_type=content_type)

    def put_bytes(self, key: str, data: bytes, *, content_type: str = DEFAULT_CONTENT_TYPE, sha256: str | None = None) -> ObjectInfo:
        # One write of the caller's buffer (no chunk copies), and no second hash of a digest the caller
        # already has: the C-STORE receiver hashes each data set while it arrives.
        def write(out: BinaryIO) -> tuple[str, int]:
            out.write(data)
            self._sync(out)
            return sha256 or hashlib.sha256(data).hexdigest(), len(data)

        return self._put(key, write, length=len(data), content_type=content_type)

    def _put(self, key: str, write: Callable[[BinaryIO], tuple[str, int]], *, length: int, content_type: str) -> ObjectInfo:
        """Write the object with ``write`` (returning its SHA-256 and size) to a temp file, then move it into place."""
        path = self._path(key)
        with _os_errors(key):
            tmp_path, out = _create_beside(path)
            try:
                with out:
                    digest, size = write(out)
                if length >= 0 and size != length:
                    raise ValueError(f"stream for {key!r} had {size} bytes, expected {length}")
                info = ObjectInfo(key=key, size=size, sha256=digest, content_type=content_type)
                if content_type != implied_content_type(key):
                    self._write_meta(self._meta_path(key), info, os.stat(tmp_path))
                os.replace(tmp_path, path)  # same folder: it exists, holding the temp file
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_path)
                raise
        return info

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as error:
            raise StorageError(f"cannot read {key!r}: {error}") from error

    def download(self, key: str, path: str) -> None:
        with _os_errors(key):
            super().download(key, path)

    def stat(self, key: str) -> ObjectInfo:
        path, meta_path = self._path(key), self._meta_path(key)
        try:
            file_stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not os.path.isfile(path):
            raise ObjectNotFound(key)
        with contextlib.suppress(OSError, ValueError, KeyError):
            meta = json.loads(meta_path.read_text())
            if _identity(file_stat) == (meta["size"], meta["mtime_ns"], meta["ino"]):
                return ObjectInfo(key=key, size=meta["size"], sha256=meta["sha256"], content_type=meta["content_type"])
        with _os_errors(key), open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            file_stat = os.fstat(handle.fileno())
        # A sidecar that does not match (or none): the file is what counts, its content type the implied one.
        return ObjectInfo(key=key, size=file_stat.st_size, sha256=digest, content_type=implied_content_type(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        directory = self.root / prefix.rpartition("/")[0]
        keys: list[tuple[str, int]] = []
        with _os_errors(prefix):
            for dirpath, dirnames, filenames in os.walk(directory):
                # Names starting with '.' are never keys: the sidecars, temp files and downloads' parts.
                dirnames[:] = [name for name in dirnames if not name.startswith(".")]
                relative = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    key = name if relative == "." else f"{relative}/{name}"
                    if not name.startswith(".") and key.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):  # deleted while listing
                            keys.append((key, os.stat(os.path.join(dirpath, name)).st_size))
        for key, size in sorted(keys):
            yield ObjectInfo(key=key, size=size)

    def delete(self, key: str) -> None:
        path, meta_path = self._path(key), self._meta_path(key)
        with _os_errors(key):
            for file in (path, meta_path):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.unlink(file)
            self._prune(path.parent, self.root)
            self._prune(meta_path.parent, self._meta_root)

    def check(self) -> None:
        with _os_errors("(probe)"):
            tmp = self._new_tmp()
            os.unlink(tmp)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta_root / f"{validate_key(key)}.json"

    def _new_tmp(self) -> str:
        self._tmp_root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp_root)
        os.close(fd)
        return tmp

    def _write(self, out: BinaryIO, stream: BinaryIO) -> tuple[str, int]:
        """Copy ``stream`` to ``out`` in chunks (flushed to disk when the store syncs); returns its SHA-256 and size."""
        digest, size = hashlib.sha256(), 0
        while chunk := stream.read(CHUNK_BYTES):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        self._sync(out)
        return digest.hexdigest(), size

    def _sync(self, out: BinaryIO) -> None:
        """Flush what was written to disk when the store syncs."""
        if self._fsync:
            out.flush()
            # The data and the size are what a reader needs after a crash; timestamps are not worth a second flush.
            _fdatasync(out.fileno())

    def _write_meta(self, meta_path: Path, info: ObjectInfo, file_stat: os.stat_result) -> None:
        size, mtime_ns, ino = _identity(file_stat)
        meta = {"size": size, "sha256": info.sha256, "content_type": info.content_type, "mtime_ns": mtime_ns, "ino": ino}
        tmp = self._new_tmp()
        Path(tmp).write_text(json.dumps(meta))
        _replace(tmp, meta_path)

    @staticmethod
    def _prune(directory: Path, stop: Path) -> None:
        """Remove ``directory`` and its parents up to ``stop`` while they are empty."""
        while directory != stop and stop in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty (or gone): stop climbing
                return
            directory = directory.parent


def implied_content_type(key: str) -> str:
    """The content type an object's key implies by its suffix (:data:`SUFFIX_CONTENT_TYPES`), else the default."""
    return SUFFIX_CONTENT_TYPES.get(os.path.splitext(key)[1].lower(), DEFAULT_CONTENT_TYPE)


def _identity(file_stat: os.stat_result) -> tuple[int, int, int]:
    """What ties a sidecar to one version of its file: size, modification time, inode (a rename brings a new one)."""
    return file_stat.st_size, file_stat.st_mtime_ns, file_stat.st_ino


def _create_beside(path: Path) -> tuple[str, BinaryIO]:
    """A new hidden temp file in ``path``'s folder (created when missing), open for writing."""
    for _attempt in range(5):
        tmp_path = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp_path, open(tmp_path, "xb")
        except FileNotFoundError:  # first object of its folder, or a concurrent delete pruned it
            path.parent.mkdir(parents=True, exist_ok=True)
    return tmp_path, open(tmp_path, "xb")


def _fdatasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)  # macOS has no fdatasync


def _replace(source: str, target: Path) -> None:
    """``os.replace`` that creates the target's folder, also when a concurrent delete pruned it."""
    for _attempt in range(5):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
            return
        except FileNotFoundError:
            if not os.path.exists(source):
                raise
    os.replace(source, target)


@contextlib.contextmanager
def _os_errors(key: str) -> Iterator[None]:
    """Report file-system failures (disk full, permissions) as :class:`StorageError`."""
    try:
        yield
    except OSError as error:
        raise StorageError(f"local store failed on {key!r}: {error}") from error
