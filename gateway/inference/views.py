"""``/inference/predict``: upload a study with no patient record, get its report (for mass runs)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission, allows
from gateway.dependencies import SessionDep, SettingsDep
from gateway.inference.models import PredictAccepted
from gateway.problems import ProblemError, problems
from gateway.scans import service as scans
from gateway.scans.analysis import (
    REPORT_RESPONSES,
    run_report,
    run_report_response,
    stale_after,
    start_analysis,
)
from gateway.scans.upload import UPLOAD_REQUEST_BODY, receive_and_ingest
from shared.config import Settings
from shared.db.models import AnalysisRun

router = APIRouter(prefix="/inference", tags=["inference"])

Predictor = Annotated[Principal, authorized(Permission.predict)]
POLL_INTERVAL_SECONDS = 0.25


def _poll_url(run_id: str) -> str:
    return f"/inference/predict/{run_id}"


@router.post(
    "/predict",
    response_model=None,
    responses={
        **REPORT_RESPONSES,
        202: {"model": PredictAccepted, "description": "Still running after `wait` seconds: poll `poll_url`."},
        **problems(400, 401, 403, 413, 415, 422, 503),
    },
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    summary="Analyze an uploaded study and return its report",
)
async def predict(
    request: Request,
    principal: Predictor,
    wait: Annotated[
        float | None, Query(ge=0, description="Seconds to wait for the report (at most the server's limit).")
    ] = None,
) -> Any:
    """Upload one study (as POST /api/scans, with no patient record), analyze it and wait for its report.

    200 with the report when the run ends within the wait; 202 with a link to poll otherwise.
    """
    settings: Settings = request.app.state.settings
    limit = settings.predict_wait_seconds if wait is None else min(wait, settings.predict_wait_seconds)
    scan = await receive_and_ingest(request, principal=principal, source="predict")
    run_id = await run_in_threadpool(_start, request, scan.id, principal)
    deadline = time.monotonic() + limit
    while True:
        report, run = await run_in_threadpool(_poll, request, run_id)
        if report is not None:
            return JSONResponse(report)
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
    accepted = PredictAccepted(
        scan_id=scan.id, run_id=run_id, state=run["state"], stage=run["stage"], poll_url=_poll_url(run_id)
    )
    return JSONResponse(
        accepted.model_dump(mode="json"), status_code=202,
        headers={"Location": accepted.poll_url, "Retry-After": "2"},
    )


def _start(request: Request, scan_id: str, principal: Principal) -> str:
    with request.app.state.session_factory() as session:
        series = scans.get_scan(session=session, scan_id=scan_id)
        assert series is not None
        return start_analysis(session=session, series=series, principal=principal).id


def _poll(request: Request, run_id: str) -> tuple[dict | None, dict]:
    with request.app.state.session_factory() as session:
        run = session.get(AnalysisRun, run_id)
        assert run is not None
        report = run_report(session=session, run=run, stale_after=stale_after(request.app.state.settings))
        return (report.model_dump(mode="json") if report else None), {"state": run.state.value, "stage": run.stage}


@router.get(
    "/predict/{run_id}",
    response_model=None,
    responses={**REPORT_RESPONSES, **problems(401, 403, 404)},
    summary="Poll a prediction's report",
)
def poll_prediction(run_id: str, session: SessionDep, settings: SettingsDep, principal: Predictor) -> Any:
    """200 with the run's report once it has ended; 202 with its progress while it runs.

    A key sees the runs it started; clinicians and above see every run.
    """
    run = session.get(AnalysisRun, run_id)
    if run is None or (run.requested_by != principal.key_id and not allows(principal.role, Permission.read)):
        raise ProblemError(404, "not-found", "No prediction with this id.", reason="run_not_found")
    return run_report_response(session=session, run=run, stale_after=stale_after(settings), poll_url=_poll_url(run_id))
