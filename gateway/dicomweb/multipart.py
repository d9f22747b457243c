"""Streaming ``multipart/related`` receiver (RFC 2387) for STOW-RS: each part goes to a temp file as it arrives.

PS3.18 10.5.1.2: a STOW-RS request body is ``multipart/related; type="application/dicom"``, one
DICOM Part 10 object per part. Only that form is taken (not the metadata + bulk data form, whose
``type`` is ``application/dicom+json`` or ``+xml``): the instance is stored exactly as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.multipart import parse_options_header

from gateway.multipart_stream import require_boundary, stream_multipart
from gateway.problems import ProblemError

DICOM_MEDIA_TYPE = b"application/dicom"


@dataclass(frozen=True)
class ReceivedPart:
    """One body part, spooled to ``path``."""

    index: int
    path: Path
    size: int
    content_type: str


class _PartCollector:
    """python-multipart callbacks writing each part to a numbered file in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.parts: list[ReceivedPart] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._handle: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0

    def on_part_begin(self) -> None:
        self._headers = {}
        self._size = 0
        self._path = self.workdir / f"part-{len(self.parts):05d}.dcm"
        self._handle = open(self._path, "wb")  # noqa: SIM115 - closed in on_part_end

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_name, self._header_value = bytearray(), bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        assert self._handle is not None
        self._handle.write(memoryview(data)[start:end])
        self._size += end - start

    def on_part_end(self) -> None:
        assert self._handle is not None and self._path is not None
        self._handle.close()
        self._handle = None
        content_type = self._headers.get("content-type", DICOM_MEDIA_TYPE.decode())
        self.parts.append(ReceivedPart(index=len(self.parts), path=self._path, size=self._size, content_type=content_type))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


async def receive_related(request: Request, *, workdir: Path, max_bytes: int) -> list[ReceivedPart]:
    """Stream a STOW-RS body into ``workdir``; 415/400/413 problems for what cannot be taken."""
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    root_type = options.get(b"type", DICOM_MEDIA_TYPE).strip(b'"').lower()
    if media_type != b"multipart/related" or root_type != DICOM_MEDIA_TYPE:
        raise ProblemError(
            415, "unsupported-media-type",
            'Send the instances as multipart/related; type="application/dicom" (PS3.18 10.5.1.2).',
            reason="unsupported_media_type",
        )
    collector = _PartCollector(workdir)
    await stream_multipart(request, boundary=require_boundary(options), collector=collector, max_bytes=max_bytes)
    if not collector.parts:
        raise ProblemError(400, "bad-request", "The request holds no instance.", reason="no_instances")
    return collector.parts
