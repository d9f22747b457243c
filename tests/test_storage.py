"""The object stores' behaviour, one suite run against the local folder and against a real S3 server.

The S3 server is moto's standalone server (``ThreadedMotoServer``) in a child process on a free
loopback port, reached over real HTTP; being out of process keeps its memory out of our measurements.
"""

from __future__ import annotations

import hashlib
import io
import random
import socket
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import moto_s3_server
from shared.config import Settings
from shared.storage import ObjectNotFound, ObjectStore, StorageError
from shared.storage.factory import store_from_settings
from shared.storage.local import LocalStore
from shared.storage.s3 import S3Store

MIB = 1 << 20
@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server running in a child process for the whole session."""
    with moto_s3_server() as endpoint:
        yield endpoint


def make_s3_store(endpoint: str, **options: object) -> S3Store:
    """A store on a fresh bucket (created by the store itself), 5 MiB parts so tests go multipart quickly."""
    options = {"part_size": 5 * MIB, "parallel_uploads": 2, **options}
    return S3Store(endpoint=endpoint, access_key="testing", secret_key="testing", bucket=f"t-{uuid.uuid4().hex[:20]}", **options)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return make_s3_store(request.getfixturevalue("s3_endpoint"))


class GeneratedStream(io.RawIOBase):
    """A read-only file object over a generator of chunks: holds one chunk, knows no length."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = next(self._chunks, b"")
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def pseudo_random_chunks(seed: int, total: int, chunk: int = MIB) -> Iterator[bytes]:
    """``total`` reproducible incompressible bytes, ``chunk`` at a time."""
    rng = random.Random(seed)
    for start in range(0, total, chunk):
        yield rng.randbytes(min(chunk, total - start))


def sha256_of(chunks: Iterator[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for piece in chunks:
        digest.update(piece)
        size += len(piece)
    return digest.hexdigest(), size


def test_bytes_round_trip_with_checksum_and_content_type(store: ObjectStore) -> None:
    data = b"DICM" + bytes(range(256)) * 10
    info = store.put_bytes("studies/1.2.3/series/4.5/inst-1.dcm", data, content_type="application/dicom")

    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert store.get_bytes("studies/1.2.3/series/4.5/inst-1.dcm") == data
    stat = store.stat("studies/1.2.3/series/4.5/inst-1.dcm")
    assert (stat.size, stat.sha256, stat.content_type) == (len(data), info.sha256, "application/dicom")
    assert store.exists("studies/1.2.3/series/4.5/inst-1.dcm")


def test_overwrite_replaces_content_and_checksum(store: ObjectStore) -> None:
    store.put_bytes("reports/r.json", b'{"v": 1}')
    info = store.put_bytes("reports/r.json", b'{"v": 2, "longer": true}', content_type="application/json")

    assert store.get_bytes("reports/r.json") == b'{"v": 2, "longer": true}'
    assert store.stat("reports/r.json") == info
    assert [i.key for i in store.list("reports/")] == ["reports/r.json"]


def test_large_object_of_unknown_length_streams_in_bounded_memory(store: ObjectStore) -> None:
    total = 64 * MIB  # well above what S3Store keeps in memory: (parallel_uploads + 2) 5 MiB parts
    expected_sha, _ = sha256_of(pseudo_random_chunks(7, total))

    tracemalloc.start()
    try:
        info = store.put_stream("big/volume.raw", GeneratedStream(pseudo_random_chunks(7, total)))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read_sha, read_size = sha256_of(store.iter_chunks("big/volume.raw"))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (info.size, info.sha256) == (total, expected_sha)
    assert (read_size, read_sha) == (total, expected_sha)
    assert store.stat("big/volume.raw").sha256 == expected_sha
    # Neither direction holds the object: writes keep a few parts at most, reads one chunk.
    assert put_peak < total / 2, f"put held {put_peak / MIB:.1f} MiB of a {total / MIB:.0f} MiB object"
    assert read_peak < total / 8, f"read held {read_peak / MIB:.1f} MiB of a {total / MIB:.0f} MiB object"
    assert [i.key for i in store.list("")] == ["big/volume.raw"]  # no temporary upload left visible


def test_download_writes_the_object_to_a_file(store: ObjectStore, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(6 * MIB + 17)  # more than one S3 part
    store.put_stream("dl/x.bin", io.BytesIO(data), length=len(data))
    target = tmp_path / "out" / "x.bin"
    target.parent.mkdir()

    store.download("dl/x.bin", str(target))

    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]  # no partial file left


def test_stream_shorter_than_declared_length_is_refused_and_not_stored(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="expected 10"):
        store.put_stream("short/x", io.BytesIO(b"12345"), length=10)
    assert not store.exists("short/x")


def test_failed_write_leaves_the_previous_object(store: ObjectStore) -> None:
    store.put_bytes("keep/x", b"old")

    def failing_chunks() -> Iterator[bytes]:
        yield from pseudo_random_chunks(1, 7 * MIB)
        raise OSError("client went away")

    with pytest.raises((OSError, StorageError)):
        store.put_stream("keep/x", GeneratedStream(failing_chunks()))

    assert store.get_bytes("keep/x") == b"old"
    assert store.stat("keep/x").sha256 == hashlib.sha256(b"old").hexdigest()
    assert [i.key for i in store.list("")] == ["keep/x"]


def test_list_by_prefix_is_sorted_and_exact(store: ObjectStore) -> None:
    keys = ["s/b/2", "s/a/1", "s/a/10", "s/a/9", "t/x", "s-other", "s/a/1x/y"]
    for index, key in enumerate(random.Random(0).sample(keys, len(keys))):
        store.put_bytes(key, b"x" * index)

    assert [i.key for i in store.list("s/")] == ["s/a/1", "s/a/10", "s/a/1x/y", "s/a/9", "s/b/2"]
    assert [i.key for i in store.list("s/a/1")] == ["s/a/1", "s/a/10", "s/a/1x/y"]
    assert [i.key for i in store.list("s")] == ["s-other", "s/a/1", "s/a/10", "s/a/1x/y", "s/a/9", "s/b/2"]
    assert [i.key for i in store.list("")] == sorted(keys)
    assert list(store.list("nothing/")) == []
    sizes = {i.key: i.size for i in store.list("")}
    assert sizes == {key: store.stat(key).size for key in keys}


def test_delete_and_delete_prefix(store: ObjectStore) -> None:
    for key in ["scan/1/a", "scan/1/b", "scan/1/c/d", "scan/10/a", "scan/2/a"]:
        store.put_bytes(key, key.encode())

    store.delete("scan/1/a")
    store.delete("scan/1/a")  # absent: no error
    assert not store.exists("scan/1/a")
    assert store.delete_prefix("scan/1/") == 2

    assert [i.key for i in store.list("scan/")] == ["scan/10/a", "scan/2/a"]
    assert store.delete_prefix("scan/") == 2
    assert list(store.list("")) == []


def test_missing_objects_raise_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("present/a", b"a")
    for missing in ["absent", "present/b", "present/a/deeper"]:
        assert not store.exists(missing)
        with pytest.raises(ObjectNotFound):
            store.stat(missing)
        with pytest.raises(ObjectNotFound):
            store.get_bytes(missing)
        with pytest.raises(ObjectNotFound):
            store.download(missing, str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../x", "a/../../b", "a/./b", "a//b", "a/", ".meta/a.json", "a/.tmp", "a\\b", "a\x00b", "x" * 1025]
)
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    for operation in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError):
            operation()
    assert list(store.list("")) == []


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", ".meta/"])
def test_unsafe_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        list(store.list(prefix))


def test_check_passes_on_a_working_store(store: ObjectStore) -> None:
    store.check()
    assert list(store.list("")) == []  # the probe is gone


def test_unreachable_s3_raises_storage_error_not_not_found() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = make_s3_store(f"127.0.0.1:{port}", retries=0, timeout_seconds=2)

    for operation in (store.check, lambda: store.stat("a"), lambda: store.put_bytes("a", b"x"), lambda: list(store.list(""))):
        with pytest.raises(StorageError) as raised:
            operation()
        assert not isinstance(raised.value, ObjectNotFound)


def test_unwritable_local_root_fails_check(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StorageError):
        LocalStore(tmp_path / "file" / "objects").check()


def test_local_store_recomputes_a_stale_checksum(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("a/b", b"first")
    (tmp_path / "a" / "b").write_bytes(b"changed behind the store's back")

    assert store.stat("a/b").sha256 == hashlib.sha256(b"changed behind the store's back").hexdigest()


def test_local_store_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("scans/1/instances/a.dcm", b"a")
    store.delete_prefix("scans/")

    assert not (tmp_path / "scans").exists()
    assert not (tmp_path / ".meta" / "scans").exists()


def test_local_store_content_type_survives_overwrites_with_and_without_a_sidecar(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("studies/1/x.dcm", b"odd", content_type="application/octet-stream")  # not the implied type
    store.put_bytes("studies/1/x.dcm", b"dicom bytes", content_type="application/dicom")  # the implied type

    stat = store.stat("studies/1/x.dcm")
    assert (stat.size, stat.sha256, stat.content_type) == (11, hashlib.sha256(b"dicom bytes").hexdigest(), "application/dicom")
    assert [path.name for path in (tmp_path / "studies" / "1").iterdir()] == ["x.dcm"]  # no temp file left beside it


def test_store_from_settings_builds_the_named_backend(tmp_path: Path, s3_endpoint: str) -> None:
    local = store_from_settings(Settings(_env_file=None, data_dir=tmp_path, storage_backend="local"))
    local.put_bytes("k", b"v")
    assert isinstance(local, LocalStore) and (tmp_path / "objects" / "k").read_bytes() == b"v"

    s3 = store_from_settings(
        Settings(
            _env_file=None, storage_backend="s3", s3_endpoint=s3_endpoint, s3_bucket="factory-test",
            s3_access_key="testing", s3_secret_key="testing",
        )
    )
    s3.put_bytes("k", b"v")
    assert isinstance(s3, S3Store) and s3.get_bytes("k") == b"v"

    with pytest.raises(ValueError, match="CTRIAGE_STORAGE_BACKEND"):
        store_from_settings(Settings(_env_file=None, storage_backend="ftp"))
