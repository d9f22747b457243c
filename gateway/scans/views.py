"""``/api/scans``: upload, list, read, annotate, download, analyze, report, status, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from gateway.audit.service import record_event
from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep, StoreDep
from gateway.pagination import PageParams
from gateway.problems import ProblemError, problems
from gateway.scans import service
from gateway.scans.analysis import (
    REPORT_RESPONSES,
    RunProgress,
    report_response,
    scan_progress,
    stale_after,
    start_analysis,
)
from gateway.scans.models import AnalysisAccepted, ScanOut, ScanPage, ScanUpdate
from gateway.scans.upload import UPLOAD_REQUEST_BODY, receive_and_ingest
from shared.db.models import Series

router = APIRouter(prefix="/api/scans", tags=["scans"])

Reader = Annotated[Principal, authorized(Permission.read)]


def scan_or_404(session: SessionDep, scan_id: str) -> Series:
    """The scan, or a 404 problem."""
    series = service.get_scan(session=session, scan_id=scan_id)
    if series is None:
        raise ProblemError(404, "not-found", "No scan with this id.", reason="scan_not_found")
    return series


@router.get("", response_model=ScanPage, responses=problems(401, 403, 422), summary="List scans")
def list_scans(
    session: SessionDep,
    page: PageParams,
    _reader: Reader,
    patient_id: Annotated[str | None, Query(description="Only scans of this patient record.")] = None,
    study_uid: Annotated[str | None, Query(description="Only scans of this StudyInstanceUID.")] = None,
    source: Annotated[str | None, Query(description="Only scans that arrived this way (upload, predict, ...).")] = None,
) -> ScanPage:
    """Scans, newest first, filtered by patient, study or source."""
    rows, total = service.list_scans(
        session=session, limit=page.limit, offset=page.offset, patient_id=patient_id, study_uid=study_uid, source=source
    )
    return ScanPage(items=[ScanOut(**service.to_api(s)) for s in rows], total=total, limit=page.limit, offset=page.offset)


@router.post(
    "",
    status_code=201,
    response_model=ScanOut,
    responses=problems(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    summary="Upload a CT series",
)
async def upload_scan(
    request: Request, principal: Annotated[Principal, authorized(Permission.upload)]
) -> JSONResponse:
    """Upload DICOM files or a zip of one study (multipart field `files`, repeatable).

    The DICOM loader validates the upload; its refusals are 422 problems whose `reason` is the
    loader's code (`not_dicom`, `not_one_study`, `not_ct`, `no_ct_series`, `unsafe_archive`, ...).
    """
    scan = await receive_and_ingest(request, principal=principal, source="upload")
    return JSONResponse(scan.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/scans/{scan.id}"})


@router.get("/{scan_id}", response_model=ScanOut, responses=problems(401, 403, 404), summary="Get a scan")
def get_scan(scan_id: str, session: SessionDep, _reader: Reader) -> ScanOut:
    """One scan."""
    return ScanOut(**service.to_api(scan_or_404(session, scan_id)))


@router.put(
    "/{scan_id}", response_model=ScanOut, responses=problems(401, 403, 404, 422), summary="Set a scan's description"
)
def update_scan(
    scan_id: str,
    body: ScanUpdate,
    session: SessionDep,
    principal: Annotated[Principal, authorized(Permission.annotate)],
) -> ScanOut:
    """Replace the scan's free-text description."""
    series = service.update_description(session=session, series=scan_or_404(session, scan_id), description=body.description)
    record_event(session=session, api_key_id=principal.key_id, action="scan.update", resource_type="scan",
                 resource_id=series.id, detail={"fields": ["description"]})
    session.commit()
    return ScanOut(**service.to_api(series))


@router.get(
    "/{scan_id}/file",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The uploaded file as received; a zip of the instances when several files came.",
            "content": {"application/dicom": {}, "application/zip": {}, "application/octet-stream": {}},
        },
        **problems(401, 403, 404, 503),
    },
    summary="Download the scan's original bytes",
)
def download_scan(scan_id: str, session: SessionDep, store: StoreDep, _reader: Reader) -> StreamingResponse:
    """Stream the original upload back, byte for byte."""
    download = service.download(session=session, store=store, series=scan_or_404(session, scan_id))
    headers = {"Content-Disposition": f'attachment; filename="{download.filename}"'}
    if download.size is not None:
        headers["Content-Length"] = str(download.size)
    return StreamingResponse(download.chunks, media_type=download.media_type, headers=headers)


@router.post(
    "/{scan_id}/analyze",
    status_code=202,
    response_model=AnalysisAccepted,
    responses=problems(401, 403, 404, 503),
    summary="Analyze a scan",
)
def analyze_scan(
    scan_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, authorized(Permission.analyze)],
) -> JSONResponse:
    """Queue a new analysis run (gate, screen, localize); the latest finished run's report wins."""
    run = start_analysis(session=session, series=scan_or_404(session, scan_id), principal=principal)
    request.app.state.report_cache.forget(scan_id)
    accepted = AnalysisAccepted(
        run_id=run.id, scan_id=scan_id, state=run.state.value,
        report_url=f"/api/scans/{scan_id}/report", status_url=f"/api/scans/{scan_id}/status",
    )
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers={"Location": accepted.report_url})


@router.get(
    "/{scan_id}/report",
    response_model=None,
    responses={**REPORT_RESPONSES, **problems(401, 403, 404)},
    summary="Get a scan's report",
)
async def get_report(scan_id: str, request: Request, _reader: Reader) -> Any:
    """200 with the report when the latest run finished (done, rejected or failed); 202 while it runs."""
    # The polling hot path: a recent answer is reused; otherwise one hop to a worker thread does all
    # the database work (no per-dependency hops).
    cache = request.app.state.report_cache
    response = cache.get(scan_id)
    if response is None:
        state = request.app.state
        response = await run_in_threadpool(_report, state.session_factory, scan_id, stale_after(state.settings))
        cache.put(scan_id, response)
    return response


def _report(session_factory: sessionmaker[Session], scan_id: str, stale_after_seconds: float) -> Response:
    with session_factory() as session:
        return report_response(session=session, series_pk=scan_id, poll_url=f"/api/scans/{scan_id}/report",
                               exists=lambda: service.get_scan(session=session, scan_id=scan_id) is not None,
                               stale_after=stale_after_seconds)


@router.get(
    "/{scan_id}/status",
    response_model=RunProgress,
    responses=problems(401, 403, 404),
    summary="Progress of a scan's analysis per stage",
)
def get_status(
    scan_id: str, session: SessionDep, _operator: Annotated[Principal, authorized(Permission.view_status)]
) -> RunProgress:
    """State, timing and attempts of each stage of the latest run."""
    return scan_progress(session=session, series_pk=scan_or_404(session, scan_id).id)


@router.delete("/{scan_id}", status_code=204, responses=problems(401, 403, 404, 503), summary="Delete a scan")
def delete_scan(
    scan_id: str,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: Annotated[Principal, authorized(Permission.delete_scans)],
) -> Response:
    """Delete the scan, its runs and reports, and every stored object of it."""
    series = scan_or_404(session, scan_id)
    removed = service.delete_scan(session=session, store=store, series=series)
    record_event(session=session, api_key_id=principal.key_id, action="scan.delete", resource_type="scan",
                 resource_id=scan_id, detail={"objects_removed": removed})
    session.commit()
    request.app.state.report_cache.forget(scan_id)
    return Response(status_code=204)
