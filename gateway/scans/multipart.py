"""Streaming ``multipart/form-data`` receiver: file parts go straight to temp files, never whole in memory.

Starlette's ``request.form()`` also spools, but it cannot stop a request at a size limit while it
streams; this parser counts bytes as they arrive and answers 413 as soon as the limit is passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.multipart import parse_options_header

from gateway.multipart_stream import require_boundary, stream_multipart
from gateway.problems import ProblemError
from shared.ingest import UploadedPart

MAX_FIELD_BYTES = 64 * 1024
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]")


@dataclass
class ReceivedForm:
    """The files and text fields of one multipart request."""

    files: list[UploadedPart] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def safe_filename(raw: str, *, fallback: str) -> str:
    """A client filename reduced to a safe base name (no folders, no odd characters)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME.sub("_", name).strip(" .")[:200]
    return name or fallback


class _FormCollector:
    """python-multipart callbacks writing file parts to numbered files in ``workdir``."""

    def __init__(self, *, workdir: Path, file_field: str, text_fields: frozenset[str]) -> None:
        self.workdir = workdir
        self.file_field = file_field
        self.text_fields = text_fields
        self.form = ReceivedForm()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._name = ""
        self._filename: str | None = None
        self._content_type: str | None = None
        self._handle: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._text = bytearray()

    def on_part_begin(self) -> None:
        self._headers = {}
        self._size = 0
        self._text = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in options:
            raise ProblemError(400, "bad-request", "A multipart part lacks its form-data name.", reason="malformed_multipart")
        self._name = options[b"name"].decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        self._content_type = self._headers.get("content-type")
        if self._filename is not None:
            if self._name != self.file_field:
                raise ProblemError(
                    422, "validation-error", f"Send files in the form field '{self.file_field}'.", reason="invalid_request"
                )
            # Temp files are numbered: a client's filename never becomes a path on this machine.
            self._path = self.workdir / f"part-{len(self.form.files):05d}"
            self._handle = open(self._path, "wb")  # noqa: SIM115 - closed in on_part_end

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = memoryview(data)[start:end]
        self._size += len(chunk)
        if self._handle is not None:
            # A buffered write to the page cache: microseconds per chunk, not worth a thread hop.
            self._handle.write(chunk)
        else:
            if self._size > MAX_FIELD_BYTES:
                raise ProblemError(413, "payload-too-large", f"Form field '{self._name}' is too long.",
                                   reason="field_too_large")
            self._text += chunk

    def on_part_end(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            assert self._path is not None and self._filename is not None
            if self._size == 0 and not self._filename:
                self._path.unlink()  # an empty file input: a browser form sends one with no file chosen
                return
            index = len(self.form.files)
            self.form.files.append(
                UploadedPart(
                    filename=safe_filename(self._filename, fallback=f"file-{index:05d}"),
                    path=self._path,
                    size=self._size,
                    content_type=self._content_type,
                )
            )
        elif self._name in self.text_fields:
            self.form.fields[self._name] = self._text.decode("utf-8", "replace")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


async def receive_form(
    request: Request,
    *,
    workdir: Path,
    max_bytes: int,
    file_field: str = "files",
    text_fields: frozenset[str] = frozenset({"patient_id", "description"}),
) -> ReceivedForm:
    """Stream a multipart body into ``workdir``; 415/400/413/422 problems for what cannot be accepted."""
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data":
        raise ProblemError(
            415, "unsupported-media-type", "Send the files as multipart/form-data.", reason="unsupported_media_type"
        )
    collector = _FormCollector(workdir=workdir, file_field=file_field, text_fields=text_fields)
    await stream_multipart(request, boundary=require_boundary(options), collector=collector, max_bytes=max_bytes)
    return collector.form
