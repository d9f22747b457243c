"""Media types and response documentation of the clinical-output endpoints."""

from __future__ import annotations

from typing import Any, Literal

DICOM = "application/dicom"
PNG = "image/png"
PDF = "application/pdf"
KEY_IMAGES_TYPE = 'multipart/related; type="application/dicom"'
"""DICOMweb's multipart form of several instances (PS3.18 8.6.1.2): one ``application/dicom`` part
per key image, so a DICOMweb client reads it as it reads a WADO-RS retrieve."""

Window = Literal["lung", "mediastinal"]


def binary_response(media_type: str, description: str, *, cached: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry of a 200 carrying bytes of ``media_type`` (``cached``: with ETag and Cache-Control)."""
    response: dict[str, Any] = {"description": description, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}
    if cached:
        response["headers"] = {
            "ETag": {"description": "Validator of this render; send it back in If-None-Match.", "schema": {"type": "string"}},
            "Cache-Control": {"description": "private, no-cache: revalidate, never in a shared cache.", "schema": {"type": "string"}},
        }
    return {200: response}
