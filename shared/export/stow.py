"""Send DICOM objects to a DICOMweb STOW-RS service in one request (PS3.18 10.5, Store Transaction).

The request is ``multipart/related; type="application/dicom"`` with one Part 10 object per part; the
response's Store Instances Response Module (PS3.18 10.5.3, Table 10.5.3-3) lists the refused objects in
FailedSOPSequence (0008,1198) with a Failure Reason (0008,1197). Errors name counts, HTTP statuses and
failure reasons, never a UID or anything else from the objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import httpx

from shared.export.cstore import ExportError
from shared.export.destinations import StowDestination

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
_FAILED_SOP_SEQUENCE = "00081198"
_FAILURE_REASON = "00081197"


def multipart_related(parts: Sequence[bytes], *, media_type: str = DICOM) -> tuple[bytes, str]:
    """A ``multipart/related`` body of ``parts`` (RFC 2387), each of ``media_type``, and its boundary."""
    boundary = uuid.uuid4().hex
    head = f"--{boundary}\r\nContent-Type: {media_type}\r\n\r\n".encode()
    return b"".join(head + part + b"\r\n" for part in parts) + f"--{boundary}--\r\n".encode(), boundary


def send_stow(
    *, destination: StowDestination, objects: Sequence[bytes], authorization: str = "", timeout_seconds: float = 30.0
) -> int:
    """POST every DICOM Part 10 object in ``objects`` to ``destination``; returns how many were stored.

    Raises :class:`ExportError` when the service cannot be reached, answers an HTTP error, or lists
    any object in FailedSOPSequence.
    """
    body, boundary = multipart_related(objects)
    headers = {"Content-Type": f'multipart/related; type="{DICOM}"; boundary={boundary}', "Accept": DICOM_JSON}
    if authorization:
        headers["Authorization"] = authorization
    try:
        response = httpx.post(destination.url, content=body, headers=headers, timeout=timeout_seconds)
    except httpx.HTTPError as error:
        raise ExportError(f"{_where(destination)}: {type(error).__name__} (unreachable, or no answer in {timeout_seconds:g} s)") from None
    failures = _failure_reasons(response)
    if response.status_code >= 300 or failures:
        reasons = ", ".join(sorted({f"0x{code:04X}" for code in failures if code is not None})) or "none given"
        detail = f"{len(failures)} of {len(objects)} objects refused (FailureReason {reasons})" if failures else "refused"
        raise ExportError(f"{_where(destination)}: HTTP {response.status_code}, {detail}")
    return len(objects)


def _failure_reasons(response: httpx.Response) -> list[int | None]:
    """The Failure Reason of each FailedSOPSequence item of a DICOM JSON response (none when not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return []
    body = body[0] if isinstance(body, list) and body else body
    items = body.get(_FAILED_SOP_SEQUENCE, {}).get("Value", []) if isinstance(body, dict) else []
    reasons = []
    for item in items:
        values = item.get(_FAILURE_REASON, {}).get("Value", []) if isinstance(item, dict) else []
        reasons.append(int(values[0]) if values and isinstance(values[0], int) else None)
    return reasons


def _where(destination: StowDestination) -> str:
    # Scheme, host and path: a query string may carry a token.
    return destination.url.split("?", 1)[0]
