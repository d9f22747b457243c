"""Analysis of a scan through the API: start a run, serve its report or its progress.

The pipeline owns the bookkeeping (:mod:`shared.pipeline.dispatch`, :mod:`shared.pipeline.reports`);
this module maps it to HTTP: 202 + ``Location`` when a run is queued, 202 + ``Retry-After`` while it
runs, 200 with the :class:`~shared.report.ReportV1` once it ended, 404 problem when never analyzed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse, Response
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import Text, bindparam, cast, select
from sqlalchemy.orm import Session, aliased

from gateway.audit.service import record_event
from gateway.auth.keys import Principal
from gateway.problems import ProblemError
from shared.config import Settings
from shared.db.models import TERMINAL_STATES, AnalysisRun, Report, Series
from shared.pipeline import runs
from shared.pipeline.dispatch import enqueue_analysis
from shared.pipeline.reports import (
    ReportView,
    RunProgress,
    progress_of,
    run_progress,
    series_report,
)
from shared.report import ReportStatus, ReportV1

RETRY_AFTER_SECONDS = 2

REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ReportV1, "description": "The run ended: done (with verdict), rejected or failed (with reason)."},
    202: {"model": RunProgress, "description": "A run is queued or running; retry after `Retry-After` seconds."},
}


def start_analysis(*, session: Session, series: Series, principal: Principal) -> AnalysisRun:
    """Queue a run of the pipeline on ``series`` and audit it; 503 problem when the broker is down."""
    try:
        run = enqueue_analysis(session=session, series=series, requested_by=principal.key_id)
    except BrokerError as error:
        raise ProblemError(503, "unavailable", "The task queue is unavailable; try again.",
                           reason="broker_unavailable") from error
    record_event(session=session, api_key_id=principal.key_id, action="scan.analyze", resource_type="scan",
                 resource_id=series.id, detail={"run_id": run.id})
    session.commit()
    return run


def stale_after(settings: Settings) -> float:
    """Seconds in one stage after which a run's worker is presumed lost (the pipeline's rule)."""
    return runs.stale_after_seconds(stage_time_limit_seconds=settings.stage_time_limit_seconds)


def _not_analyzed() -> ProblemError:
    return ProblemError(404, "not-analyzed", "This scan has not been analyzed yet: POST .../analyze first.",
                        reason="not_analyzed", title="No report")


_finished = aliased(AnalysisRun)
# The latest finished run's report as stored, by shared.pipeline.reports.series_report's rule: the
# terminal run that finished last. Built once: constructing a select costs more than running it.
_LATEST_REPORT = (
    select(cast(Report.body, Text))
    .join(_finished, _finished.id == Report.run_pk)
    .where(Report.series_pk == bindparam("series_pk"), _finished.state.in_(list(TERMINAL_STATES)))
    .order_by(_finished.finished_at.desc(), _finished.created_at.desc())
    .limit(1)
    .scalar_subquery()
)
# ... beside the series' latest run, in one indexed query: all report polling needs.
_POLL = (
    select(_LATEST_REPORT, AnalysisRun)
    .where(AnalysisRun.series_pk == bindparam("series_pk"))
    .order_by(AnalysisRun.created_at.desc())
    .limit(1)
)


def report_response(
    *, session: Session, series_pk: str, poll_url: str, exists: Callable[[], bool], stale_after: float
) -> Response:
    """200 with the latest finished report, 202 with the latest run's progress (and ``Retry-After``), or a 404 problem.

    The stored report is sent as it is (it already is the report's JSON), not decoded, validated and
    encoded again. A run whose worker vanished is ended first (``stale_after`` seconds in one stage),
    as the pipeline's own views do. ``exists`` is asked only when the series has no run, to tell an
    unknown scan from one never analyzed.
    """
    row = session.execute(_POLL, {"series_pk": series_pk}).one_or_none()
    if row is None:
        if not exists():
            raise ProblemError(404, "not-found", "No scan with this id.", reason="scan_not_found")
        raise _not_analyzed()
    stored, run = row
    if stored is not None:
        return Response(stored, media_type="application/json")
    if runs.fail_if_stale(session=session, run=run, stale_after=stale_after):
        session.commit()
    if run.state not in TERMINAL_STATES:
        return JSONResponse(
            progress_of(run).model_dump(mode="json"), status_code=202,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Location": poll_url},
        )
    # Ended without a report row (or just ended as stale): the pipeline's view builds the report.
    view: ReportView = series_report(session=session, series_pk=series_pk)
    session.commit()
    assert view.report is not None
    return JSONResponse(view.report.model_dump(mode="json"))


def run_report(*, session: Session, run: AnalysisRun, stale_after: float) -> ReportV1 | None:
    """The report of ``run`` once it has ended (ending it first if its worker vanished), else None."""
    if runs.fail_if_stale(session=session, run=run, stale_after=stale_after):
        session.commit()
    if run.state not in TERMINAL_STATES:
        return None
    body = session.scalar(select(Report.body).where(Report.run_pk == run.id))
    if body is not None:
        return ReportV1.model_validate(body)
    return ReportV1(  # a terminal run whose report row was never written
        status=ReportStatus(run.state.value), reason=run.reason, reason_detail=run.reason_detail, run_id=run.id,
        series_id=run.series_pk, timings=runs.stage_seconds(run), created_at=run.finished_at or run.created_at,
    )


def run_report_response(*, session: Session, run: AnalysisRun, stale_after: float, poll_url: str) -> JSONResponse:
    """200 with the report of ``run`` when it has ended, else 202 with its progress and ``Retry-After``."""
    report = run_report(session=session, run=run, stale_after=stale_after)
    if report is not None:
        return JSONResponse(report.model_dump(mode="json"))
    return JSONResponse(
        progress_of(run).model_dump(mode="json"), status_code=202,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Location": poll_url},
    )


def scan_progress(*, session: Session, series_pk: str) -> RunProgress:
    """Per-stage progress of the latest run; 404 problem when never analyzed."""
    progress = run_progress(session=session, series_pk=series_pk)
    session.commit()
    if progress is None:
        raise _not_analyzed()
    return progress
