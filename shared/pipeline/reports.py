"""What the API serves about a series' analyses: its report and the progress of its runs.

The series' report is the latest *finished* run's report (re-analysis creates a new run; until it
ends, the previous report stays the answer). A newer run still in progress is shown beside it.
Both views also end runs whose worker vanished (:func:`shared.pipeline.runs.fail_if_stale`), so the
caller's session must be committed (``session_scope`` does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.config import get_settings
from shared.contracts import STAGES
from shared.db.models import TERMINAL_STATES, AnalysisRun, Report
from shared.pipeline import runs
from shared.report import ReportStatus, ReportV1


class StageProgress(BaseModel):
    """One stage of a run."""

    stage: str
    state: str = Field(description="pending | queued | running | retrying | done | failed | skipped")
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    detail: str | None = None


class RunProgress(BaseModel):
    """An analysis run and its stages."""

    run_id: str
    series_id: str
    state: str = Field(description="queued | running | done | rejected | failed")
    stage: str | None = Field(None, description="The stage running, queued next, or last run.")
    stages: list[StageProgress]
    reason: str | None = None
    reason_detail: str | None = None
    model_versions: dict = Field(default_factory=dict)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ReportView(BaseModel):
    """The answer of ``GET /api/scans/{id}/report``."""

    series_id: str
    status: Literal["never_analyzed", "in_progress", "done", "rejected", "failed"] = Field(
        description="The latest finished run's status; in_progress when no run has finished yet."
    )
    report: ReportV1 | None = Field(None, description="The latest finished run's report.")
    progress: RunProgress | None = Field(None, description="A run newer than `report` that has not finished.")


def series_report(*, session: Session, series_pk: str) -> ReportView:
    """The series' current report, and any newer run still in progress."""
    latest = _latest_run(session, series_pk)
    finished = session.scalars(
        select(AnalysisRun)
        .where(AnalysisRun.series_pk == series_pk, AnalysisRun.state.in_(list(TERMINAL_STATES)))
        .order_by(AnalysisRun.finished_at.desc(), AnalysisRun.created_at.desc())
        .limit(1)
    ).one_or_none()
    report = _report_of(session, finished) if finished is not None else None
    pending = latest if latest is not None and latest.state not in TERMINAL_STATES else None
    status = report.status.value if report is not None else "in_progress" if pending is not None else "never_analyzed"
    return ReportView(
        series_id=series_pk, status=status, report=report,
        progress=progress_of(pending) if pending is not None else None,
    )


def run_progress(*, session: Session, series_pk: str) -> RunProgress | None:
    """Progress of the series' latest run (None if never analyzed)."""
    run = _latest_run(session, series_pk)
    return progress_of(run) if run is not None else None


def progress_of(run: AnalysisRun) -> RunProgress:
    """A run row as :class:`RunProgress`."""
    stages = [
        StageProgress(stage=stage.value, **{key: value for key, value in run.stages.get(stage.value, {"state": "pending"}).items() if key in StageProgress.model_fields})
        for stage in STAGES
    ]
    return RunProgress(
        run_id=run.id, series_id=run.series_pk, state=run.state.value, stage=run.stage, stages=stages,
        reason=run.reason, reason_detail=run.reason_detail, model_versions=run.model_versions or {},
        created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
    )


def _latest_run(session: Session, series_pk: str) -> AnalysisRun | None:
    run = session.scalars(
        select(AnalysisRun).where(AnalysisRun.series_pk == series_pk).order_by(AnalysisRun.created_at.desc()).limit(1)
    ).one_or_none()
    if run is not None:
        stale_after = runs.stale_after_seconds(stage_time_limit_seconds=get_settings().stage_time_limit_seconds)
        if runs.fail_if_stale(session=session, run=run, stale_after=stale_after):
            session.flush()
    return run


def _report_of(session: Session, run: AnalysisRun) -> ReportV1:
    row = session.scalars(select(Report).where(Report.run_pk == run.id)).one_or_none()
    if row is not None:
        return ReportV1.model_validate(row.body)
    # A terminal run without its row (recorded by an older version, or the write was lost).
    return ReportV1(
        status=ReportStatus(run.state.value), reason=run.reason, reason_detail=run.reason_detail,
        run_id=run.id, series_id=run.series_pk, timings=runs.stage_seconds(run),
        created_at=run.finished_at or run.created_at,
    )
