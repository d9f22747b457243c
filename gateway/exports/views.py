"""``GET /api/scans/{id}/exports``, ``GET /api/exports`` and ``POST /api/scans/{id}/exports/{export_id}/resend``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.audit.service import record_event
from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep, SettingsDep
from gateway.exports import service
from gateway.exports.models import ExportList, ExportOut, ExportPage
from gateway.pagination import PageParams
from gateway.problems import ProblemError, problems
from gateway.scans.views import scan_or_404
from shared.db.models import ExportState
from shared.export.service import resend

router = APIRouter(tags=["exports"])

Clinician = Annotated[Principal, authorized(Permission.read)]
Operator = Annotated[Principal, authorized(Permission.view_status)]


@router.get("/api/scans/{scan_id}/exports", response_model=ExportList, responses=problems(401, 403, 404, 422),
            summary="List a scan's exports to PACS")
def get_scan_exports(
    scan_id: str, session: SessionDep, _clinician: Clinician,
    run_id: Annotated[str | None, Query(description="Only the exports of this analysis run.")] = None,
) -> ExportList:
    """Where the scan's results (SEG, SR, key images) went: one job per run and destination, with its state and last error."""
    series = scan_or_404(session, scan_id)
    return ExportList(items=[ExportOut.model_validate(job) for job in service.list_scan_exports(
        session=session, series_pk=series.id, run_id=run_id)])


@router.get("/api/exports", response_model=ExportPage, responses=problems(401, 403, 422), summary="List exports to PACS")
def get_exports(
    session: SessionDep, page: PageParams, _operator: Operator,
    state: Annotated[ExportState | None, Query(description="Only jobs in this state, e.g. `dead_letter`.")] = None,
) -> ExportPage:
    """Every export job, newest first: operators look here for dead letters (`?state=dead_letter`)."""
    rows, total = service.list_exports(session=session, state=state, limit=page.limit, offset=page.offset)
    return ExportPage(items=[ExportOut.model_validate(job) for job in rows], total=total, limit=page.limit, offset=page.offset)


@router.post("/api/scans/{scan_id}/exports/{export_id}/resend", response_model=ExportOut, status_code=202,
             responses=problems(401, 403, 404, 409, 503), summary="Send an export to PACS again")
def post_resend(scan_id: str, export_id: str, session: SessionDep, settings: SettingsDep, principal: Operator) -> ExportOut:
    """Start the job over (tries reset to 0) and queue it now, whatever its state, unless a try is under way (409)."""
    series = scan_or_404(session, scan_id)
    job = service.get_scan_export(session=session, series_pk=series.id, export_id=export_id)
    if job is None:
        raise ProblemError(404, "not-found", "This scan has no export with this id.", reason="export_not_found")
    record_event(session=session, api_key_id=principal.key_id, action="export.resend", resource_type="export",
                 resource_id=job.id, detail={"scan_id": series.id, "state": job.state.value})
    if not resend(session=session, job=job, settings=settings):
        raise ProblemError(409, "conflict", "A try of this export is under way; re-send once it has ended.",
                           reason="export_in_progress")
    return ExportOut.model_validate(job)
