"""The streaming loop shared by the multipart receivers (form-data uploads, STOW-RS related parts).

It counts bytes as they arrive and answers 413 as soon as the limit is passed, so no request body is
ever held whole in memory or accepted past ``max_bytes``; the collector decides where parts go.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from gateway.problems import ProblemError

CALLBACKS = (
    "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
    "on_headers_finished", "on_part_data", "on_part_end",
)


class PartCollector(Protocol):
    """python-multipart callbacks (any subset of :data:`CALLBACKS`) plus ``close()``."""

    def close(self) -> None: ...


def too_large(limit: int) -> ProblemError:
    """The 413 problem for a body over ``limit`` bytes."""
    return ProblemError(
        413, "payload-too-large", f"The upload exceeds the limit of {limit} bytes.", reason="upload_too_large",
        limit_bytes=limit,
    )


def require_boundary(options: dict[bytes, bytes]) -> bytes:
    """The multipart boundary from parsed Content-Type options; 400 problem when absent."""
    boundary = options.get(b"boundary")
    if not boundary:
        raise ProblemError(400, "bad-request", "The multipart boundary is missing.", reason="malformed_multipart")
    return boundary.strip(b'"')


async def stream_multipart(request: Request, *, boundary: bytes, collector: PartCollector, max_bytes: int) -> None:
    """Feed the request body through a multipart parser into ``collector``; 400/413 problems."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    callbacks = {name: getattr(collector, name) for name in CALLBACKS if hasattr(collector, name)}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise ProblemError(400, "bad-request", "The multipart body is malformed.", reason="malformed_multipart") from error
    finally:
        collector.close()
