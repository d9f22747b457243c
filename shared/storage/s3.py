"""An S3/MinIO object store over the ``minio`` client.

Writes stream: an object that fits in one part (``part_size``) is read into memory, hashed and sent in
one PUT carrying its SHA-256 as user metadata (``x-amz-meta-sha256``). A larger one, or one of unknown
length, is streamed as a multipart upload to a temporary key under ``.uploads/`` while it is hashed,
then copied server-side to its key with the checksum in its metadata, so the key only ever shows a
complete object with its checksum. About ``(parallel_uploads + 2) * part_size`` bytes are in memory
at most, whatever the object's size.

Network and server failures raise :class:`StorageError` (callers may retry); a missing key raises
:class:`ObjectNotFound`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import uuid
from collections.abc import Iterator
from typing import BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError

from shared.storage.base import ObjectInfo, ObjectNotFound, ObjectStore, StorageError
from shared.storage.keys import validate_key, validate_prefix

MIB = 1 << 20
MIN_PART_BYTES = 5 * MIB  # S3's smallest multipart part
SHA256_META = "x-amz-meta-sha256"
UPLOADS_PREFIX = ".uploads/"  # temporary keys of multipart uploads; never valid user keys
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"})
DELETE_BATCH = 1000  # S3 DeleteObjects limit


class S3Store(ObjectStore):
    """Objects in one bucket of an S3-compatible server (MinIO in deployments); the bucket is created on first write."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        part_size: int = 16 * MIB,
        parallel_uploads: int = 2,
        timeout_seconds: float = 60.0,
        retries: int = 3,
    ) -> None:
        if part_size < MIN_PART_BYTES:
            raise ValueError(f"part_size must be at least {MIN_PART_BYTES} bytes (S3's minimum)")
        self.bucket = bucket
        self.endpoint = endpoint
        self._part_size = part_size
        self._parallel_uploads = parallel_uploads
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout_seconds, 10.0), read=timeout_seconds),
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http)
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    def put_stream(self, key: str, stream: BinaryIO, *, length: int = -1, content_type: str = "application/octet-stream") -> ObjectInfo:
        validate_key(key)
        with _s3_errors(key):
            self._ensure_bucket()
            reader = _HashingReader(stream)
            whole = reader.read_whole(self._part_size)
            if whole is None:
                return self._put_multipart(key, reader, length=length, content_type=content_type)
            _check_length(key, reader.size, length)
            info = ObjectInfo(key=key, size=reader.size, sha256=reader.hexdigest(), content_type=content_type)
            self._client.put_object(
                self.bucket, key, io.BytesIO(whole), len(whole), content_type=content_type, metadata={SHA256_META: info.sha256}
            )
            return info

    def _put_multipart(self, key: str, reader: _HashingReader, *, length: int, content_type: str) -> ObjectInfo:
        upload_key = f"{UPLOADS_PREFIX}{uuid.uuid4()}"
        try:
            self._client.put_object(
                self.bucket, upload_key, reader, -1, content_type=content_type,  # type: ignore[arg-type]
                part_size=self._part_size, num_parallel_uploads=self._parallel_uploads,
            )
            _check_length(key, reader.size, length)
            info = ObjectInfo(key=key, size=reader.size, sha256=reader.hexdigest(), content_type=content_type)
            self._client.copy_object(
                self.bucket, key, CopySource(self.bucket, upload_key),
                metadata={"Content-Type": content_type, SHA256_META: info.sha256}, metadata_directive=REPLACE,
            )
        finally:
            with contextlib.suppress(S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError, OSError):
                self._client.remove_object(self.bucket, upload_key)
        return info

    def open(self, key: str) -> BinaryIO:
        validate_key(key)
        with _s3_errors(key):
            response = self._client.get_object(self.bucket, key)
        return io.BufferedReader(_ResponseReader(response, key), buffer_size=MIB)  # type: ignore[return-value]

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with _s3_errors(key):
            found = self._client.stat_object(self.bucket, key)
        metadata = found.metadata or {}
        return ObjectInfo(key=key, size=found.size or 0, sha256=metadata.get(SHA256_META), content_type=found.content_type)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        try:
            with _s3_errors(prefix):
                # S3 lists keys in UTF-8 byte order, which is the order of Python's str comparison.
                for found in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                    name = found.object_name or ""
                    if not found.is_dir and not name.startswith("."):
                        yield ObjectInfo(key=name, size=found.size or 0)
        except ObjectNotFound:  # no bucket yet: nothing stored
            return

    def delete(self, key: str) -> None:
        validate_key(key)
        with contextlib.suppress(ObjectNotFound), _s3_errors(key):  # no bucket yet: nothing to delete
            self._client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` with batched DeleteObjects requests; returns how many."""
        keys = [info.key for info in self.list(prefix)]
        with _s3_errors(prefix):
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [DeleteObject(key) for key in keys[start : start + DELETE_BATCH]]
                failures = list(self._client.remove_objects(self.bucket, batch))
                if failures:
                    raise StorageError(f"could not delete {len(failures)} objects under {prefix!r}: {failures[0].message}")
        return len(keys)

    def check(self) -> None:
        probe = f".probe/{uuid.uuid4()}"
        with _s3_errors(probe):
            self._ensure_bucket()
            self._client.put_object(self.bucket, probe, io.BytesIO(b"ok"), 2)
            self._client.remove_object(self.bucket, probe)

    def _ensure_bucket(self) -> None:
        """Create the bucket once per process if it is missing (MinIO's compose service also creates it)."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if not self._bucket_ready:
                if not self._client.bucket_exists(self.bucket):
                    try:
                        self._client.make_bucket(self.bucket)
                    except S3Error as error:  # another process created it meanwhile
                        if error.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                            raise
                self._bucket_ready = True


def _check_length(key: str, size: int, length: int) -> None:
    if length >= 0 and size != length:
        raise ValueError(f"stream for {key!r} had {size} bytes, expected {length}")


class _HashingReader:
    """Reads a stream in full-sized pieces (``read(n)`` returns ``n`` bytes unless at the end), hashing them."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self._pending = b""  # read ahead by read_whole, served first by read
        self.size = 0

    def read_whole(self, limit: int) -> bytes | None:
        """The entire stream if it is shorter than ``limit`` bytes; otherwise ``None``, and what was read stays pending."""
        self._pending = self._read_stream(limit)
        if len(self._pending) < limit:
            whole, self._pending = self._pending, b""
            return whole
        return None

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("S3Store reads streams in bounded pieces")
        if not self._pending:
            return self._read_stream(size)
        head, self._pending = self._pending[:size], self._pending[size:]
        return head + self._read_stream(size - len(head)) if len(head) < size else head

    def _read_stream(self, size: int) -> bytes:
        pieces, wanted = [], size
        while wanted > 0:
            piece = self._stream.read(wanted)
            if not piece:
                break
            pieces.append(bytes(piece))
            wanted -= len(piece)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._digest.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _ResponseReader(io.RawIOBase):
    """A GET response body as a raw stream; closing it returns the connection to the pool."""

    def __init__(self, response: urllib3.BaseHTTPResponse, key: str) -> None:
        self._response = response
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        with _s3_errors(self._key):
            return self._response.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


@contextlib.contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """Translate the minio client's and urllib3's exceptions into the store's."""
    try:
        yield
    except S3Error as error:
        if error.code in NOT_FOUND_CODES:
            raise ObjectNotFound(key) from None
        raise StorageError(f"S3 refused an operation on {key!r}: {error.code}") from error
    except (ServerError, InvalidResponseError) as error:
        raise StorageError(f"S3 server error on {key!r}: {error}") from error
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
        raise StorageError(f"S3 unreachable for {key!r}: {error}") from error
