"""Where DICOM objects come from: files, folders, zip archives, raw bytes, or lists of these.

:func:`iter_dicom_sources` flattens any of them into ``(name, bytes | Path)`` pairs. Files on disk are
yielded as paths, so a caller reads only what it needs (headers first, pixels of one series later);
zip members are decompressed one at a time. Archives are checked before anything is extracted:
member names must stay inside the archive (no ``..``, no absolute paths), and member count, total
uncompressed size and compression ratio are bounded (zip bombs).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Union

from shared.dicom.errors import LoadError, Reason

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Iterable["Source"]]
"""Anything :func:`iter_dicom_sources` accepts."""

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; end of central directory (empty zip)
_DICM_OFFSET = 128  # DICOM PS3.10 7.1: 128-byte preamble, then "DICM"
_RATIO_CHECK_MIN_BYTES = 1 << 20  # smaller archives cannot be bombs worth refusing


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on what one zip archive may expand to."""

    max_members: int = 20000
    max_total_bytes: int = 16 * 1024**3
    max_ratio: float = 200.0

    @classmethod
    def from_settings(cls) -> ZipLimits:
        """The limits configured in :mod:`shared.config` (``CTRIAGE_MAX_ZIP_*``)."""
        from shared.config import get_settings

        settings = get_settings()
        return cls(max_members=settings.max_zip_members, max_ratio=settings.max_zip_ratio)


def iter_dicom_sources(
    source: Source, *, limits: ZipLimits | None = None
) -> Iterator[tuple[str, bytes | Path]]:
    """Yield ``(name, bytes | Path)`` for every candidate object in ``source``; empty input raises ``EMPTY_INPUT``."""
    limits = limits or ZipLimits.from_settings()
    count = 0
    for item in _iter_any(source, limits):
        count += 1
        yield item
    if count == 0:
        raise LoadError(Reason.EMPTY_INPUT, "no files or bytes were given")


def is_zip_bytes(data: bytes | memoryview) -> bool:
    """True for the bytes of a zip archive (and not for a DICOM file whose preamble looks like one)."""
    head = bytes(data[: _DICM_OFFSET + 4])
    return head[:4] in _ZIP_MAGIC and head[_DICM_OFFSET:] != b"DICM"


def _iter_any(source: Source, limits: ZipLimits) -> Iterator[tuple[str, bytes | Path]]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from _iter_bytes("<bytes>", bytes(source), limits)
    elif isinstance(source, (str, os.PathLike)):
        yield from _iter_path(Path(source), limits)
    elif hasattr(source, "read"):
        yield from _iter_bytes(getattr(source, "name", "<stream>"), source.read(), limits)  # type: ignore[union-attr]
    elif isinstance(source, Iterable):
        for item in source:
            yield from _iter_any(item, limits)
    else:
        raise TypeError(f"cannot read DICOM from a {type(source).__name__}")


def _iter_bytes(name: str, data: bytes, limits: ZipLimits) -> Iterator[tuple[str, bytes | Path]]:
    if not data:
        return
    if is_zip_bytes(data):
        yield from _iter_zip(name, io.BytesIO(data), limits)
    else:
        yield name, data


def _iter_path(path: Path, limits: ZipLimits) -> Iterator[tuple[str, bytes | Path]]:
    if path.is_dir():
        yield from _iter_folder(path, limits)
    elif not path.exists():
        raise FileNotFoundError(path)
    elif _looks_like_zip_file(path):
        with open(path, "rb") as stream:
            yield from _iter_zip(str(path), stream, limits)
    elif path.stat().st_size > 0:
        yield str(path), path


def _iter_folder(folder: Path, limits: ZipLimits) -> Iterator[tuple[str, bytes | Path]]:
    # Sorted walk so names (and warnings that count them) are reproducible; order does not matter
    # to the reader, which sorts slices by position.
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for file_name in sorted(files):
            path = Path(root) / file_name
            if path.suffix.lower() == ".zip":
                with open(path, "rb") as stream:
                    yield from _iter_zip(str(path), stream, limits)
            elif path.is_file() and path.stat().st_size > 0:
                yield str(path), path


def _looks_like_zip_file(path: Path) -> bool:
    with open(path, "rb") as stream:
        return is_zip_bytes(stream.read(_DICM_OFFSET + 4))


def _iter_zip(name: str, stream: BinaryIO, limits: ZipLimits) -> Iterator[tuple[str, bytes | Path]]:
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise LoadError(Reason.NOT_DICOM, f"unreadable zip archive: {exc}") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        _check_zip(members, limits)
        for info in members:
            if info.file_size == 0 or _is_resource_fork(info.filename):
                continue
            try:
                # ZipExtFile never returns more than the declared file_size, which _check_zip bounded.
                data = archive.read(info)
            except RuntimeError as exc:  # encrypted member
                raise LoadError(Reason.UNSAFE_ARCHIVE, f"cannot read an encrypted member: {exc}") from None
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise LoadError(Reason.TRUNCATED, f"damaged zip member: {exc}") from None
            yield f"{name}:{info.filename}", data


def _check_zip(members: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    if len(members) > limits.max_members:
        raise LoadError(
            Reason.UNSAFE_ARCHIVE, f"zip has {len(members)} members (limit {limits.max_members})",
            members=len(members), limit=limits.max_members,
        )
    for info in members:
        if not _is_safe_member_name(info.filename):
            raise LoadError(Reason.UNSAFE_ARCHIVE, "zip member path escapes the archive (absolute or '..')")
    total = sum(info.file_size for info in members)
    if total > limits.max_total_bytes:
        raise LoadError(
            Reason.UNSAFE_ARCHIVE, f"zip expands to {total} bytes (limit {limits.max_total_bytes})",
            uncompressed_bytes=total, limit=limits.max_total_bytes,
        )
    compressed = sum(info.compress_size for info in members)
    if total > _RATIO_CHECK_MIN_BYTES and total > limits.max_ratio * max(compressed, 1):
        ratio = total / max(compressed, 1)
        raise LoadError(
            Reason.UNSAFE_ARCHIVE, f"zip compression ratio {ratio:.0f} exceeds {limits.max_ratio:.0f}",
            ratio=round(ratio, 1), limit=limits.max_ratio,
        )


def _is_safe_member_name(name: str) -> bool:
    normalised = name.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    return not (
        normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":") or ".." in parts
    )


def _is_resource_fork(name: str) -> bool:
    # macOS Finder adds __MACOSX/._name copies of extended attributes to zips it makes.
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("._")
