"""``/dicomweb``: STOW-RS ``POST /dicomweb/studies[/{study}]``, QIDO-RS ``GET /dicomweb/studies``, ``.../series``."""

from __future__ import annotations

import json
import logging
import shutil
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.audit.service import record_event
from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep
from gateway.dicomweb import qido
from gateway.dicomweb.dicom_json import DICOM_JSON
from gateway.dicomweb.multipart import ReceivedPart, receive_related
from gateway.dicomweb.stow import StowOutcome, store_instances
from gateway.dimse.intake import InstanceIntake
from gateway.problems import ProblemError, problems
from gateway.scans.upload import upload_workdir
from shared.completeness import AutoAnalyzeRule

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

MAX_RESULTS = 1000
Reader = Annotated[Principal, authorized(Permission.read)]
Limit = Annotated[int, Query(ge=1, le=MAX_RESULTS, description="Most results returned (PS3.18 8.3.4.4).")]
Offset = Annotated[int, Query(ge=0, description="Results skipped (PS3.18 8.3.4.4).")]

_STOW_BODY = {
    "required": True,
    "description": 'DICOM Part 10 instances, one per part: `multipart/related; type="application/dicom"; boundary=...`.',
    "content": {"multipart/related": {"schema": {"type": "string", "format": "binary"}}},
}
_STOW_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every instance stored (or already stored).", "content": {DICOM_JSON: {"schema": {"type": "object"}}}},
    202: {"description": "Some instances stored, others failed: see FailedSOPSequence (0008,1198).",
          "content": {DICOM_JSON: {"schema": {"type": "object"}}}},
    409: {"description": "No instance could be stored: see FailedSOPSequence (0008,1198) (a DICOM JSON body)."},
    **problems(400, 401, 403, 413, 415, 503),
}
_QIDO_DESCRIPTION = (
    "Matching keys are query parameters named by DICOM keyword or tag (e.g. `PatientID=123`, "
    "`00100020=123`, `StudyDate=20240101-20240131`, `PatientName=DOE*`); `includefield` and "
    "`fuzzymatching` are accepted and ignored (every attribute we hold is returned)."
)
_QIDO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Matching results in the DICOM JSON Model (an empty array when none match).",
          "content": {DICOM_JSON: {"schema": {"type": "array", "items": {"type": "object"}}}}},
    **problems(400, 401, 403, 422),
}


@router.post("/studies", response_class=Response, responses=_STOW_RESPONSES, openapi_extra={"requestBody": _STOW_BODY},
             summary="Store instances (STOW-RS)")
async def stow_studies(request: Request, principal: Annotated[Principal, authorized(Permission.upload)]) -> Response:
    """Store DICOM instances of any studies (CT image storage SOP classes only)."""
    return await _stow(request, principal, study_uid=None)


@router.post("/studies/{study}", response_class=Response, responses={**_STOW_RESPONSES, **problems(404)},
             openapi_extra={"requestBody": _STOW_BODY}, summary="Store instances of one study (STOW-RS)")
async def stow_study(study: str, request: Request, principal: Annotated[Principal, authorized(Permission.upload)]) -> Response:
    """Store DICOM instances of the study ``study``; instances of another study fail with reason 0xA901."""
    return await _stow(request, principal, study_uid=study)


@router.get("/studies", response_class=Response, responses=_QIDO_RESPONSES, summary="Search studies (QIDO-RS)",
            description=_QIDO_DESCRIPTION)
def search_studies(request: Request, session: SessionDep, _reader: Reader, limit: Limit = 100, offset: Offset = 0) -> Response:
    """Studies received, newest first."""
    filters = _filters(request, qido.STUDY_KEYS)
    return _dicom_json(qido.search_studies(session=session, filters=filters, limit=limit, offset=offset))


@router.get("/studies/{study}/series", response_class=Response, responses={**_QIDO_RESPONSES, **problems(404)},
            summary="Search the series of a study (QIDO-RS)", description=_QIDO_DESCRIPTION)
def search_study_series(
    study: str, request: Request, session: SessionDep, _reader: Reader, limit: Limit = 100, offset: Offset = 0
) -> Response:
    """Series of one study (an empty array for a study we do not hold)."""
    filters = _filters(request, qido.SERIES_KEYS)
    return _dicom_json(qido.search_series(session=session, filters=filters, study_uid=study, limit=limit, offset=offset))


@router.get("/series", response_class=Response, responses=_QIDO_RESPONSES, summary="Search series (QIDO-RS)",
            description=_QIDO_DESCRIPTION)
def search_all_series(request: Request, session: SessionDep, _reader: Reader, limit: Limit = 100, offset: Offset = 0) -> Response:
    """Series of every study, with their study's attributes."""
    filters = _filters(request, {**qido.STUDY_KEYS, **qido.SERIES_KEYS})
    return _dicom_json(qido.search_series(session=session, filters=filters, study_uid=None, limit=limit, offset=offset))


async def _stow(request: Request, principal: Principal, *, study_uid: str | None) -> Response:
    state = request.app.state
    workdir = await run_in_threadpool(upload_workdir, request)
    try:
        parts = await receive_related(request, workdir=workdir, max_bytes=state.settings.max_upload_bytes)
        outcome = await run_in_threadpool(_store_and_audit, request, principal, parts, study_uid)
    finally:
        await run_in_threadpool(shutil.rmtree, workdir, True)
    logger.info("stow-rs: %d stored, %d failed, %d series", len(outcome.referenced), len(outcome.failed), len(outcome.series_ids))
    return Response(json.dumps(outcome.body()), status_code=outcome.status_code, media_type=DICOM_JSON)


def _store_and_audit(request: Request, principal: Principal, parts: list[ReceivedPart], study_uid: str | None) -> StowOutcome:
    state = request.app.state
    intake = InstanceIntake(session_factory=state.session_factory, store=state.store, source="stowrs")
    outcome = store_instances(
        intake=intake, session_factory=state.session_factory, parts=parts, study_uid=study_uid,
        rule=AutoAnalyzeRule.from_settings(state.settings),
    )
    with state.session_factory() as session:
        record_event(session=session, api_key_id=principal.key_id, action="dicomweb.stow", resource_type="scan",
                     resource_id=None, detail={"stored": len(outcome.referenced), "failed": len(outcome.failed),
                                               "scan_ids": sorted(outcome.series_ids)})
        session.commit()
    return outcome


def _filters(request: Request, allowed: dict[str, Any]) -> list[Any]:
    try:
        return qido.parse_filters(list(request.query_params.multi_items()), allowed=allowed)
    except qido.QueryError as error:
        raise ProblemError(400, "bad-request", str(error), reason="unsupported_query") from None


def _dicom_json(results: list[dict[str, Any]]) -> Response:
    return Response(json.dumps(results), media_type=DICOM_JSON)
