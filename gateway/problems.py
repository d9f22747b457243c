"""RFC 7807 (RFC 9457) problem details: every error the gateway returns is ``application/problem+json``.

A problem's ``type`` is a stable URN per kind of error (``urn:ctriage:problem:<slug>``) and, when the
error comes from the DICOM loader or the pipeline, ``reason`` carries the stable code of
:class:`shared.dicom.errors.Reason` verbatim, so clients can branch on it.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError as DatabaseError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.storage.base import ObjectNotFound, StorageError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:ctriage:problem:"

logger = logging.getLogger(__name__)


class Problem(BaseModel):
    """An RFC 7807 problem document, with ctriage's extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(..., description="Stable URI of the kind of problem, e.g. urn:ctriage:problem:not-found.")
    title: str = Field(..., description="Short human summary of the kind of problem.")
    status: int = Field(..., description="The HTTP status code.")
    detail: str | None = Field(None, description="What went wrong in this occurrence (no PHI).")
    instance: str | None = Field(None, description="The request path.")
    reason: str | None = Field(None, description="Stable machine code (e.g. the DICOM loader's `not_ct`).")
    errors: list[dict[str, Any]] | None = Field(None, description="Validation errors: loc, msg, type.")


class ProblemError(Exception):
    """Raise to answer with a problem: ``slug`` names the type, ``reason`` the stable code."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str | None = None,
        *,
        reason: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or slug)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.reason = reason
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


def problem_response(
    *,
    status: int,
    slug: str,
    request: Request | None = None,
    detail: str | None = None,
    reason: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    if reason:
        body["reason"] = reason
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


# Problem slugs of the HTTP errors Starlette raises itself (routing, method, body parsing).
_HTTP_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    503: "unavailable",
}


async def _problem_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return problem_response(
        status=error.status,
        slug=error.slug,
        request=request,
        detail=error.detail,
        reason=error.reason,
        title=error.title,
        headers=error.headers,
        **error.extra,
    )


async def _http_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else None
    if detail == HTTPStatus(error.status_code).phrase:
        detail = None
    return problem_response(
        status=error.status_code,
        slug=_HTTP_SLUGS.get(error.status_code, "http-error"),
        request=request,
        detail=detail,
        headers=dict(error.headers) if error.headers else None,
    )


async def _validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # Only location, message and type: pydantic's "input" may echo PHI the client sent.
    errors = [
        {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))}
        for item in error.errors()
    ]
    return problem_response(
        status=422,
        slug="validation-error",
        request=request,
        detail="The request does not match the schema.",
        reason="invalid_request",
        errors=errors,
    )


def _unavailable(slug_reason: str, what: str):  # type: ignore[no-untyped-def]
    async def handler(request: Request, error: Exception) -> JSONResponse:
        logger.warning("%s unavailable on %s %s: %s", what, request.method, request.url.path, type(error).__name__)
        return problem_response(
            status=503, slug="unavailable", request=request, detail=f"The {what} is unavailable; try again.",
            reason=slug_reason, headers={"Retry-After": "5"},
        )

    return handler


async def _missing_object_handler(request: Request, error: Exception) -> JSONResponse:
    logger.error("object missing from storage on %s %s", request.method, request.url.path)
    return problem_response(
        status=404, slug="not-found", request=request, detail="A stored object of this resource is missing.",
        reason="object_missing",
    )


async def _unhandled_error_handler(request: Request, error: Exception) -> JSONResponse:
    # The traceback goes to the log (type and location only through logging's exc_info); the client
    # learns nothing about internals.
    logger.error("unhandled %s on %s %s", type(error).__name__, request.method, request.url.path, exc_info=error)
    return problem_response(
        status=500, slug="internal-error", request=request, detail="An unexpected error occurred.", reason="internal_error"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to a problem+json response."""
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StorageError, _unavailable("storage_unavailable", "object store"))
    app.add_exception_handler(ObjectNotFound, _missing_object_handler)
    app.add_exception_handler(DatabaseError, _unavailable("database_unavailable", "database"))
    app.add_exception_handler(BrokerError, _unavailable("broker_unavailable", "task queue"))
    app.add_exception_handler(Exception, _unhandled_error_handler)


_DESCRIPTIONS = {
    400: "Malformed request.",
    401: "Missing or invalid API key.",
    403: "The API key's role does not allow this.",
    404: "No such resource.",
    409: "Conflicts with the resource's current state.",
    413: "The upload exceeds the size limit.",
    415: "Unsupported content type.",
    422: "Invalid request, or an upload the DICOM loader refuses (see `reason`).",
    503: "A backing service (database, broker, storage) is unavailable.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses (their schema is set in gateway.openapi)."""
    return {status: {"description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase)} for status in statuses}
